"""``silentgate central run`` reaches a broker as an installation configures it: mosquitto that
takes only TLS with a client certificate from a private CA and a password, the consumer given
its CA, certificate, key and password file in ``[central]``; an event published there is stored.
Without the client certificate the same consumer never connects and stores nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from central_rig import ConsumerProcess
from tls import PASSWORD, USERNAME, TlsMosquitto, make_pki

from demo.broker import find_mosquitto
from gateway.config.mqtt import MqttConfig
from gateway.events.ids import new_event_id
from gateway.uplink.brokerclient import connected
from tests.waiting import until

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto"),
]

PREFIX = "silentcommerce/v1"


def event(seq: int) -> bytes:
    doc = {"schema": "silentcommerce.event/v1", "id": str(new_event_id()), "seq": seq,
           "type": "presence.enter", "ts": "2026-11-23T10:00:00.000Z", "store": "store-042",
           "gateway": "gw-1", "zone": "entrance", "subject": {"kind": "customer", "id": "c1"},
           "source": {"device": "door"}}  # fmt: skip
    return json.dumps(doc).encode()


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.OperationalError:  # the consumer has not created the table yet
            return 0


def connection_keys(pki: Path, password: Path, *, client_cert: bool) -> str:
    keys = f'username = "{USERNAME}"\npassword_file = "{password}"\nca_file = "{pki / "ca.crt"}"\n'
    if client_cert:
        keys += f'cert_file = "{pki / "client.crt"}"\nkey_file = "{pki / "client.key"}"\n'
    return keys


async def test_the_consumer_connects_with_tls_a_client_certificate_and_a_password(
    tmp_path: Path,
) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    db = tmp_path / "central.db"
    with TlsMosquitto(pki) as broker:
        url = f"mqtts://127.0.0.1:{broker.port}"
        keys = connection_keys(pki, password, client_cert=True)
        member = ConsumerProcess(tmp_path, "tls-1", url, f"sqlite:///{db}", grace_s=60, extra=keys)
        member.start()
        try:
            mqtt = MqttConfig(url=url, username=USERNAME, password_file=password,
                              ca_file=pki / "ca.crt", cert_file=pki / "client.crt",
                              key_file=pki / "client.key")  # fmt: skip
            async with connected(mqtt) as publisher:
                topic = f"{PREFIX}/store-042/gw-1/event/presence/enter"
                await publisher.publish(topic, event(1), qos=1)
            await until(lambda: stored(db) == 1, timeout=20)
        finally:
            member.stop()


async def test_without_the_client_certificate_the_consumer_stores_nothing(
    tmp_path: Path,
) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    db = tmp_path / "central.db"
    with TlsMosquitto(pki) as broker:
        url = f"mqtts://127.0.0.1:{broker.port}"
        keys = connection_keys(pki, password, client_cert=False)
        member = ConsumerProcess(tmp_path, "tls-2", url, f"sqlite:///{db}", grace_s=60, extra=keys)
        member.launch()
        assert member.proc is not None
        try:
            await until(lambda: f"broker {url}" in member.log_text(), timeout=20)
            assert member.connections() == 0
            assert member.proc.poll() is None  # still trying: a refused connection is no exit
        finally:
            member.stop()
        assert stored(db) == 0
