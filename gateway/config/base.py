"""What every config model shares: unknown keys are errors, values are frozen, names have one
alphabet, numbers are finite, and paths are ones a Linux file system can hold."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,63}$"
DEVICE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
NAME_MAX: Final = 255  # bytes in one path component (Linux NAME_MAX)
PATH_MAX: Final = 4096  # bytes in a whole path, its terminating NUL included (Linux PATH_MAX)
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
ZoneId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
# From 50 (the slowest rate termios knows) to 4 Mbaud (beyond every USB serial adapter).
Baudrate = Annotated[int, Field(ge=50, le=4_000_000)]


def _check_path(path: Path) -> Path:
    """A path the kernel would refuse is a config problem, not an OSError at run time."""
    if "\0" in str(path):
        raise ValueError("must not contain a NUL character")
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:
        raise ValueError("cannot be written in this system's file name encoding") from None
    if len(raw) >= PATH_MAX:
        raise ValueError(f"is {len(raw)} bytes long; a path takes at most {PATH_MAX - 1}")
    for part in raw.split(b"/"):
        if len(part) > NAME_MAX:
            name = os.fsdecode(part)[:16]
            raise ValueError(
                f"the name {name}... is {len(part)} bytes long; a file system takes at most "
                f"{NAME_MAX}"
            )
    if path.name in ("", ".", ".."):
        raise ValueError("must name a file, not a directory")
    return path


FilePath = Annotated[Path, AfterValidator(_check_path)]


class Model(BaseModel):
    # inf and nan are TOML floats, but no setting means them: 1e999 is a typo, not a limit.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
