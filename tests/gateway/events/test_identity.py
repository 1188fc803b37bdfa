from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import SecretError
from gateway.events.ids import Uuid7Factory
from gateway.events.model import format_ts, parse_ts
from gateway.events.privacy import MAX_SECRET_BYTES, Pseudonymizer, read_secret, secret_warning


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
    secret.write_text("  s3cret-of-16-bytes\n")
    p = Pseudonymizer.from_file("hmac-sha256", secret)
    expected = hmac.new(b"s3cret-of-16-bytes", b"0D00319CD0", hashlib.sha256).hexdigest()
    assert p.customer_id("0D00319CD0") == expected


def test_raw_and_omit_modes() -> None:
    assert Pseudonymizer("raw", None).customer_id("0D00319CD0") == "0D00319CD0"
    assert Pseudonymizer("omit", None).customer_id("0D00319CD0") is None


def test_hmac_mode_refuses_an_empty_or_missing_secret(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SecretError, match="empty"):
        Pseudonymizer.from_file("hmac-sha256", tmp_path / "empty")
    with pytest.raises(SecretError, match="no such file"):
        Pseudonymizer.from_file("hmac-sha256", tmp_path / "missing")


def test_a_secret_needs_16_bytes_after_stripping(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(" " + "k" * 15 + "\n")
    with pytest.raises(SecretError, match="holds 15 bytes; a secret needs at least 16"):
        read_secret(secret)
    secret.write_text(" " + "k" * 16 + "\n")
    assert read_secret(secret) == b"k" * 16


def test_only_a_regular_file_of_bounded_size_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(SecretError, match="is not a regular file"):
            read_secret(path)
    huge = tmp_path / "huge"
    huge.write_bytes(b"k" * (MAX_SECRET_BYTES + 1))
    with pytest.raises(SecretError, match="longer than 4096 bytes"):
        read_secret(huge)


def test_a_secret_open_to_others_is_a_warning(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("k" * 32)
    owned_by_root = os.geteuid() == 0
    verdicts = {}
    for mode in (0o600, 0o640, 0o604, 0o660):
        secret.chmod(mode)
        verdicts[mode] = secret_warning(secret)
    assert verdicts[0o600] is None
    assert (verdicts[0o640] is None) == owned_by_root  # root:service-group 0640 is the install
    assert "is readable by everyone (mode 0604)" in str(verdicts[0o604])
    assert "is readable by its group (mode 0660)" in str(verdicts[0o660])
    if owned_by_root:  # the same file owned by someone else: its group need not read it
        os.chown(secret, 65534, -1)
        secret.chmod(0o640)
        assert "is readable by its group (mode 0640)" in str(secret_warning(secret))


def test_timestamps_are_utc_milliseconds_with_z() -> None:
    assert format_ts(1_795_000_000.1234) == "2026-11-18T11:06:40.123Z"


@given(st.integers(min_value=0, max_value=4_000_000_000_000))
def test_timestamp_round_trip(ms: int) -> None:
    assert round(parse_ts(format_ts(ms / 1000)) * 1000) == ms
