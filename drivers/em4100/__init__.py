"""EM4100 125 kHz card readers with a UART output: RDM6300 / RDM630 and ID-12LA / ID-20LA."""

from drivers.em4100.decoder import Em4100Decoder
from drivers.em4100.frames import BAUDRATE, Em4100Frame, Style, checksum

__all__ = ["BAUDRATE", "Em4100Decoder", "Em4100Frame", "Style", "checksum"]
