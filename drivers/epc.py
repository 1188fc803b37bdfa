"""SGTIN-96 EPCs: the GTIN and serial an item tag carries.

Shared by the gateway (which decodes item tags into ``subject.gtin`` / ``subject.serial``) and the
simulator (which encodes the tags its scenarios put on shelves): the EPC layout is part of what
the tag says on the air, so it lives with the other wire formats.

GS1 EPC Tag Data Standard (TDS 2.1), section 14.5.1 and table 14-2 (SGTIN-96)::

    bit  95      87      84        81                          38                    0
         +-------+-------+---------+---------------+----------+---------------------+
         | 0x30  |filter |partition| company prefix| item ref |       serial        |
         |   8   |   3   |    3    |    M bits     |  N bits  |      38 bits        |
         +-------+-------+---------+---------------+----------+---------------------+
                                    \\________ M + N = 44, by partition ________/

The item reference carries the GTIN's indicator digit first, so the GTIN-14 is
indicator + company prefix + the rest of the item reference + a GS1 mod-10 check digit
(GS1 General Specifications 7.9.1). TDS 14.3.3 decoding: a company prefix or item reference whose
value needs more digits than the partition allows is not a valid SGTIN-96; neither is partition 7.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.errors import EncodeError

SGTIN96_HEADER: Final = 0x30
SGTIN96_BITS: Final = 96
SERIAL_BITS: Final = 38
FILTER_BITS: Final = 3
PARTITION_BITS: Final = 3
FILTER_POINT_OF_SALE: Final = 1  # TDS table 10-4: "Point of Sale (POS) Trade Item"
# partition -> (company prefix bits, company prefix digits, item reference bits, digits)
SGTIN_PARTITION_TABLE: Final = (
    (40, 12, 4, 1),
    (37, 11, 7, 2),
    (34, 10, 10, 3),
    (30, 9, 14, 4),
    (27, 8, 17, 5),
    (24, 7, 20, 6),
    (20, 6, 24, 7),
)


class EpcError(EncodeError):
    """An SGTIN-96 cannot be encoded from the given GTIN, prefix length or serial."""


@dataclass(frozen=True, slots=True)
class Sgtin:
    gtin14: str  # with its check digit
    serial: str  # decimal, no leading zeros (TDS: SGTIN-96 serials are integers)
    filter: int
    company_prefix: str  # digits; its length is what the partition encodes


def gs1_check_digit(digits: str) -> int:
    """Weights 3, 1, 3, ... from the rightmost digit; the check makes the sum a multiple of 10."""
    total = sum(int(d) * (3 - 2 * (i % 2)) for i, d in enumerate(reversed(digits)))
    return -total % 10


def decode_sgtin96(epc: bytes) -> Sgtin | None:
    """The SGTIN in a 96-bit EPC, or None when the EPC is not a valid SGTIN-96."""
    if len(epc) != SGTIN96_BITS // 8 or epc[0] != SGTIN96_HEADER:
        return None
    value = int.from_bytes(epc, "big")
    filter_value = value >> 85 & 0b111
    partition = value >> 82 & 0b111
    if partition >= len(SGTIN_PARTITION_TABLE):
        return None
    cp_bits, cp_digits, ir_bits, ir_digits = SGTIN_PARTITION_TABLE[partition]
    company = value >> (SERIAL_BITS + ir_bits) & ((1 << cp_bits) - 1)
    item = value >> SERIAL_BITS & ((1 << ir_bits) - 1)
    if company >= 10**cp_digits or item >= 10**ir_digits:
        return None
    prefix, reference = f"{company:0{cp_digits}d}", f"{item:0{ir_digits}d}"
    body = reference[0] + prefix + reference[1:]
    gtin14 = body + str(gs1_check_digit(body))
    return Sgtin(gtin14, str(value & ((1 << SERIAL_BITS) - 1)), filter_value, prefix)


def encode_sgtin96(
    gtin14: str, serial: int, *, company_prefix_digits: int, filter: int = FILTER_POINT_OF_SALE
) -> bytes:
    """The EPC for one GTIN-14 and serial; the prefix length picks the partition."""
    if len(gtin14) != 14 or not gtin14.isdigit():
        raise EpcError(f"a GTIN-14 has 14 digits, not {gtin14!r}")
    if gs1_check_digit(gtin14[:13]) != int(gtin14[13]):
        raise EpcError(f"GTIN {gtin14} fails its check digit")
    partition = next(
        (p for p, row in enumerate(SGTIN_PARTITION_TABLE) if row[1] == company_prefix_digits),
        None,
    )
    if partition is None:
        raise EpcError(f"a company prefix has 6 to 12 digits, not {company_prefix_digits}")
    if not 0 <= serial < 1 << SERIAL_BITS or not 0 <= filter < 1 << FILTER_BITS:
        raise EpcError("serial or filter out of range")
    cp_bits, _, ir_bits, _ = SGTIN_PARTITION_TABLE[partition]
    prefix = int(gtin14[1 : 1 + company_prefix_digits])
    reference = int(gtin14[0] + gtin14[1 + company_prefix_digits : 13])
    value = SGTIN96_HEADER
    for field, bits in (
        (filter, FILTER_BITS),
        (partition, PARTITION_BITS),
        (prefix, cp_bits),
        (reference, ir_bits),
        (serial, SERIAL_BITS),
    ):
        value = value << bits | field
    return value.to_bytes(SGTIN96_BITS // 8, "big")
