"""The uplink's own ending and its failures, against a real broker: the retained status says
offline whenever the daemon goes away for any reason but a lost connection (another part of the
daemon failing, in a ``silentgate run`` process and in-process; an error in the uplink itself),
a handler that raises costs its message only, and the reason a TLS connection fails is logged
at WARNING once, not at every retry."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from demo.broker import BrokerProcess, environment_broker_kind, find_mosquitto
from firmware_sim.pty import SimPort
from gateway.outbox import Outbox
from gateway.rules.content import ContentStore
from gateway.uplink.session import Uplink
from gateway.uplink.status import StatusBoard
from tests.integration.inbound_rig import (
    base_of,
    gateway_config,
    publish_retained,
    rejected,
    retained_status,
    status_where,
    uplink_config,
)
from tests.integration.test_faults import Daemon, until
from tests.integration.test_uplink import TlsMosquitto, make_config, make_pki, run_until

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


class CrashingDaemon(Daemon):
    """``silentgate run`` whose pipeline raises once ``trigger`` exists."""

    def __init__(self, tmp: Path, config: Path, trigger: Path) -> None:
        super().__init__(tmp, config)
        self.trigger = trigger

    def start(self) -> None:
        self.starts += 1
        log = (self.tmp / f"daemon-{self.starts}.log").open("wb")
        command = [sys.executable, "-m", "tests.integration.crashing_gateway", str(self.trigger)]
        self.proc = subprocess.Popen(
            [*command, "run", "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()


@pytest.mark.slow
async def test_a_daemon_that_fails_on_its_own_leaves_the_status_offline(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    base = base_of("gw-crash")
    async with SimPort(tmp_path, "door") as door:
        config = tmp_path / "gw.toml"
        config.write_text(gateway_config(tmp_path, broker.port, gateway="gw-crash", readers=[door]))
        daemon = CrashingDaemon(tmp_path, config, tmp_path / "fail-now")
        daemon.start()
        try:
            await status_where(broker, base, daemon, lambda s: s["devices"].get("door") == "ok")
            daemon.trigger.touch()
            assert daemon.proc is not None
            rc = await asyncio.to_thread(daemon.proc.wait, 30)
        finally:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()
    assert rc == 1, daemon.logs()
    assert "InjectedFailure" in daemon.logs()
    assert (await retained_status(broker, base))["state"] == "offline"


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox.open(tmp_path / "outbox.db")


async def online(broker: BrokerProcess, base: str) -> None:
    await status_where(broker, base, None, lambda s: True)


async def test_an_uplink_cancelled_by_a_failure_elsewhere_says_offline_first(
    broker: BrokerProcess, tmp_path: Path, outbox: Outbox
) -> None:
    config = uplink_config(tmp_path, broker, "gw-cancel")
    uplink = Uplink(config, outbox, StatusBoard(outbox.backlog))
    task = asyncio.create_task(uplink.run())
    await online(broker, uplink.base)
    task.cancel()  # what the daemon's task group does when another part fails
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await retained_status(broker, uplink.base))["state"] == "offline"


async def test_an_error_in_the_uplink_itself_says_offline_before_it_ends(
    broker: BrokerProcess, tmp_path: Path, outbox: Outbox
) -> None:
    status = StatusBoard(outbox.backlog)
    calls = 0

    def telemetry() -> dict[str, object]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ZeroDivisionError("a bug in a figure of the status")
        return {}

    status.telemetry = telemetry
    uplink = Uplink(uplink_config(tmp_path, broker, "gw-bug"), outbox, status)
    task = asyncio.create_task(uplink.run())
    await online(broker, uplink.base)
    status.touch()  # the next status publish meets the bug
    with pytest.raises(ExceptionGroup) as failed:
        await asyncio.wait_for(task, 15)
    assert failed.group_contains(ZeroDivisionError)
    assert (await retained_status(broker, uplink.base))["state"] == "offline"


class BuggyStore(ContentStore):
    """A content store with a bug that one message meets."""

    def apply(self, topic_suffix: str, payload: bytes) -> bool:
        if payload == b'{"title": "boom"}':
            raise KeyError("a bug")
        return super().apply(topic_suffix, payload)


async def test_a_handler_that_raises_costs_its_message_and_nothing_else(
    broker: BrokerProcess, tmp_path: Path, outbox: Outbox
) -> None:
    store = BuggyStore(tmp_path / "content.json")
    status = StatusBoard(outbox.backlog)
    config = uplink_config(tmp_path, broker, "gw-handler")
    uplink = Uplink(config, outbox, status, content=store)
    task = asyncio.create_task(uplink.run())
    topic = f"{uplink.base}/content/zone"
    try:
        await online(broker, uplink.base)
        await publish_retained(broker, [(f"{topic}/a", b'{"title": "boom"}')])
        await publish_retained(broker, [(f"{topic}/b", b'{"title": "fine"}')])
        await run_until(lambda: store.zone("b") is not None)
        seen = await status_where(
            broker, uplink.base, None, lambda s: rejected(s, "content", "handler_error")
        )
    finally:
        await publish_retained(broker, [(f"{topic}/a", b""), (f"{topic}/b", b"")])
        uplink.stop()
        await task
    assert store.zone("b") == {"title": "fine"}
    assert seen["counters"]["inbound_rejected"]["content"] == {"handler_error": 1}


needs_mosquitto = pytest.mark.skipif(
    find_mosquitto() is None and environment_broker_kind() != "mosquitto",
    reason="needs mosquitto (TLS)",
)


@needs_mosquitto
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
# paho leaves the socket of a failed TLS handshake (ssl_sock.do_handshake() raising in
# _ssl_wrap_socket) to the garbage collector, which warns about it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_why_a_tls_connection_fails_is_logged_at_warning_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    with TlsMosquitto(pki) as broker:
        # The system's CA store, which does not know the test CA: verification fails each time.
        config = make_config(f"mqtts://127.0.0.1:{broker.port}", tmp_path)  # no ca_file
        store = Outbox.open(config.storage.path)
        uplink = Uplink(config, store, StatusBoard(store.backlog))
        task = asyncio.create_task(uplink.run())
        retries = lambda: caplog.text.count("unreachable; retrying")  # noqa: E731
        with caplog.at_level(logging.DEBUG, logger="gateway.uplink"):
            await until(lambda: retries() >= 3, 30, "three attempts")
        uplink.stop()
        await task
    reasons = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "certificate verify failed" in r.getMessage()
    ]
    assert len(reasons) == 1, caplog.text
    assert str(broker.port) in reasons[0].getMessage()
