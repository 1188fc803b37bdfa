"""ThingMagic / JADAK Mercury embedded modules (M6e, M6e Nano, M6e Micro, M7E) over serial.

Sans-I/O: ``commands`` builds requests, ``decoder`` turns received bytes into ``Response``
frames, ``records`` turns streamed frames into tag reads. See docs/drivers/thingmagic.md.
"""

from drivers.thingmagic import records
from drivers.thingmagic.crc import tm_crc
from drivers.thingmagic.decoder import RequestDecoder, ResponseDecoder
from drivers.thingmagic.frames import Request, Response
from drivers.thingmagic.records import *  # noqa: F403 (the names in records.__all__)

# The stream records' names are records.__all__: listed there once, so that a new record type
# is exported from the package without a second list to keep in step.
__all__ = ["Request", "RequestDecoder", "Response", "ResponseDecoder", "tm_crc"]
__all__ += records.__all__
