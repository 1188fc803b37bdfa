from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_config, parse_config
from gateway.errors import ConfigError

VALID = """\
[site]
store = "store-042"
gateway = "gw-1"

[mqtt]
url = "mqtt://127.0.0.1:1883"

[privacy]
customer_ids = "raw"

[[readers]]
id = "door"
driver = "thingmagic"
port = "/dev/ttyUSB0"
antennas = { 1 = "entrance", 2 = "shelf-a" }

[[readers]]
id = "cards"
driver = "em4100"
port = "socket://127.0.0.1:7000"
zone = "entrance"

[[zones]]
id = "shelf-a"
dwell_s = 8.0
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "store.toml")
    return [str(p) for p in info.value.problems]


def test_valid_config_has_defaults_and_undeclared_zones() -> None:
    config = parse_config(VALID)
    assert config.mqtt.port == 1883
    assert config.storage.synchronous == "full"
    zones = {z.id: z.dwell_s for z in config.all_zones()}
    assert zones == {"shelf-a": 8.0, "entrance": 5.0}
    assert config.client_id == "silentgate-store-042-gw-1"


def test_unknown_key_is_reported_with_its_line() -> None:
    text = VALID.replace('url = "mqtt://127.0.0.1:1883"', 'url = "mqtt://h"\nurll = "x"')
    assert problems(text) == ["store.toml:7: mqtt.urll: unknown key"]


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = VALID.replace('store = "store-042"', 'store = "Store 42"').replace(
        'port = "/dev/ttyUSB0"', 'port = "/dev/ttyUSB0"\nbaud = 9600'
    )
    found = problems(text)
    assert len(found) == 2
    assert found[0].startswith("store.toml:2: site.store: 'Store 42' must match")
    assert found[1] == "store.toml:15: readers.0.baud: unknown key"


def test_missing_field_points_at_its_table() -> None:
    text = VALID.replace('zone = "entrance"\n', "")
    assert problems(text) == ["store.toml:17: readers.1.zone: Field required"]


def test_inline_table_keys_are_located() -> None:
    text = VALID.replace('2 = "shelf-a"', '22 = "shelf-a"')
    found = problems(text)
    assert found[0].startswith("store.toml:15: readers.0.antennas.22: Input should be less")


def test_syntax_error_reports_the_line() -> None:
    text = VALID.replace('gateway = "gw-1"', 'gateway = "gw-1')
    (found,) = problems(text)
    assert found.startswith("store.toml:3: toml: syntax error")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('url = "mqtt://127.0.0.1:1883"', 'url = "http://x"', "mqtt.url: must start with"),
        ('url = "mqtt://127.0.0.1:1883"', 'url = "mqtt://u:p@x"', "mqtt.url: must not hold"),
        (
            'driver = "em4100"',
            'driver = "rdm"',
            "store.toml:19: readers.1.driver: unknown or missing driver (expected one of:",
        ),
        ('id = "cards"', 'id = "door"', "device id 'door' is used twice"),
    ],
)
def test_bad_values(old: str, new: str, expected: str) -> None:
    assert any(expected in p for p in problems(VALID.replace(old, new)))


def test_hmac_mode_needs_the_secret_file(tmp_path: Path) -> None:
    text = VALID.replace('customer_ids = "raw"', f'secret_file = "{tmp_path / "nope"}"')
    (found,) = problems(text)
    assert found.startswith("store.toml:9: privacy.secret_file: no such file")
    (tmp_path / "nope").write_text("a-secret-of-16-bytes-or-more\n")
    assert parse_config(text).privacy.customer_ids == "hmac-sha256"


def test_needs_a_device() -> None:
    text = VALID.split("[[readers]]", maxsplit=1)[0]
    assert any("at least one [[readers]] or [[sensors]]" in p for p in problems(text))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.toml")


def test_a_line_separator_in_a_comment_does_not_shift_the_lines() -> None:
    # TOML ends lines at \n only; U+2028 and U+0085 are ordinary characters to it.
    text = VALID.replace('gateway = "gw-1"', 'gateway = "gw-1"  # a\u2028note\x85that goes on')
    text = text.replace('port = "/dev/ttyUSB0"', 'port = "/dev/ttyUSB0"\nbaud = 9600')
    expected = text.split("\n").index("baud = 9600") + 1
    assert problems(text) == [f"store.toml:{expected}: readers.0.baud: unknown key"]


def test_a_quoted_key_of_unicode_digits_is_an_unknown_key() -> None:
    text = '"\u00b2" = 1\n' + VALID
    expected = text.split("\n").index('"\u00b2" = 1') + 1
    assert problems(text) == [f"store.toml:{expected}: '\\xb2': unknown key"]
