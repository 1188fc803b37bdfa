from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import ConfigError
from gateway.events import format_ts, parse_ts
from gateway.ids import Uuid7Factory
from gateway.privacy import Pseudonymizer


def test_uuid7_layout_and_order_within_one_millisecond() -> None:
    make = Uuid7Factory()
    ids = [make(1_790_000_000_123) for _ in range(5000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids, key=lambda u: u.int)
    assert len(set(ids)) == len(ids)
    assert int(ids[0].hex[:12], 16) == 1_790_000_000_123


def test_uuid7_never_goes_back_when_the_clock_does() -> None:
    make = Uuid7Factory()
    first = make(2_000_000)
    assert make(1_000_000).int > first.int


def test_hmac_pseudonym_matches_the_contract(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("  s3cret\n")
    p = Pseudonymizer.from_file("hmac-sha256", secret)
    expected = hmac.new(b"s3cret", b"0D00319CD0", hashlib.sha256).hexdigest()
    assert p.customer_id("0D00319CD0") == expected


def test_raw_and_omit_modes() -> None:
    assert Pseudonymizer("raw", None).customer_id("0D00319CD0") == "0D00319CD0"
    assert Pseudonymizer("omit", None).customer_id("0D00319CD0") is None


def test_hmac_mode_refuses_an_empty_or_missing_secret(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        Pseudonymizer.from_file("hmac-sha256", tmp_path / "empty")
    with pytest.raises(ConfigError, match="cannot read"):
        Pseudonymizer.from_file("hmac-sha256", tmp_path / "missing")


def test_timestamps_are_utc_milliseconds_with_z() -> None:
    assert format_ts(1_795_000_000.1234) == "2026-11-18T11:06:40.123Z"


@given(st.integers(min_value=0, max_value=4_000_000_000_000))
def test_timestamp_round_trip(ms: int) -> None:
    assert round(parse_ts(format_ts(ms / 1000)) * 1000) == ms
