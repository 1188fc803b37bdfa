"""The need-more-data sentinel every decoder returns from ``next_frame``."""

from __future__ import annotations

import enum
from typing import Final, Literal


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData.NEED_DATA
NeedData = Literal[_NeedData.NEED_DATA]
