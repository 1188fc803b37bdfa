"""Hostile config files, generated: whatever the file holds, ``load_config`` returns a config or
raises ConfigError of one-line, located problems; nothing else escapes (h11's ``fuzz/`` makes
the same promise for its parser).

Documents start from a valid config and are mutated as a careless or hostile hand would: keys
dropped, values swapped for other types, huge strings and numbers, deep nesting, unicode and
control characters, duplicate entries, paths that cannot exist, junk spliced into the text.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.config import load_config
from gateway.config.bounds import MAX_BYTES
from gateway.errors import ConfigError

Doc = dict[str, Any]


def base_doc(tmp: Path) -> Doc:
    return {
        "site": {"store": "store-042", "gateway": "gw-1"},
        "mqtt": {"url": "mqtt://127.0.0.1:1883", "password_file": str(tmp / "password")},
        "storage": {"path": str(tmp / "state" / "outbox.db"), "max_bytes": 1 << 20},
        "privacy": {"secret_file": str(tmp / "secret")},
        "tags": {"customer_prefixes": ["C0FFEE"]},
        "readers": [
            {"id": "door", "driver": "thingmagic", "port": "/dev/ttyUSB0",
             "antennas": {"1": "entrance", "2": "shelf-a"}},
            {"id": "cards", "driver": "em4100", "port": "/dev/ttyUSB1", "zone": "entrance"},
        ],
        "sensors": [
            {"id": "scale", "driver": "modbus-scale", "port": "/dev/ttyUSB2", "zone": "shelf-a"}
        ],
        "zones": [{"id": "shelf-a", "dwell_s": 8.0}],
        "outputs": [
            {"id": "lamp", "driver": "relay", "port": "/dev/ttyUSB3", "channels": 2},
            {"id": "screen", "driver": "serial-display", "port": "/dev/ttyUSB4"},
        ],
        "rules": [
            {"id": "greet", "trigger": {"event": "presence.dwell", "zones": ["shelf-a"],
                                        "subject": "customer"},
             "actions": [{"output": "lamp", "do": "switch", "channel": 1}]},
            {"id": "hello", "trigger": {"event": "presence.enter", "zones": ["entrance"],
                                        "between": "08:00-20:00", "days": ["mon", "sat"]},
             "actions": [{"output": "screen", "do": "show", "text": "Hello at {zone}"}]},
        ],
    }  # fmt: skip


# -- TOML text from a document: tables and arrays of tables at the top, inline tables below --

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def toml_string(text: str) -> str:
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        elif 0xD800 <= ord(c) <= 0xDFFF:
            out.append("?")  # a lone surrogate cannot be in a TOML file at all
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    return key if _BARE.fullmatch(key) else toml_string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(str(value), repr(value))
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_text(doc: Doc) -> str:
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items() if not _table_like(v)]
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"\n[{toml_key(key)}]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
        elif _table_like(value):
            for entry in value:
                lines.append(f"\n[[{toml_key(key)}]]")
                lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def _table_like(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )


# -- mutations --------------------------------------------------------------------------------


def impossible_paths(tmp: Path) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            str(tmp / "a-file" / "outbox.db"),  # the parent is a regular file
            str(tmp / ("x" * 300) / "outbox.db"),
            str(tmp / "x") + "\0y",
            "/" + "d/" * 2100 + "f",  # over PATH_MAX
            str(tmp),  # a directory
            "/dev/zero",
            "/",
            "",
            str(tmp / "fifo"),
            str(tmp / "missing"),
        ]
    )


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def hostile_values(tmp: Path) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.text(max_size=40),
        st.text(min_size=5000, max_size=20000, alphabet=st.characters(codec="utf-8")),
        st.integers(),
        st.integers(min_value=10**300, max_value=10**1000),
        st.floats(),
        st.booleans(),
        impossible_paths(tmp),
        st.sampled_from(["store-042", "door", "entrance", "thingmagic", "relay", "show"]),
    )
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=5),
        st.dictionaries(st.text(max_size=10), scalars, max_size=3),
        st.integers(min_value=1, max_value=60).map(nested),
    )


@st.composite
def mutated(draw: st.DrawFn, tmp: Path) -> Doc:
    doc = base_doc(tmp)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        _mutate_once(draw, doc, tmp)
    return doc


def _mutate_once(draw: st.DrawFn, doc: Doc, tmp: Path) -> None:
    holder, key = _pick(draw, doc)
    action = draw(st.sampled_from(["drop", "swap", "add", "duplicate", "path"]))
    if action == "drop" and holder:
        del holder[key]
    elif action == "swap" and holder:
        holder[key] = draw(hostile_values(tmp))
    elif action == "add":
        holder[draw(st.text(min_size=1, max_size=300))] = draw(hostile_values(tmp))
    elif action == "duplicate":
        section = draw(st.sampled_from(["readers", "sensors", "outputs", "zones", "rules"]))
        entries = doc.get(section)
        if isinstance(entries, list) and entries:
            entries.append(copy.deepcopy(draw(st.sampled_from(entries))))
    elif action == "path":
        table = draw(st.sampled_from([("storage", "path"), ("privacy", "secret_file")]))
        if isinstance(doc.get(table[0]), dict):
            doc[table[0]][table[1]] = draw(impossible_paths(tmp))


def _pick(draw: st.DrawFn, doc: Doc) -> tuple[dict[str, Any], str]:
    """A table somewhere in the document and one of its keys (the holder may be empty)."""
    holder: dict[str, Any] = doc
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        children = [v for v in holder.values() if isinstance(v, dict | list)]
        if not children:
            break
        child = draw(st.sampled_from(children))
        if isinstance(child, list):
            tables = [v for v in child if isinstance(v, dict)]
            if not tables:
                break
            child = draw(st.sampled_from(tables))
        holder = child
    key = draw(st.sampled_from(sorted(holder))) if holder else ""
    return holder, key


@st.composite
def spliced(draw: st.DrawFn, text: str) -> str:
    """Junk put into the text where a hand or a bad copy would put it."""
    junk = draw(
        st.one_of(
            st.text(max_size=200),
            st.sampled_from(["[", "[[readers]]", "[site]", "a = ", '"', "'''", "{", "\x00"]),
            st.integers(min_value=1, max_value=400).map(lambda n: "x = " + "[" * n + "]" * n),
            st.integers(min_value=1, max_value=2000).map(lambda n: "k" + ".k" * n + " = 1"),
            st.integers(min_value=4000, max_value=6000).map(lambda n: "n = " + "9" * n),
        )
    )
    lines = text.splitlines()
    at = draw(st.integers(min_value=0, max_value=len(lines)))
    return "\n".join([*lines[:at], junk, *lines[at:]]) + "\n"


# -- the property ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "a-file").write_text("a regular file\n")
    (tmp / "password").write_text("mqtt-password\n")
    (tmp / "secret").write_text("a-secret-of-at-least-sixteen-bytes\n")
    os.mkfifo(tmp / "fifo")
    return tmp


def assert_loads_or_refuses(file: Path, text: str | bytes) -> None:
    if isinstance(text, str):
        file.write_text(text, encoding="utf-8", errors="surrogatepass")
    else:
        file.write_bytes(text)
    try:
        load_config(file)
    except ConfigError as exc:
        problems = exc.problems
    else:
        event("loaded")
        return
    event("refused")
    assert problems
    for problem in problems:
        line = str(problem)
        assert problem.line >= 1, line
        assert line.startswith(f"{file}:{problem.line}: "), line
        assert len(line.splitlines()) == 1, line
        assert len(problem.message) <= 200, line
        assert len(problem.path) <= 200, line


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_a_mutated_document_loads_or_is_refused_with_located_problems(
    workdir: Path, data: st.DataObject
) -> None:
    text = toml_text(data.draw(mutated(workdir)))
    if data.draw(st.booleans()):
        text = data.draw(spliced(text))
    assert_loads_or_refuses(workdir / "gw.toml", text)


@settings(max_examples=100)
@given(raw=st.binary(max_size=2000))
def test_any_bytes_load_or_are_refused_with_located_problems(workdir: Path, raw: bytes) -> None:
    assert_loads_or_refuses(workdir / "raw.toml", raw)


def test_the_base_document_is_valid(workdir: Path) -> None:
    file = workdir / "base.toml"
    file.write_text(toml_text(base_doc(workdir)))
    config = load_config(file)
    assert [r.id for r in config.rules] == ["greet", "hello"]


def test_a_file_past_the_size_bound_is_refused_at_the_line_it_crosses(workdir: Path) -> None:
    file = workdir / "big.toml"
    file.write_text(toml_text(base_doc(workdir)) + "# padding\n" * (MAX_BYTES // 10))
    with pytest.raises(ConfigError) as info:
        load_config(file)
    (problem,) = info.value.problems
    assert problem.line == file.read_bytes()[:MAX_BYTES].count(b"\n") + 1
    assert "larger than 256 KiB" in problem.message


CLI_CASES = {
    "deep": "x = " + "[" * 500 + "]" * 500,
    "dotted": "k" + ".k" * 20000 + " = 1",
    "digits": "n = " + "9" * 5000,
    "driverless": '[[readers]]\nid = "r"\nport = "/dev/null"\n',
    "unicode-key": '"\u00b2" = 1\n"\u2028" = 2\n',
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_hostile_documents_through_check_config(workdir: Path, case: str) -> None:
    base = toml_text(base_doc(workdir))
    file = workdir / f"cli-{case}.toml"
    file.write_text(CLI_CASES[case] + "\n" + base)
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(file)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    for line in done.stderr.splitlines():
        assert re.match(rf"{re.escape(str(file))}:[1-9][0-9]*: \S", line), line
