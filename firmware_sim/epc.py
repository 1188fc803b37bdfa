"""EPCs the simulated tags carry: SGTIN-96 for items, a fixed hex prefix for loyalty cards.

SGTIN-96 per the GS1 EPC Tag Data Standard (TDS 2.x, section 14.5.1, table 14-2):

    header 8 | filter 3 | partition 3 | company prefix M | item reference N | serial 38
                                       \\__ M + N = 44 bits, split by the partition value __/

The item reference carries the GTIN's indicator digit in front, so a GTIN-14 is rebuilt as
indicator + company prefix + rest of the item reference + a GS1 mod-10 check digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.errors import EncodeError

SGTIN96_HEADER: Final = 0x30
SGTIN96_SERIAL_BITS: Final = 38
FILTER_POS_TRADE_ITEM: Final = 1  # TDS table 14-4: "All Others" is 0; 1 is a point-of-sale item

# partition -> (company prefix bits, digits, item reference bits, digits); TDS table 14-2
SGTIN_PARTITIONS: Final = {
    0: (40, 12, 4, 1),
    1: (37, 11, 7, 2),
    2: (34, 10, 10, 3),
    3: (30, 9, 14, 4),
    4: (27, 8, 17, 5),
    5: (24, 7, 20, 6),
    6: (20, 6, 24, 7),
}
DEFAULT_CUSTOMER_PREFIX: Final = "C0FFEE"
EPC96_HEX_DIGITS: Final = 24


@dataclass(frozen=True, slots=True)
class Sgtin:
    filter_value: int
    company_prefix: str  # digits, leading zeros significant
    item_reference: str  # digits, indicator digit first
    serial: int

    @property
    def gtin14(self) -> str:
        body = self.item_reference[0] + self.company_prefix + self.item_reference[1:]
        return body + str(gs1_check_digit(body))

    def to_hex(self) -> str:
        """The 96-bit EPC as 24 uppercase hex digits."""
        partition = _partition_for(len(self.company_prefix))
        cp_bits, _, ir_bits, ir_digits = SGTIN_PARTITIONS[partition]
        if len(self.item_reference) != ir_digits or not self.item_reference.isdigit():
            raise EncodeError(f"item reference must be {ir_digits} digits for this prefix")
        if not 0 <= self.serial < 1 << SGTIN96_SERIAL_BITS or not 0 <= self.filter_value < 8:
            raise EncodeError("serial or filter out of range")
        value = SGTIN96_HEADER
        for field, bits in (
            (self.filter_value, 3),
            (partition, 3),
            (int(self.company_prefix), cp_bits),
            (int(self.item_reference), ir_bits),
            (self.serial, SGTIN96_SERIAL_BITS),
        ):
            value = value << bits | field
        return f"{value:0{EPC96_HEX_DIGITS}X}"

    @classmethod
    def from_hex(cls, epc: str) -> Sgtin:
        value = int(epc, 16)
        if len(epc) != EPC96_HEX_DIGITS or value >> 88 != SGTIN96_HEADER:
            raise ValueError(f"not an SGTIN-96 EPC: {epc}")
        partition = value >> 82 & 0b111
        if partition not in SGTIN_PARTITIONS:
            raise ValueError(f"bad SGTIN partition {partition}")
        cp_bits, cp_digits, ir_bits, ir_digits = SGTIN_PARTITIONS[partition]
        company = value >> (ir_bits + SGTIN96_SERIAL_BITS) & ((1 << cp_bits) - 1)
        item = value >> SGTIN96_SERIAL_BITS & ((1 << ir_bits) - 1)
        return cls(
            filter_value=value >> 85 & 0b111,
            company_prefix=f"{company:0{cp_digits}d}",
            item_reference=f"{item:0{ir_digits}d}",
            serial=value & ((1 << SGTIN96_SERIAL_BITS) - 1),
        )


def gs1_check_digit(digits: str) -> int:
    """GS1 mod-10: weights 3,1,3,... from the rightmost digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def _partition_for(company_digits: int) -> int:
    for partition, (_, digits, _, _) in SGTIN_PARTITIONS.items():
        if digits == company_digits:
            return partition
    raise EncodeError(f"a GS1 company prefix has 6 to 12 digits, not {company_digits}")


def customer_epc(prefix: str, number: int) -> str:
    """A 96-bit loyalty-card EPC: the site's prefix, then the card number in hex."""
    width = EPC96_HEX_DIGITS - len(prefix)
    if width <= 0 or number >= 16**width:
        raise EncodeError(f"card number {number} does not fit after prefix {prefix}")
    return f"{prefix.upper()}{number:0{width}X}"


def is_uhf_epc(raw_id: str) -> bool:
    """Whether a scenario subject carries a UHF tag: an EPC of 96 bits or more, in whole words.

    Card customers (EM4100: 10 hex digits, PN532 UIDs: 8, 14 or 20) are not seen by UHF readers.
    """
    return len(raw_id) >= 24 and len(raw_id) % 4 == 0


def em4100_card(version: int, tag_id: int) -> str:
    """The raw id of an EM4100 card as CONTRACT.md defines it: version byte and 4 data bytes."""
    return f"{version:02X}{tag_id:08X}"
