"""EPCs the simulated tags carry: SGTIN-96 for items, a fixed hex prefix for loyalty cards.

SGTIN-96 (GS1 EPC Tag Data Standard) is coded in ``drivers/epc.py``; this module builds the ids
scenarios hand out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.epc import FILTER_POINT_OF_SALE, decode_sgtin96, encode_sgtin96, gs1_check_digit
from drivers.errors import EncodeError

FILTER_POS_TRADE_ITEM: Final = FILTER_POINT_OF_SALE
__all__ = ["FILTER_POS_TRADE_ITEM", "Sgtin", "customer_epc", "gs1_check_digit"]

DEFAULT_CUSTOMER_PREFIX: Final = "C0FFEE"
EPC96_HEX_DIGITS: Final = 24


@dataclass(frozen=True, slots=True)
class Sgtin:
    """An item's SGTIN by its parts, as a scenario writes one: ``Sgtin(1, "0614141", "812345",
    42).to_hex()``. Encoding and decoding are ``drivers.epc``'s."""

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
        epc = encode_sgtin96(
            self.gtin14,
            self.serial,
            company_prefix_digits=len(self.company_prefix),
            filter=self.filter_value,
        )
        return epc.hex().upper()

    @classmethod
    def from_hex(cls, epc: str) -> Sgtin:
        decoded = decode_sgtin96(bytes.fromhex(epc))
        if decoded is None:
            raise ValueError(f"not an SGTIN-96 EPC: {epc}")
        cp = decoded.company_prefix
        reference = decoded.gtin14[0] + decoded.gtin14[1 + len(cp) : 13]
        return cls(decoded.filter, cp, reference, int(decoded.serial))


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
    """The raw id of an EM4100 card as docs/contract.md ("Events") defines it: version byte and 4
    data bytes."""
    return f"{version:02X}{tag_id:08X}"
