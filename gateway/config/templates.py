"""The text a rule puts on a display: a small template language that can only say what is safe.

A template is literal text with fields in braces: ``{zone}``, ``{dwell_s:.0f}``, ``{gtin}``,
``{content.zone.title}``, ``{offer.text|Welcome}``. A field is a dotted name from a fixed
whitelist, an optional format spec (alignment, width, precision, ``d``/``f``/``s`` only), and an
optional fallback after ``|`` used when the value is missing; ``{{`` and ``}}`` are literal braces.
There is no attribute access, indexing or call: a template cannot reach anything the whitelist
does not name.

No template can show a customer's id. Event subjects already carry a pseudonym (or nothing),
but a display is read by everyone standing in front of it, and with ``privacy.customer_ids =
"raw"`` the id is the card number itself; so ``subject``, ``id`` and every id-like key in pushed
content are refused when the config is loaded, not when a customer is standing there.

Rendering never raises: the values come from the central server's content, and a template runs
in the pipeline. A value its format cannot show (a number too large for ``.2f``) counts as
missing, so the field's fallback is shown, or nothing. Every value is cleaned of control and
bidirectional characters (``gateway.text``) before it is put into the text; the
template's own text comes from the config file and is checked there.

The language is a leaf: the config parses templates when it is loaded, and the rules engine
imports the config, so this module takes nothing from the rules, the commands or the config.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gateway.errors import GatewayError
from gateway.text import cleaned

Value = str | int | float
Resolve = Callable[[tuple[str, ...]], Value | None]

NUMBER_FIELDS: Final = frozenset({"dwell_s", "grams", "delta_g", "weight_delta_g"})
TEXT_FIELDS: Final = frozenset({"zone", "type", "kind", "gtin", "serial", "time", "store"})
EVENT_FIELDS: Final = NUMBER_FIELDS | TEXT_FIELDS
CONTENT_KINDS: Final = ("zone", "gtin")
KEY_PATTERN: Final = r"[a-z][a-z0-9_]{0,31}"
# Keys that name an identity rather than something to show; refused in templates and content.
ID_KEYS: Final = frozenset(
    {"id", "raw_id", "customer", "customer_id", "card", "card_id", "epc", "uid", "pseudonym"}
)
MAX_TEMPLATE_CHARS: Final = 512
MAX_FIELDS: Final = 16

_TOKEN: Final = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_FIELD: Final = re.compile(rf"^({KEY_PATTERN}(?:\.{KEY_PATTERN}){{0,2}})(?::([^|]*))?(?:\|(.*))?$")
_SPEC: Final = re.compile(r"^[<>^]?[0-9]{0,3}(?:\.[0-9]{1,2})?[dfs]?$")
_KEY: Final = re.compile(rf"^{KEY_PATTERN}$")


class TemplateError(GatewayError):
    """A template that cannot be used; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Field:
    path: tuple[str, ...]
    spec: str = ""
    fallback: str | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    parts: tuple[str | Field, ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateError(f"longer than {MAX_TEMPLATE_CHARS} characters")
        parts: list[str | Field] = []
        pos = 0
        for m in _TOKEN.finditer(source):
            parts.append(source[pos : m.start()])
            pos = m.end()
            token = m.group(0)
            if token in ("{{", "}}"):
                parts.append(token[0])
            elif token in ("{", "}"):
                raise TemplateError(f"unmatched {token!r} at character {m.start() + 1}")
            else:
                parts.append(_field(m.group(1)))
        parts.append(source[pos:])
        fields = [p for p in parts if isinstance(p, Field)]
        if len(fields) > MAX_FIELDS:
            raise TemplateError(f"more than {MAX_FIELDS} fields")
        return cls(source, tuple(p for p in parts if p != ""))

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(p for p in self.parts if isinstance(p, Field))

    def render(self, resolve: Resolve) -> str | None:
        """The text, or None when a field without fallback has no value (nothing to show)."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = resolve(part.path)
            text = None if value is None else _format(value, part.spec)
            if text is None:
                if part.fallback is None:
                    return None
                text = part.fallback
            out.append(text)
        return "".join(out)


def _field(body: str) -> Field:
    m = _FIELD.match(body.strip())
    if m is None:
        raise TemplateError(f"{{{body}}} is not a field name (letters, digits, _ and dots)")
    path = tuple(m.group(1).split("."))
    spec, fallback = m.group(2) or "", m.group(3)
    if not _SPEC.match(spec):
        raise TemplateError(f"{{{body}}}: format {spec!r} is not allowed (e.g. .0f, >5, d)")
    check_path(path)
    if spec[-1:] in ("d", "f") and path[0] in TEXT_FIELDS:
        raise TemplateError(f"{{{body}}}: {path[0]} is text, not a number")
    return Field(path, spec, fallback)


def check_path(path: tuple[str, ...]) -> None:
    """Refuse any name outside the whitelist, and every way of naming a customer id."""
    head = path[0]
    if head in ("subject", "customer") or head in ID_KEYS or path[-1] in ID_KEYS:
        raise TemplateError(f"{{{'.'.join(path)}}}: customer ids can never be shown")
    if head in EVENT_FIELDS and len(path) == 1:
        return
    if head == "content" and len(path) == 3 and path[1] in CONTENT_KINDS:
        return
    if head == "offer" and len(path) == 2:
        return
    known = ", ".join(sorted(EVENT_FIELDS))
    raise TemplateError(
        f"unknown field {{{'.'.join(path)}}} (known: {known}, content.zone.KEY, "
        "content.gtin.KEY, offer.KEY)"
    )


def valid_key(key: str) -> bool:
    """Whether pushed content may use ``key`` (templates name it as a field part)."""
    return bool(_KEY.match(key)) and key not in ID_KEYS


def _format(value: Value, spec: str) -> str | None:
    """``value`` as ``spec`` says, cleaned for a display; None if it cannot be shown."""
    if isinstance(value, str):
        try:
            return cleaned(format(value, spec))
        except ValueError:  # a numeric spec on text pushed as content: show the text
            return cleaned(value)
    try:
        return format(value, spec or ("g" if isinstance(value, float) else ""))
    except (ValueError, OverflowError):  # a number beyond what the spec can show
        return None
