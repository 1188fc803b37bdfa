"""Responses of an OpenEPaperLink access point, parsed from status code and body. No I/O.

Field names are those ``fillNode`` writes in ``ESP32_AP-Flasher/src/tag_db.cpp``; only the ones
the gateway uses are kept, and missing ones default, because older AP firmware writes fewer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Self

from drivers.errors import DeviceError, FrameError

HTTP_OK: Final = 200
HTTP_CONFLICT: Final = 409  # "come back later": the AP is not in its run state


@dataclass(frozen=True, slots=True)
class TagInfo:
    mac: str
    alias: str = ""
    last_seen: int = 0  # Unix time of the last check-in
    next_checkin: int = 0
    pending: bool = False  # new content waits for the tag's next check-in
    content_mode: int = 0
    hw_type: int = 0
    battery_mv: int = 0
    rssi: int = 0
    lqi: int = 0

    @classmethod
    def from_json(cls, node: dict[str, Any]) -> Self:
        try:
            return cls(
                mac=str(node["mac"]).upper(),
                alias=str(node.get("alias", "")),
                last_seen=int(node.get("lastseen", 0)),
                next_checkin=int(node.get("nextcheckin", 0)),
                pending=bool(node.get("pending", False)),
                content_mode=int(node.get("contentMode", 0)),
                hw_type=int(node.get("hwType", 0)),
                battery_mv=int(node.get("batteryMv", 0)),
                rssi=int(node.get("RSSI", 0)),
                lqi=int(node.get("LQI", 0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FrameError(f"not a tag record: {node!r}") from e

    def to_json(self) -> dict[str, Any]:
        return {
            "mac": self.mac,
            "alias": self.alias,
            "lastseen": self.last_seen,
            "nextcheckin": self.next_checkin,
            "pending": self.pending,
            "contentMode": self.content_mode,
            "hwType": self.hw_type,
            "batteryMv": self.battery_mv,
            "RSSI": self.rssi,
            "LQI": self.lqi,
        }


@dataclass(frozen=True, slots=True)
class TagPage:
    tags: tuple[TagInfo, ...]
    next_pos: int | None  # "continu": ask again with pos=next_pos; None when complete


def _raise_for_status(status: int, body: bytes) -> None:
    if status != HTTP_OK:
        text = body.decode("utf-8", "replace").strip()
        raise DeviceError(f"access point answered {status}: {text}", status=status)


def parse_upload(status: int, body: bytes) -> None:
    """``/jsonupload`` and ``/tag_cmd``: anything but 200 is the AP refusing."""
    _raise_for_status(status, body)


def parse_db(status: int, body: bytes) -> TagPage:
    _raise_for_status(status, body)
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FrameError(f"/get_db body is not JSON: {body[:80]!r}") from e
    if not isinstance(doc, dict):
        raise FrameError(f"/get_db body is not an object: {body[:80]!r}")
    if "error" in doc:
        raise DeviceError(f"access point: {doc['error']}", status=status)
    tags = doc.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
        raise FrameError(f"/get_db without a tag list: {body[:80]!r}")
    more = doc.get("continu")
    return TagPage(tuple(TagInfo.from_json(t) for t in tags), int(more) if more else None)
