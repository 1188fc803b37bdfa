"""``[web]``: off and on loopback by default, a password file off loopback, checked like the
privacy secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import parse_config, read_config
from gateway.config.sections import is_loopback
from gateway.errors import ConfigError

BASE = """\
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
antennas = { 1 = "entrance" }
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "store.toml")
    return [str(p) for p in info.value.problems]


def test_defaults_are_off_on_loopback_port_8080() -> None:
    web = parse_config(BASE).web
    assert (web.enabled, web.host, web.port, web.password_file) == (False, "127.0.0.1", 8080, None)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "localhost"])
def test_loopback_needs_no_password(host: str) -> None:
    config = parse_config(BASE + f'[web]\nenabled = true\nhost = "{host}"\n')
    assert config.web.host == host
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "gateway.local"])
def test_any_other_address_needs_a_password_file(host: str) -> None:
    (found,) = problems(BASE + f'[web]\nenabled = true\nhost = "{host}"\n')
    assert found.startswith("store.toml:13: web: ")
    assert "set web.password_file" in found


def test_the_password_file_is_checked_like_the_secret(tmp_path: Path) -> None:
    password = tmp_path / "web-password"
    text = BASE + f'[web]\nenabled = true\nhost = "0.0.0.0"\npassword_file = "{password}"\n'
    (found,) = problems(text)
    assert found.startswith(f"store.toml:16: web.password_file: no such file: {password}")
    password.write_text("short\n")
    (found,) = problems(text)
    assert "holds 5 bytes; a secret needs at least 16" in found
    password.write_text("a-password-of-16-bytes-or-more\n")
    password.chmod(0o644)
    config_file = tmp_path / "gw.toml"
    config_file.write_text(text)
    loaded = read_config(config_file)
    assert loaded.config.web.password_file == password
    (warning,) = (str(w) for w in loaded.warnings)
    assert "web.password_file: warning:" in warning
    assert "readable by everyone" in warning
    password.chmod(0o600)
    assert read_config(config_file).warnings == []
