"""Every ``silentgate`` command through the installed console script, as a user types it: a daemon
with a display started by ``silentgate run``, ``tail`` watching it, ``send`` changing the display,
``check-config``, ``doctor`` and ``--version`` beside them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from tls import PASSWORD, USERNAME, TlsMosquitto, make_pki

from demo.broker import BrokerProcess, find_mosquitto
from firmware_sim.display import DisplaySim
from firmware_sim.pty import SimPort
from gateway import __version__
from gateway.config import parse_config
from gateway.events.ids import new_event_id
from gateway.events.model import (
    AnyEvent,
    DeviceStatus,
    PresenceEnter,
    PresenceExit,
    Source,
    Subject,
)
from gateway.outbox import Outbox
from gateway.uplink.session import Uplink
from gateway.uplink.status import StatusBoard
from tests.waiting import background, until

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(120)]

SILENTGATE = str(Path(sys.executable).parent / "silentgate")


def config_text(tmp: Path, display: SimPort, mqtt: str) -> str:
    return f"""\
[site]
store = "store-042"
gateway = "gw-1"

[mqtt]
{mqtt}

[storage]
path = "{tmp / "state" / "outbox.db"}"

[privacy]
customer_ids = "omit"

[commands]
trust_unsynchronised_clock = true

[[readers]]
id = "cards"
driver = "em4100"
port = "{tmp / "no-such-tty"}"
zone = "entrance"

[[outputs]]
id = "shelf-a-display"
driver = "serial-display"
port = "{display.path}"
lines = 2
"""


async def silentgate(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        SILENTGATE, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    assert "Traceback" not in err.decode(), err.decode()
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def display(tmp_path: Path) -> AsyncIterator[tuple[SimPort, DisplaySim]]:
    async with SimPort(tmp_path, "display") as port:
        sim = DisplaySim(port)
        async with background(sim.run()):
            yield port, sim


async def daemon_tail_send(
    config: Path, display: DisplaySim, tail_args: list[str], send_args: list[str]
) -> None:
    """``run`` on ``config``; ``tail`` sees the display come up; ``send`` shows a line on it.
    The tools' arguments say how to reach the broker and the gateway."""
    tail = await asyncio.create_subprocess_exec(
        SILENTGATE, "tail", "--json", *tail_args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    log = config.parent / "daemon.log"
    with log.open("wb") as stderr:
        daemon = await asyncio.create_subprocess_exec(
            SILENTGATE, "run", "--config", str(config), stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    try:
        assert tail.stdout is not None
        seen: list[dict[str, object]] = []
        async with asyncio.timeout(60):
            while not any(e.get("device") == "shelf-a-display" for e in seen):
                seen.append(json.loads(await tail.stdout.readline()))
        rc, out, err = await silentgate(
            "send", *send_args, "shelf-a-display",
            '{"action": "show", "line": 1, "text": "Fresh coffee -20%", "duration_s": 30}',
        )  # fmt: skip
        assert rc == 0, out + err + log.read_text()
        result = json.loads(out)
        assert result["ok"] is True
        assert result["error"] is None
        await until(lambda: display.visible() == {0: "Fresh coffee -20%"})
        # run counts what check-config counts
        assert "gateway.daemon: silentgate " in log.read_text()
        assert ": 1 device, 1 output, 1 zone\n" in log.read_text()
    finally:
        for proc, sig in ((tail, signal.SIGINT), (daemon, signal.SIGTERM)):
            if proc.returncode is None:
                proc.send_signal(sig)
    assert await asyncio.wait_for(daemon.wait(), 30) == 0, log.read_text()
    assert await asyncio.wait_for(tail.wait(), 30) == 0


async def test_run_tail_send_check_config_doctor_and_version_as_typed(
    tmp_path: Path, display: tuple[SimPort, DisplaySim]
) -> None:
    port, sim = display
    with BrokerProcess() as broker:
        config = tmp_path / "store.toml"
        config.write_text(config_text(tmp_path, port, f'url = "{broker.url}"'))
        assert await silentgate("--version") == (0, f"silentgate {__version__}\n", "")
        rc, out, _ = await silentgate("check-config", str(config))
        assert (rc, out) == (0, f"{config}: ok (1 device, 1 output, 1 zone)\n")
        rc, out, _ = await silentgate("doctor", "--config", str(config), "--no-broker")
        assert "device cards" in out, out
        # host:port for one tool, a URL for the other
        tail = ["--broker", f"127.0.0.1:{broker.port}", "store-042/#"]
        send = ["--broker", broker.url, "--store", "store-042", "--gateway", "gw-1"]
        await daemon_tail_send(config, sim, tail, send)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto and mosquitto_passwd")
async def test_tools_reach_a_tls_broker_with_a_password_as_the_daemon_does(
    tmp_path: Path, display: tuple[SimPort, DisplaySim]
) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    (tmp_path / "password").write_text(PASSWORD + "\n")
    with TlsMosquitto(pki) as broker:
        port, sim = display
        config = tmp_path / "store.toml"
        mqtt = f"""\
url = "mqtts://127.0.0.1:{broker.port}"
username = "{USERNAME}"
password_file = "{tmp_path / "password"}"
ca_file = "{pki / "ca.crt"}"
cert_file = "{pki / "client.crt"}"
key_file = "{pki / "client.key"}"
"""
        config.write_text(config_text(tmp_path, port, mqtt))
        # The config alone: the broker, its credentials, the prefix, the store and gateway.
        await daemon_tail_send(config, sim, ["--config", str(config)], ["--config", str(config)])
        _, out, _ = await silentgate("doctor", "--config", str(config))
        assert f"ok    broker: connected to 127.0.0.1:{broker.port}" in out, out


@pytest.mark.parametrize(
    ("broker", "reason"),
    [
        ("ftp://127.0.0.1:21", "must start with mqtt:// or mqtts://"),
        ("mqtt://", "has no host"),
        ("127.0.0.1:port", "Port could not be cast"),
    ],
)
async def test_a_broker_that_is_not_host_port_or_an_mqtt_url_is_a_usage_error(
    broker: str, reason: str
) -> None:
    for tool in (["tail"], ["send", "--store", "s", "--gateway", "g", "x", "{}"]):
        rc, out, err = await silentgate(*tool, "--broker", broker)
        assert (rc, out) == (2, "")
        assert err.startswith(f"usage: silentgate {tool[0]}")
        assert reason in err
        assert "give host:port, mqtt://host[:port] or mqtts://host[:port]" in err


async def test_send_without_a_gateway_is_a_usage_error() -> None:
    rc, out, err = await silentgate("send", "x", "{}")
    assert (rc, out) == (2, "")
    assert err == "silentgate send: name the gateway: --store and --gateway, or --config FILE\n"


async def test_send_refuses_a_command_that_is_not_json() -> None:
    rc, out, err = await silentgate("send", "--store", "s", "--gateway", "g", "x", "{not json")
    assert (rc, out) == (2, "")
    assert err.startswith("silentgate send: the command is not JSON")


@pytest.mark.parametrize(
    "command",
    ["run", "check-config", "demo", "build-kernels", "doctor", "send", "request", "tail"],
)
async def test_every_command_has_help(command: str) -> None:
    rc, out, _ = await silentgate(command, "--help")
    assert rc == 0
    assert out.startswith(f"usage: silentgate {command}")


def readme_tail_filter() -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    found = re.search(r"`FILTER` is a topic filter below the prefix, e\.g\. `([^`]+)`", readme)
    assert found is not None, "the README shows a tail filter"
    return found[1]


def presence_and_status(n: int) -> list[AnyEvent]:
    """``n`` of each: a customer entering and leaving, a device changing state."""
    common = {"ts": "2026-12-04T10:00:00.000Z", "store": "store-042", "gateway": "gw-1"}
    subject = Subject(kind="customer", id="c1")
    made: list[AnyEvent] = []
    for _ in range(n):
        made += [
            PresenceEnter(id=str(new_event_id()), zone="entrance", subject=subject,
                          source=Source(device="door", antenna=1), **common),
            PresenceExit(id=str(new_event_id()), zone="entrance", subject=subject,
                         dwell_s=3.0, since=common["ts"], **common),
            DeviceStatus(id=str(new_event_id()), device="door", state="ok", **common),
        ]  # fmt: skip
    return made


async def published_topics(tmp: Path, broker: BrokerProcess, event_topics: str) -> list[str]:
    """The topics of a presence.enter, a presence.exit and a device.status as the uplink
    publishes them with ``mqtt.event_topics``, and what ``tail`` with the README's filter saw."""
    config = parse_config(f"""
[site]
store = "store-042"
gateway = "gw-1"
[mqtt]
url = "{broker.url}"
event_topics = "{event_topics}"
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
customer_ids = "omit"
[[readers]]
id = "door"
driver = "em4100"
port = "/dev/null"
zone = "entrance"
""")  # fmt: skip
    topics: list[str] = []
    subscribed = asyncio.Event()
    tmp.mkdir()

    async def watch() -> None:
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("silentcommerce/v1/store-042/gw-1/event/#", qos=1)
            subscribed.set()
            async for message in client.messages:
                topics.append(message.topic.value)

    outbox = Outbox.open(config.storage.path)
    outbox.append(presence_and_status(1))
    uplink = Uplink(config, outbox, StatusBoard(outbox.backlog))
    async with background(watch()):
        await subscribed.wait()
        async with background(uplink.run()):
            await until(lambda: len(topics) == 3)
            uplink.stop()
    outbox.close()
    return topics


async def test_events_are_published_with_their_type_as_topic_levels_or_dotted_if_configured(
    tmp_path: Path,
) -> None:
    with BrokerProcess() as broker:
        levels = await published_topics(tmp_path / "levels", broker, "levels")
        dotted = await published_topics(tmp_path / "dotted", broker, "dotted")
    base = "silentcommerce/v1/store-042/gw-1/event"
    assert levels == [f"{base}/presence/enter", f"{base}/presence/exit", f"{base}/device/status"]
    assert dotted == [f"{base}/presence.enter", f"{base}/presence.exit", f"{base}/device.status"]


async def test_the_readme_tail_filter_selects_every_presence_event_and_nothing_else(
    tmp_path: Path,
) -> None:
    with BrokerProcess() as broker:
        tail = await asyncio.create_subprocess_exec(
            SILENTGATE, "tail", "--broker", broker.url, "--json", readme_tail_filter(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            # tail has no "subscribed" line: publish rounds until one shows, then one more. A
            # device.status of a round would be printed before the next round's presence.enter.
            assert tail.stdout is not None
            seen: list[dict[str, object]] = []
            async with asyncio.timeout(60):
                while not seen:
                    await published_topics(tmp_path / f"{time.monotonic_ns()}", broker, "levels")
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1):
                            seen.append(json.loads(await tail.stdout.readline()))
                await published_topics(tmp_path / f"{time.monotonic_ns()}", broker, "levels")
                while sum(e["type"] == "presence.enter" for e in seen) < 2:
                    seen.append(json.loads(await tail.stdout.readline()))
        finally:
            tail.send_signal(signal.SIGINT)
            await tail.wait()
    types = {e["type"] for e in seen}
    assert types == {"presence.enter", "presence.exit"}


@pytest.mark.parametrize("bad", ["store-042/+/event/presence.#", "store-042/gw+/#", "a/#/b", ""])
async def test_tail_refuses_a_filter_that_is_not_an_mqtt_filter(bad: str) -> None:
    rc, out, err = await silentgate("tail", bad)
    assert (rc, out) == (2, "")
    assert err.startswith("usage: silentgate tail")
    assert f"{bad!r} is not an MQTT topic filter" in err


async def test_the_simulators_print_a_config_that_check_config_accepts(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "firmware_sim", "--duration", "0.5", "--dir", str(tmp_path / "sim"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    config = tmp_path / "sim.toml"
    config.write_text(text[text.index("# config for the daemon") :])
    rc, said, problems = await silentgate("check-config", str(config))
    assert (rc, problems) == (0, "")  # no warning either: the secret is the owner's alone
    assert said.startswith(f"{config}: ok (")


async def first_message(broker: BrokerProcess, topic: str) -> aiomqtt.Message:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(topic, qos=1)
        return await anext(aiter(client.messages))


async def test_gateway_requests_and_the_retained_info(
    tmp_path: Path, display: tuple[SimPort, DisplaySim]
) -> None:
    port, _sim = display
    with BrokerProcess() as broker:
        config = tmp_path / "store.toml"
        config.write_text(config_text(tmp_path, port, f'url = "{broker.url}"'))
        log = tmp_path / "daemon.log"
        with log.open("wb") as stderr:
            daemon = await asyncio.create_subprocess_exec(
                SILENTGATE, "run", "--config", str(config), stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )  # fmt: skip
        try:
            async with asyncio.timeout(60):
                while "gateway.daemon: ready:" not in log.read_text():
                    await asyncio.sleep(0.05)
            # "ready" comes before the uplink has connected: an info published while this
            # client is subscribed arrives live, without the retain flag; a client that
            # subscribes after it must get it retained.
            async with asyncio.timeout(30):
                message = await first_message(broker, "silentcommerce/v1/store-042/gw-1/info")
                while not message.retain:
                    message = await first_message(broker, "silentcommerce/v1/store-042/gw-1/info")
            assert message.retain
            info = json.loads(bytes(message.payload))
            where = ["--config", str(config)]

            rc, out, err = await silentgate("request", *where, "info")
            assert rc == 0, err
            answer = json.loads(out)
            assert (answer["ok"], answer["error"], answer["data"]) == (True, None, info)
            assert info["zones"] == ["entrance"]
            assert info["antennas"] == {"cards": {"0": "entrance"}}
            assert info["outputs"] == {"shelf-a-display": "serial-display"}
            assert info["versions"]["silentgate"] == __version__
            assert info["versions"]["contract"] == 2
            assert info["config_digest"].startswith("sha256:")

            rc, out, _ = await silentgate("request", *where, "health")
            assert (rc, json.loads(out)["data"]["state"]) == (0, "online")

            level = '{"id": "level-1", "level": "DEBUG"}'
            rc, out, _ = await silentgate("request", *where, "log_level", level)
            assert (rc, json.loads(out)["data"]) == (0, {"level": "DEBUG"})
            rc, out, _ = await silentgate("request", *where, "log_level", level)
            assert rc == 1
            assert json.loads(out)["error"].startswith("replayed: this id was already seen")

            rc, out, _ = await silentgate("request", *where, "reload")
            assert (rc, json.loads(out)["data"]) == (0, {"reloading": True})
            async with asyncio.timeout(60):
                while log.read_text().count("gateway.daemon: ready:") < 2:
                    await asyncio.sleep(0.05)
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(daemon.wait(), 30) == 0
    text = log.read_text()
    assert "log level set to DEBUG by a request" in text
    assert "gateway.lifecycle: reloading" in text
