"""``[[outputs]]``: one model per driver, problems located as ``FILE:LINE: path: message``."""

from __future__ import annotations

import pytest

from gateway.config import parse_config
from gateway.config.outputs import OpenEPaperLinkOutput, RelayOutput, SerialDisplayOutput
from gateway.errors import ConfigError

BASE = """\
[site]
store = "store-042"
gateway = "gw-1"

[mqtt]

[privacy]
customer_ids = "raw"

[[readers]]
id = "cards"
driver = "em4100"
port = "/dev/ttyUSB1"
zone = "entrance"
"""

OUTPUTS = """
[[outputs]]
id = "door-lock"
driver = "relay"
port = "/dev/ttyUSB3"
channels = 2
answers_status = true

[[outputs]]
id = "shelf-3"
driver = "serial-display"
port = "/dev/ttyUSB4"
lines = 4
line_length = 20

[[outputs]]
id = "labels"
driver = "openepaperlink"
url = "http://192.168.1.50"
tags = { cheese = "00:00:02:1F:8A:3C:4D:5E", bread = "0000021f8a3c4d5f" }
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "store.toml")
    return [str(p) for p in info.value.problems]


def test_each_driver_gets_its_model_and_defaults() -> None:
    relay, display, labels = parse_config(BASE + OUTPUTS).outputs
    assert isinstance(relay, RelayOutput)
    assert (relay.baudrate, relay.channels, relay.answers_status) == (9600, 2, True)
    assert isinstance(display, SerialDisplayOutput)
    assert (display.baudrate, display.ack_timeout_s, display.retries) == (115200, 0.25, 3)
    assert isinstance(labels, OpenEPaperLinkOutput)
    assert labels.tags == {"cheese": "0000021F8A3C4D5E", "bread": "0000021F8A3C4D5F"}
    assert (labels.url.host, labels.url.port, labels.timeout_s) == ("192.168.1.50", 80, 5.0)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("channels = 2", "channels = 9", "store.toml:20: outputs.0.channels: Input should be"),
        (
            'driver = "relay"',
            'driver = "lcus"',
            "store.toml:18: outputs.0.driver: unknown or missing driver (expected one of: "
            "relay, serial-display, openepaperlink)",
        ),
        ("line_length = 20", "line_len = 20", "store.toml:28: outputs.1.line_len: unknown key"),
        ("lines = 4", "lines = 0", "store.toml:27: outputs.1.lines: Input should be greater"),
        (
            '4D:5E", bread',
            '4D:5X", bread',
            "store.toml:34: outputs.2.tags: not a tag MAC (12 or 16 hex digits): "
            "'00:00:02:1F:8A:3C:4D:5X'",
        ),
        (
            "http://192.168.1.50",
            "https://192.168.1.50",
            "store.toml:33: outputs.2.url: the access point speaks plain http only",
        ),
        ('id = "labels"', 'id = "cards"', "device id 'cards' is used twice"),
    ],
)
def test_bad_output_values_are_located(old: str, new: str, expected: str) -> None:
    text = BASE + OUTPUTS
    assert old in text
    found = problems(text.replace(old, new))
    assert any(expected in p for p in found), found


def test_a_relay_needs_a_port() -> None:
    text = (BASE + OUTPUTS).replace('port = "/dev/ttyUSB3"\n', "")
    assert problems(text) == ["store.toml:16: outputs.0.port: Field required"]
