"""What every config model shares: unknown keys are errors, values are frozen, names have one
alphabet."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,63}$"
DEVICE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
ZoneId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
