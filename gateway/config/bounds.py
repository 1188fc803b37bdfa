"""Limits a config file must keep before ``tomllib`` sees it.

``tomllib`` is written for trusted input: it recurses once per nested array or inline table (a
few hundred ``[`` exhaust the interpreter's stack), its handling of a dotted key is quadratic in
the number of parts (``a.a.a...`` with 10,000 parts takes 400 MB), and an integer of more than
4,300 digits raises a bare ValueError. A real config nests three levels and has keys of three
parts, so the limits here are far above any config and far below any harm. One pass over the
text finds the first place that breaks one, skipping strings and comments, whose brackets and
dots mean nothing.
"""

from __future__ import annotations

import re
from typing import Final

MAX_BYTES: Final = 256 * 1024  # a config with dozens of devices and rules is a few dozen KiB
MAX_DEPTH: Final = 32  # open arrays and inline tables at once
MAX_DOTS: Final = 64  # dots outside strings on one line: dotted keys, and floats in an array
MAX_DIGITS: Final = 4000  # CPython converts at most 4,300 digits to an int
_TOKEN: Final = re.compile(rf"\n|#[^\n]*|[\"'\[\]{{}}.]|(?<![0-9_])[0-9_]{{{MAX_DIGITS},}}")
_STRING_ENDS: Final = {'"': re.compile(r'"|\\.|\n', re.S), "'": re.compile(r"'|\n")}
_LONG_STRING_ENDS: Final = {'"': re.compile(r'"""|\\.', re.S), "'": re.compile(r"'''")}


def shape_problem(text: str) -> tuple[int, str] | None:
    """(line, what is wrong) for the first limit ``text`` breaks, else None."""
    depth = dots = 0
    line, pos = 1, 0
    while (m := _TOKEN.search(text, pos)) is not None:
        token, pos = m.group(), m.end()
        c = token[0]
        if c == "\n":
            line, dots = line + 1, 0
        elif c in "\"'":
            pos = _end_of_string(text, m.start())
            if (newlines := text.count("\n", m.start(), pos)) > 0:
                line, dots = line + newlines, 0
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line, f"arrays and tables nest more than {MAX_DEPTH} deep"
        elif c in "]}":
            depth = max(0, depth - 1)
        elif c == ".":
            dots += 1
            if dots > MAX_DOTS:
                return line, f"more than {MAX_DOTS} dots outside strings on one line"
        elif c != "#":
            return line, f"a number of more than {MAX_DIGITS} digits"
    return None


def _end_of_string(text: str, i: int) -> int:
    """The index after the string that opens at ``i`` (the end of the text if it never closes:
    ``tomllib`` reports that, with its line)."""
    quote = text[i]
    long = text.startswith(quote * 3, i)
    pattern = (_LONG_STRING_ENDS if long else _STRING_ENDS)[quote]
    pos = i + (3 if long else 1)
    while (m := pattern.search(text, pos)) is not None:
        if m.group() in (quote, quote * 3, "\n"):
            return m.end()
        pos = m.end()  # an escape, such as \" inside a basic string
    return len(text)
