"""The live page's server against ``silentgate run`` with a simulated reader: the snapshot, the
server-sent events and their bounds, the password, and a port already taken."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from harness import HeldClock, config_text, start_daemon, stop_daemon

from demo.broker import BrokerProcess, free_port
from firmware_sim.pty import SimPort
from gateway.tools.tail import subscribe

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(90)]

PASSWORD = "a-web-password-of-16-bytes"


def get(url: str, password: str | None = None, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if password is not None:
        token = base64.b64encode(f"installer:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""


async def poll_state(port: int, pred: Any, password: str | None = None) -> dict[str, Any]:
    async with asyncio.timeout(40):
        while True:
            status, body = await asyncio.to_thread(
                get, f"http://127.0.0.1:{port}/api/state?antenna=door:2", password
            )
            if status == 200:
                state: dict[str, Any] = json.loads(body)
                if pred(state):
                    return state
            await asyncio.sleep(0.3)


def web_config(tmp: Path, port: str, broker: str, web_port: int, extra: str = "") -> str:
    return config_text(tmp, port, broker) + f"[web]\nenabled = true\nport = {web_port}\n{extra}"


async def test_the_snapshot_shows_devices_zones_and_antennas(
    broker: BrokerProcess, reader: tuple[SimPort, HeldClock], tmp_path: Path
) -> None:
    port, clock = reader
    web_port = free_port()
    config = tmp_path / "gw.toml"
    config.write_text(web_config(tmp_path, str(port.path), broker.url, web_port))
    daemon = start_daemon(config)
    try:
        state = await poll_state(web_port, lambda s: s["devices"][0]["state"] == "ok")
        assert [d["id"] for d in state["devices"]] == ["door"]
        assert [a["key"] for a in state["antennas"]] == ["door:1", "door:2", "door:3"]
        assert [z["id"] for z in state["zones"]] == ["shelf-a", "entrance", "shelf-b"]
        clock.start()
        # The customer reaches shelf-a at 3 s and dwells there; the item sits on shelf-b.
        state = await poll_state(
            web_port, lambda s: s["zones"][0]["customers"] and s["antennas"][1]["tags_now"]
        )
        (customer,) = state["zones"][0]["customers"]
        assert customer["kind"] == "customer"
        assert len(customer["id"]) == 64  # the pseudonym; the raw EPC never reaches the page
        assert "C0FFEE" not in json.dumps(state).upper()
        (item,) = state["zones"][2]["items"]
        assert (item["gtin"], item["serial"]) == ("80614141123458", "42")
        assert sum(state["antennas"][1]["rssi_hist"]) > 0
        assert state["tuning"]["antenna"] == "door:2"
        assert state["tuning"]["tags"][0]["id"] == customer["id"]
        assert state["antennas"][2]["reads_per_s"] > 0
        status, page = await asyncio.to_thread(get, f"http://127.0.0.1:{web_port}/")
        assert status == 200
        assert b"<title>silentgate</title>" in page
        assert (await asyncio.to_thread(get, f"http://127.0.0.1:{web_port}/x"))[0] == 404
    finally:
        await stop_daemon(daemon)


async def read_sse(port: int, first: asyncio.Event) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    try:
        if b" 200 " not in head.split(b"\r\n")[0]:
            return {"refused": head.split(b"\r\n")[0].decode()}
        first.set()
        while True:
            line = await reader.readline()
            if line.startswith(b"data: "):
                return dict(json.loads(line[6:]))
    finally:
        writer.close()


async def test_server_sent_events_are_bounded_to_four_pages(
    broker: BrokerProcess, reader: tuple[SimPort, HeldClock], tmp_path: Path
) -> None:
    port, _ = reader
    web_port = free_port()
    config = tmp_path / "gw.toml"
    config.write_text(web_config(tmp_path, str(port.path), broker.url, web_port))
    daemon = start_daemon(config)
    try:
        await poll_state(web_port, lambda s: True)
        holders = []
        for _ in range(4):
            connected = asyncio.Event()
            holders.append(asyncio.create_task(_hold(web_port, connected)))
            await connected.wait()
        fifth = await read_sse(web_port, asyncio.Event())
        assert fifth == {"refused": "HTTP/1.1 503 Service Unavailable"}
        for task in holders:
            task.cancel()
        # A page that went away frees its place when the next snapshot finds it gone.
        async with asyncio.timeout(15):
            while "refused" in (snapshot := await read_sse(web_port, asyncio.Event())):
                await asyncio.sleep(0.2)
        assert snapshot["devices"][0]["id"] == "door"
        assert snapshot["watching"] is True
    finally:
        await stop_daemon(daemon)


async def _hold(port: int, connected: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    connected.set()
    try:
        while await reader.readline():
            pass
    finally:
        writer.close()


async def test_off_loopback_the_password_is_required(
    broker: BrokerProcess, reader: tuple[SimPort, HeldClock], tmp_path: Path
) -> None:
    port, _ = reader
    web_port = free_port()
    password = tmp_path / "web-password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    config = tmp_path / "gw.toml"
    extra = f'host = "0.0.0.0"\npassword_file = "{password}"\n'
    config.write_text(web_config(tmp_path, str(port.path), broker.url, web_port, extra))
    daemon = start_daemon(config)
    try:
        state = await poll_state(web_port, lambda s: True, PASSWORD)
        assert state["devices"][0]["id"] == "door"
        url = f"http://127.0.0.1:{web_port}/"
        for wrong in (None, "", "a-web-password-of-16-byteS", PASSWORD + "x"):
            assert (await asyncio.to_thread(get, url, wrong))[0] == 401
        assert (await asyncio.to_thread(get, url, PASSWORD))[0] == 200
    finally:
        await stop_daemon(daemon)


async def test_a_port_already_taken_is_an_alert_and_the_gateway_runs_on(
    broker: BrokerProcess, reader: tuple[SimPort, HeldClock], tmp_path: Path
) -> None:
    port, _ = reader
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        web_port = taken.getsockname()[1]
        config = tmp_path / "gw.toml"
        config.write_text(web_config(tmp_path, str(port.path), broker.url, web_port))
        statuses: list[dict[str, Any]] = []
        ready = asyncio.Event()
        listener = asyncio.create_task(
            subscribe(broker.url, "silentcommerce/v1/store-042/gw-e2e/status",
                      lambda kind, obj: statuses.append(obj), ready)
        )  # fmt: skip
        await ready.wait()
        daemon = start_daemon(config)
        try:
            async with asyncio.timeout(40):
                while not any(
                    s.get("devices", {}).get("door") == "ok"
                    and any("live page down" in a for a in s.get("alerts", []))
                    for s in statuses
                ):
                    await asyncio.sleep(0.2)
            (alert,) = [a for a in statuses[-1]["alerts"] if "live page" in a]
            assert f"cannot listen on 127.0.0.1:{web_port}" in alert
            assert daemon.poll() is None
        finally:
            log = await stop_daemon(daemon)
            listener.cancel()
    assert "ERROR gateway.web.server: live page: cannot listen on" in log


async def test_the_demo_serves_the_page_on_the_simulated_store() -> None:
    web_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--duration", "20", "--json",
         "--web", "--web-port", str(web_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = f"http://127.0.0.1:{web_port}/"
        async with asyncio.timeout(30):
            while (line := await asyncio.to_thread(proc.stderr.readline)) and url not in line:
                pass
        assert line == f"# live page: {url}\n"
        state = await poll_state(web_port, lambda s: len(s["devices"]) > 3)
        devices = {d["id"] for d in state["devices"]}
        assert {"door", "cards", "shelf-a-display"} <= devices
        assert {z["id"] for z in state["zones"]} == {"entrance", "shelf-a", "shelf-b"}
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0


async def test_the_page_is_served_again_after_a_reload(
    broker: BrokerProcess, reader: tuple[SimPort, HeldClock], tmp_path: Path
) -> None:
    port, _ = reader
    web_port = free_port()
    config = tmp_path / "gw.toml"
    config.write_text(web_config(tmp_path, str(port.path), broker.url, web_port))
    daemon = start_daemon(config)
    try:
        await poll_state(web_port, lambda s: s["devices"][0]["state"] == "ok")
        config.write_text(config.read_text() + '[[zones]]\nid = "backroom"\n')
        daemon.send_signal(signal.SIGHUP)
        # The new daemon's page, on the same port, knows the new zone.
        after = await poll_state(web_port, lambda s: "backroom" in {z["id"] for z in s["zones"]})
        assert after["devices"][0]["id"] == "door"
    finally:
        await stop_daemon(daemon)
