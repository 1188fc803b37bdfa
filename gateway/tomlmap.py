"""Where each key of a TOML document is, by line, so config errors can name their line.

``tomllib`` gives values but no positions, and a config error without a line number sends the
integrator hunting. TOML's line structure is simple enough to index directly: table headers,
array-of-tables headers, ``key = value`` lines (dotted and quoted keys included) and the keys of
inline tables. Multi-line strings and arrays are skipped over so their contents are never taken
for keys. The map is only used to place messages; the values always come from ``tomllib``.
"""

from __future__ import annotations

import re
from typing import Final

Path = tuple[str | int, ...]

_BARE_KEY: Final = r"[A-Za-z0-9_-]+"
_KEY: Final = rf'(?:{_BARE_KEY}|"[^"]*"|\'[^\']*\')'
_DOTTED: Final = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_TABLE_RE: Final = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]\s*(?:#.*)?$")
_ARRAY_RE: Final = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]\s*(?:#.*)?$")
_KEYVAL_RE: Final = re.compile(rf"^\s*({_DOTTED})\s*=\s*(.*)$")
_INLINE_KEY_RE: Final = re.compile(rf"(?:^|[{{,])\s*({_DOTTED})\s*=")


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = re.findall(_KEY, dotted)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _normalise(part: str) -> str | int:
    # Inline tables such as antennas = { 1 = "door" } have integer-looking keys. Only ASCII
    # digits, and few: "²" is a digit to str.isdigit, and int() refuses thousands of digits.
    return int(part) if part.isascii() and part.isdigit() and len(part) < 10 else part


class TomlMap:
    """Maps key paths (``("readers", 0, "port")``) to 1-based line numbers."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path, int] = {}
        self._arrays: dict[Path, int] = {}
        self._scan(text)

    def line_of(self, path: Path) -> int:
        """The line of the longest known prefix of ``path``; 1 when nothing matches."""
        for n in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:n]))
            if line is not None:
                return line
        return 1

    def _within_arrays(self, dotted: tuple[str, ...]) -> Path:
        """``[[rules.actions]]`` and ``[rules.trigger]`` belong to the last ``[[rules]]``
        element: its index goes into the path, as pydantic locates errors."""
        path: list[str | int] = []
        for part in dotted[:-1]:
            path.append(_normalise(part))
            index = self._arrays.get(tuple(path))
            if index is not None:
                path.append(index)
        return (*path, _normalise(dotted[-1]))

    def _scan(self, text: str) -> None:
        current: Path = ()
        skip_until: str | None = None
        depth = 0
        # Lines end at \n only: splitlines() would also break at \u2028 and \x0c, which TOML
        # lets a string hold, and every line after would be misnumbered.
        for lineno, raw in enumerate(text.split("\n"), start=1):
            if skip_until is not None:
                if skip_until in raw:
                    skip_until = None
                continue
            if depth > 0:
                depth += _bracket_balance(raw)
                continue
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if m := _ARRAY_RE.match(line):
                base = self._within_arrays(_split_key(m.group(1)))
                index = self._arrays.get(base, -1) + 1
                self._arrays[base] = index
                current = (*base, index)
                self.lines.setdefault(base, lineno)
                self.lines[current] = lineno
            elif m := _TABLE_RE.match(line):
                current = self._within_arrays(_split_key(m.group(1)))
                self.lines[current] = lineno
            elif m := _KEYVAL_RE.match(line):
                key = (*current, *(_normalise(k) for k in _split_key(m.group(1))))
                self.lines[key] = lineno
                value = m.group(2)
                skip_until = _multiline_string_end(value)
                depth = _bracket_balance(value)
                if value.lstrip().startswith("{"):
                    for inner in _INLINE_KEY_RE.findall(value):
                        sub = tuple(_normalise(k) for k in _split_key(inner))
                        self.lines[(*key, *sub)] = lineno


def _multiline_string_end(value: str) -> str | None:
    for quote in ('"""', "'''"):
        if value.count(quote) == 1:
            return quote
    return None


def _bracket_balance(text: str) -> int:
    # Strings may hold brackets; drop them before counting.
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'[^\']*\'', "", text).split("#", 1)[0]
    return text.count("[") + text.count("{") - text.count("]") - text.count("}")
