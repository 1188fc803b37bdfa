"""``central run``'s settings: the broker as the gateway's tools take it, connection files
checked at start (a usage error, not a retry loop)."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.settings import SettingsError, load


def test_host_and_port_is_an_mqtt_url() -> None:
    settings = load("broker.example:1884", "sqlite:///x.db", None, None)
    assert settings.broker == "mqtt://broker.example:1884"
    assert (settings.mqtt().host, settings.mqtt().port, settings.mqtt().tls) == (
        "broker.example", 1884, False,
    )  # fmt: skip


def test_connection_keys_become_the_gateways_mqtt_table(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("a password\n")
    config = tmp_path / "central.toml"
    config.write_text(f'[central]\nusername = "crm"\npassword_file = "{secret}"\n')
    mqtt = load("mqtts://broker.example", "sqlite:///x.db", None, config).mqtt()
    assert (mqtt.port, mqtt.tls, mqtt.username, mqtt.password_file) == (8883, True, "crm", secret)
    assert mqtt.protocol == "5"


@pytest.mark.parametrize("key", ["ca_file", "cert_file", "password_file"])
def test_a_connection_file_that_is_missing_is_refused_at_start(key: str, tmp_path: Path) -> None:
    config = tmp_path / "central.toml"
    config.write_text(f'[central]\n{key} = "{tmp_path / "missing"}"\n')
    with pytest.raises(SettingsError, match="missing"):
        load("mqtts://broker.example", "sqlite:///x.db", None, config)


@pytest.mark.parametrize("broker", ["http://broker.example", "mqtt://user:pw@broker.example"])
def test_a_broker_url_the_gateway_would_refuse_is_refused(broker: str) -> None:
    with pytest.raises(SettingsError, match="broker"):
        load(broker, "sqlite:///x.db", None, None)
