"""paho's MQTT v5 property tables, built once instead of once per message.

paho decodes every PUBLISH into a ``Properties`` object, whose constructor rebuilds its three
tables (27 property names, their types and the packets each may appear in), and whose ``clear``
(called by ``unpack``) probes the object for each of the 27 names. At one event per message that
was a fifth of the consumer's time. ``SharedTables`` is paho's class with the tables built once
and a ``clear`` that removes only what is set; ``install`` has paho's packet decoder use it.
Nothing else changes: the tables are never written to, and the class is a ``Properties``.
"""

from __future__ import annotations

from typing import Final

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_TABLES: Final = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho is untyped here
_OWN: Final = frozenset(("packetType", "types", "names", "properties"))


class SharedTables(Properties):
    def __init__(self, packetType: int) -> None:  # noqa: N803  # paho's name
        object.__setattr__(self, "packetType", packetType)
        object.__setattr__(self, "types", _TABLES.types)
        object.__setattr__(self, "names", _TABLES.names)
        object.__setattr__(self, "properties", _TABLES.properties)

    def clear(self) -> None:
        for name in [name for name in vars(self) if name not in _OWN]:
            object.__delattr__(self, name)


def install() -> bool:
    """Have paho's PUBLISH decoder use the shared tables; False where this paho decodes
    elsewhere (``paho.mqtt._packet`` is new in 2.2; 2.1, the lowest we accept, has none), and the
    consumer then runs on paho's own, only slower."""
    try:
        import paho.mqtt._packet as paho_packet  # noqa: PLC0415  (private, and not in every paho)
    except ImportError:
        return False
    if getattr(paho_packet, "Properties", None) not in (Properties, SharedTables):
        return False  # a paho whose decoder we do not know: leave it alone
    paho_packet.Properties = SharedTables  # type: ignore[attr-defined]
    return True
