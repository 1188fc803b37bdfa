"""Bounded JSON: the depth scan agrees with the real nesting of any JSON value (brackets inside
strings included), values within the limits parse as ``json.loads`` parses them, and anything
else is our error with its code, never an exception of the parser."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InputError
from gateway.wire.bounded_json import Limits, parse, parse_array, too_deep

LIMITS = Limits(max_bytes=4096, max_depth=4, max_keys=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**15) + 1, 10**15 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab[]{}"\\\\ é\\n'), max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


def depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@given(values)
def test_the_depth_scan_agrees_with_the_nesting(value: object) -> None:
    encoded = json.dumps(value).encode()
    for limit in range(6):
        assert too_deep(encoded, limit) == (depth(value) > limit)


@given(values)
def test_values_within_the_limits_parse_like_json_loads(value: object) -> None:
    encoded = json.dumps(value).encode()
    try:
        outcome: tuple[str, object] = ("parsed", parse(encoded, LIMITS))
    except InputError as exc:
        outcome = ("refused", exc.code)
    refusals = [("refused", c) for c in ("too_large", "too_deep", "number", "object")]
    assert outcome in refusals or outcome == ("parsed", json.loads(encoded))


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_parse_or_raise_our_error(payload: bytes) -> None:
    code = None
    try:
        parse(payload, LIMITS)
    except InputError as exc:
        code = exc.code
    assert code in (None, "too_large", "too_deep", "number", "object", "malformed")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"x" * 4097, "too_large"),
        (b"[" * 5 + b"]" * 5, "too_deep"),
        (b"[" * 100_000, "too_large"),
        (b'{"a": 1' + b"0" * 15 + b"}", "number"),
        (b'{"a": 1e309}', "number"),
        (b'{"a": -Infinity}', "number"),
        (b'{"a": 1, "a": 2}', "object"),
        (b'{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9}', "object"),
        (b'{"a": "\xff"}', "malformed"),
    ],
)
def test_each_limit_has_its_code(payload: bytes, code: str) -> None:
    with pytest.raises(InputError) as refused:
        parse(payload, LIMITS)
    assert refused.value.code == code


def outcome_of(parser: Callable[[bytes, Limits], object], payload: bytes) -> tuple[str, object]:
    try:
        return ("parsed", parser(payload, LIMITS))
    except InputError as exc:
        return ("refused", exc.code)


@given(values, st.sampled_from([None, 0, 1]), st.sampled_from([(",", ":"), (" , ", " : ")]))
def test_an_array_parses_element_by_element_as_a_whole(
    value: object, indent: int | None, separators: tuple[str, str]
) -> None:
    encoded = json.dumps(value, indent=indent, separators=separators, ensure_ascii=False)
    whole = outcome_of(parse, f" {encoded}\n".encode())
    items = outcome_of(parse_array, f" {encoded}\n".encode())
    if whole[0] == "refused" or not isinstance(value, list):
        assert items == (whole if whole[0] == "refused" else ("parsed", None))
        return
    found = items[1]
    assert isinstance(found, list)
    assert [element for element, _ in found] == whole[1]
    assert [json.loads(text) for _, text in found] == whole[1]


@given(st.binary(max_size=200) | st.text(alphabet='[]{}," 1a\\', max_size=40).map(str.encode))
def test_any_bytes_split_or_raise_as_they_parse(payload: bytes) -> None:
    whole, items = outcome_of(parse, payload), outcome_of(parse_array, payload)
    if whole[0] == "refused":
        assert items == whole
    elif isinstance(whole[1], list):
        assert isinstance(items[1], list)
        assert [element for element, _ in items[1]] == whole[1]
    else:
        assert items == ("parsed", None)
