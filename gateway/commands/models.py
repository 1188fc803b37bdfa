"""The commands a central server may send to an output on ``P/cmd/{output_id}``, one pydantic
model per action and output kind.

A command is one flat JSON object: the envelope (``command_id``, optional ``expires_at``), an
``action`` naming what to do, and that action's fields, for example::

    {"command_id": "c-81", "expires_at": "2026-11-23T17:00:00Z",
     "action": "switch", "channel": 1, "on": true, "duration_s": 5}

Unknown fields are refused, not ignored: a typo in ``duration_s`` must not turn a pulse into a
relay that stays on. Every string and list is bounded so a valid command is always small.

Types are strict: ``"on": "yes"``, ``"on": 1`` or ``"channel": "1"`` are refused rather than
coerced, since a sender that means something else must not switch a relay. Two conversions stay,
because JSON has no other way to say them: an integer where a float is expected (``"duration_s":
5``) and an ISO 8601 string for ``expires_at``. Display and label text may not hold control or
bidirectional characters (``text.py`` says why).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from gateway.text import unsafe

MAX_PAYLOAD_BYTES: Final = 4096  # larger messages are refused before JSON parsing
COMMAND_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
RELAY_CHANNELS: Final = 16
DISPLAY_LINES: Final = 8
DISPLAY_TEXT_MAX: Final = 40  # characters per display line
EPAPER_LINES: Final = 8
EPAPER_TEXT_MAX: Final = 64
MAX_DURATION_S: Final = 86400.0

OutputKind = Literal["relay", "serial-display", "openepaperlink"]
CommandId = Annotated[str, Field(pattern=COMMAND_ID_PATTERN)]
DurationS = Annotated[float, Field(gt=0, le=MAX_DURATION_S)]


def _showable(text: str) -> str:
    where = unsafe(text)
    if where is not None:
        raise ValueError(f"the character {where} cannot be shown (control or bidi)")
    return text


ShowableText = AfterValidator(_showable)


class Command(BaseModel):
    """The envelope every command shares."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    command_id: CommandId  # the idempotency key: a command_id is executed at most once
    expires_at: AwareDatetime | None = None  # refused when it arrives later than this


class RelaySwitch(Command):
    """Turn one relay channel on or off; with ``duration_s`` it returns to the other state."""

    action: Literal["switch"]
    channel: Annotated[int, Field(ge=1, le=RELAY_CHANNELS)]
    on: bool
    duration_s: DurationS | None = None


class DisplayShow(Command):
    """Write ``text`` on one line of a serial display; with ``duration_s`` it is cleared after."""

    action: Literal["show"]
    line: Annotated[int, Field(ge=1, le=DISPLAY_LINES)]
    text: Annotated[str, Field(max_length=DISPLAY_TEXT_MAX), ShowableText]
    duration_s: DurationS | None = None


class DisplayClear(Command):
    action: Literal["clear"]


class DisplayBrightness(Command):
    action: Literal["brightness"]
    percent: Annotated[int, Field(ge=0, le=100)]


class EpaperShow(Command):
    """Show lines of text on one OpenEPaperLink tag (by MAC) for ``ttl_s`` seconds."""

    action: Literal["show"]
    mac: Annotated[str, Field(pattern=r"^(?:[0-9A-Fa-f]{12}|[0-9A-Fa-f]{16})$")]
    lines: Annotated[
        list[Annotated[str, Field(max_length=EPAPER_TEXT_MAX), ShowableText]],
        Field(min_length=1, max_length=EPAPER_LINES),
    ]
    ttl_s: Annotated[int, Field(ge=1, le=int(MAX_DURATION_S))] = 3600


RelayCommand = RelaySwitch
DisplayCommand = Annotated[
    DisplayShow | DisplayClear | DisplayBrightness, Field(discriminator="action")
]
EpaperCommand = EpaperShow
AnyCommand = RelaySwitch | DisplayShow | DisplayClear | DisplayBrightness | EpaperShow

# One validator per output kind: a command is valid only against the schema of its target.
SCHEMAS: Final[dict[str, TypeAdapter[AnyCommand]]] = {
    "relay": TypeAdapter(RelayCommand),
    "serial-display": TypeAdapter(DisplayCommand),
    "openepaperlink": TypeAdapter(EpaperCommand),
}
