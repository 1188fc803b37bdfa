"""Text for displays and labels: what may be shown, and how pushed text is made showable.

A shelf display or e-paper label draws what it is sent. Control characters (C0, DEL, C1) move
cursors, clear screens or switch modes on some panels; bidirectional overrides and isolates
(U+202A-U+202E, U+2066-U+2069) and the invisible marks U+200E, U+200F and U+061C reorder what
follows them, so "price 9.99" can be drawn as "99.9 ecirp" or a warning hidden behind a
harmless prefix. Plain text in any script keeps its natural direction without them.

A command carrying such a character is refused whole (``unsafe``): the sender has to know its
text was not shown as sent. Text a rule renders from pushed content is ``cleaned`` instead:
controls become a space (a tab or newline in a title still separates words), direction marks
are dropped, and the rest of the line is shown.

Commands and outputs refuse with ``unsafe``; the rules' templates render with ``cleaned``. This
module imports nothing of ours, so the template language that the config loads stays a leaf.
"""

from __future__ import annotations

import re
from typing import Final

_CONTROLS: Final = "\x00-\x1f\x7f-\x9f"
_BIDI: Final = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE: Final = re.compile(f"[{_CONTROLS}{_BIDI}]")
_CONTROL: Final = re.compile(f"[{_CONTROLS}]")
_DIRECTION: Final = re.compile(f"[{_BIDI}]")


def unsafe(text: str) -> str | None:
    """A description of the first character that may not be shown, or None if all may."""
    m = _UNSAFE.search(text)
    return None if m is None else f"U+{ord(m.group()):04X} at position {m.start() + 1}"


def cleaned(text: str) -> str:
    return _DIRECTION.sub("", _CONTROL.sub(" ", text))
