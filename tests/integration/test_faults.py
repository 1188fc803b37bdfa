"""Fault tests: a real mosquitto, a real ``silentgate run`` process, and a reader on a pty fed
with a steady stream of new EM4100 cards (two events each: enter, then exit).

What they prove, in the words of the issue: a broker outage under load loses nothing and keeps
``seq`` order; repeated SIGKILLs lose no accepted event and never reuse a ``seq``; a full outbox
neither crashes nor loses silently; a slow, flapping broker connection does not hold up the
serial ports. "Accepted" is read from the daemon's own outbox file at the end: every ``seq`` up
to its ``last_seq`` must have reached the subscriber, each with a single ``id``.

Each test prints one ``FIGURES`` line (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiomqtt
import pytest

from demo.broker import (
    BrokerProcess,
    environment_broker_kind,
    find_mosquitto,
    free_port,
)
from drivers.em4100 import Em4100Frame
from firmware_sim.pty import SimPort
from gateway.events.model import AnyEvent
from gateway.outbox import Outbox
from gateway.tools.tail import decode_message, subscribe
from gateway.uplink.session import Uplink
from gateway.uplink.status import StatusBoard
from tests.gateway.outbox.test_outbox_limits import enter, weight
from tests.integration.test_uplink import make_config

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(60)]

BASE: Final = "silentcommerce/v1/store-042/gw-f"
TICK_S: Final = 0.1  # a real RDM6300 repeats a card in the field every 100-200 ms
# The presence stage enters after two reads close enough together; ten (a second in the field,
# as a card held to a reader) leave room for a daemon that the OS does not schedule for a few
# hundred ms on a loaded two-core machine (reads that arrive in one chunk count once).
READS_PER_CARD: Final = 10
# Reads of one card closer than the stage's dedup time (20 ms) count once; when this process is
# busy (the collector takes a drain burst) ticks must still not be written back to back.
MIN_GAP_S: Final = 0.03

needs_mosquitto = pytest.mark.skipif(
    find_mosquitto() is None and environment_broker_kind() != "mosquitto",
    reason="needs mosquitto (its persistence keeps the subscriber's session across a restart)",
)


class PersistentMosquitto(BrokerProcess):
    """mosquitto that saves sessions and queued messages at stop and loads them at start, so the
    test's subscriber misses nothing while the broker is down."""

    def __init__(self) -> None:
        super().__init__("mosquitto")

    def _command(self) -> list[str]:
        assert self.binary is not None
        conf = self._dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self._dir}/\n"
            "max_queued_messages 1000000\nmax_inflight_messages 100\n"
        )
        return [self.binary, "-c", str(conf)]


@dataclass
class Feeder:
    """Writes EM4100 frames for ``cards_per_tick`` new cards every tick; each card is read in
    ``READS_PER_CARD`` consecutive ticks, then never again."""

    port: SimPort
    cards_per_tick: int = 10
    cards: int = 0
    frames: int = 0
    paused: bool = True  # until the daemon has the port open: pyserial flushes input at open

    async def run(self) -> None:
        active: list[list[int]] = []
        while True:
            started = time.monotonic()
            new = [] if self.paused else list(range(self.cards, self.cards + self.cards_per_tick))
            self.cards += len(new)
            active = [*active, new][-READS_PER_CARD:]
            data = b"".join(
                Em4100Frame(version=0x42, tag_id=n).to_bytes() for tick in active for n in tick
            )
            self.frames += len(data) // 14
            await self.port.write(data)
            await asyncio.sleep(max(MIN_GAP_S, TICK_S - (time.monotonic() - started)))


@dataclass
class Collector:
    """A persistent-session subscriber that reconnects by itself, recording (seq, id)."""

    url_port: int
    events: list[tuple[int, str]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # monotonic time of each event
    types: dict[int, str] = field(default_factory=dict)
    entered: set[str] = field(default_factory=set)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        # One client for every connection: messages already acknowledged to the broker but not
        # yet taken from the client's queue when the connection drops stay in that queue and come
        # first after the reconnect. A new client per connection would drop them, and the broker
        # would never send them again.
        client = aiomqtt.Client(
            "127.0.0.1",
            self.url_port,
            identifier="fault-collector",
            clean_session=False,
            protocol=aiomqtt.ProtocolVersion.V311,
            max_queued_incoming_messages=0,
        )
        while True:
            try:
                await self._session(client)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    async def _session(self, client: aiomqtt.Client) -> None:
        async with client:
            await client.subscribe(f"{BASE}/#", qos=1)
            self.ready.set()
            async for message in client.messages:
                for kind, obj in decode_message(message.topic.value, bytes(message.payload)):
                    if kind == "event":
                        self.events.append((obj["seq"], obj["id"]))
                        self.arrivals.append(time.monotonic())
                        self.types[obj["seq"]] = obj["type"]
                        if obj["type"] == "presence.enter":
                            self.entered.add(obj["subject"]["id"])
                    else:
                        self.statuses.append(obj)


@dataclass(frozen=True)
class Figures:
    accepted: int  # last_seq in the daemon's outbox
    received: int  # messages' events, repeats included
    lost: int  # seqs up to last_seq never received
    duplicated: int  # repeats of a seq already received (same id)
    reused: int  # seqs received with two different ids
    out_of_order: int  # first arrivals of a seq below an earlier first arrival

    @classmethod
    def of(cls, events: list[tuple[int, str]], last_seq: int) -> Figures:
        ids: dict[int, set[str]] = {}
        order: list[int] = []
        for seq, event_id in events:
            if seq not in ids:
                order.append(seq)
            ids.setdefault(seq, set()).add(event_id)
        return cls(
            accepted=last_seq,
            received=len(events),
            lost=len(set(range(1, last_seq + 1)) - ids.keys()),
            duplicated=len(events) - len(ids),
            reused=sum(len(v) > 1 for v in ids.values()),
            out_of_order=sum(b < a for a, b in itertools.pairwise(order)),
        )

    def show(self, test: str, **extra: object) -> None:
        print(f"\nFIGURES {test} {json.dumps({**self.__dict__, **extra})}")


def drain_rate(collector: Collector, restarted: float, backlog_end: int) -> int:
    """Events/s from the first arrival after the restart to the arrival of the last event that
    was in the backlog when the broker came back (reconnect backoff excluded)."""
    after = [i for i, t in enumerate(collector.arrivals) if t >= restarted]
    first = after[0]
    last = next(i for i in after if collector.events[i][0] >= backlog_end)
    elapsed = collector.arrivals[last] - collector.arrivals[first]
    return round((last - first + 1) / max(elapsed, 1e-3))


def config_text(tmp: Path, port: Path, broker_port: int, batch: int = 0) -> str:
    return f"""
[site]
store = "store-042"
gateway = "gw-f"
[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
keepalive_s = 5
batch = {batch}
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
customer_ids = "raw"
[[readers]]
id = "door"
driver = "em4100"
port = "{port}"
zone = "entrance"
"""


class Daemon:
    def __init__(self, tmp: Path, config: Path) -> None:
        self.tmp = tmp
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.tmp / f"daemon-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    async def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(self.proc.wait, 20)
        assert rc == 0, self.logs()

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp.glob("daemon-*.log"))
        )


def outbox_state(path: Path) -> tuple[int, int]:
    """(last_seq, undelivered rows), read beside the running daemon (WAL allows it)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        last = conn.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()[0]
        backlog = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    return int(last), int(backlog)


async def until(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def settle(daemon: Daemon, collector: Collector, outbox: Path, timeout: float) -> int:
    """Wait until the daemon has delivered everything it accepted and the collector has it all;
    stop the daemon cleanly and return its last_seq."""
    await until(lambda: outbox_state(outbox)[1] == 0, timeout, "an empty outbox")
    await daemon.stop()
    last_seq, _ = outbox_state(outbox)
    await until(
        lambda: {s for s, _ in collector.events} >= set(range(1, last_seq + 1)),
        timeout,
        "the collector to see every seq",
    )
    return last_seq


@dataclass
class Rig:
    tmp: Path
    port: SimPort
    feeder: Feeder
    collector: Collector
    daemon: Daemon

    @property
    def outbox(self) -> Path:
        return self.tmp / "outbox.db"

    async def started(self) -> None:
        """Start the daemon; the feeder starts once the port is open (its first event)."""
        self.daemon.start()
        await until(lambda: outbox_state_or_zero(self.outbox) > 0, 30, "the daemon's first event")
        self.feeder.paused = False

    def count(self, kind: str) -> int:
        return sum(t == kind for t in self.collector.types.values())


def outbox_state_or_zero(path: Path) -> int:
    try:
        return outbox_state(path)[0]
    except sqlite3.Error:
        return 0


@contextlib.asynccontextmanager
async def rig(
    tmp: Path, broker_port: int, daemon_port: int | None = None, batch: int = 0
) -> AsyncIterator[Rig]:
    """Pty, feeder, collector (on ``broker_port``) and a daemon (on ``daemon_port``, default
    the same broker) not started yet."""
    port = SimPort(tmp, "door", seed=1)
    port.open()
    config = tmp / "gw.toml"
    config.write_text(config_text(tmp, port.path, daemon_port or broker_port, batch))
    feeder = Feeder(port)
    collector = Collector(broker_port)
    daemon = Daemon(tmp, config)
    tasks = [asyncio.create_task(collector.run())]
    await asyncio.wait_for(collector.ready.wait(), 15)
    tasks.append(asyncio.create_task(feeder.run()))
    try:
        yield Rig(tmp, port, feeder, collector, daemon)
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
        for task in tasks:
            task.cancel()
        port.close()


@pytest.fixture
def mosquitto() -> Iterator[PersistentMosquitto]:
    broker = PersistentMosquitto()
    with broker:
        yield broker


@needs_mosquitto
@pytest.mark.parametrize("batch", [0, 100])
async def test_broker_outage_under_load_loses_nothing_and_keeps_order(
    mosquitto: PersistentMosquitto, tmp_path: Path, batch: int
) -> None:
    async with rig(tmp_path, mosquitto.port, batch=batch) as r:
        await r.started()
        await asyncio.sleep(2.0)
        mosquitto.stop()
        down_at = outbox_state(r.outbox)[0]
        await asyncio.sleep(4.0)
        backlog_at_restart = outbox_state(r.outbox)[1]
        backlog_end = outbox_state(r.outbox)[0]
        mosquitto.start()
        restarted = time.monotonic()
        await until(lambda: outbox_state(r.outbox)[1] < 50, 20, "the backlog to drain")
        await asyncio.sleep(1.0)
        r.feeder.paused = True
        await asyncio.sleep(2.5)  # the last exits are decided
        last_seq = await settle(r.daemon, r.collector, r.outbox, 20)
    figures = Figures.of(r.collector.events, last_seq)
    figures.show(
        f"broker_outage_batch_{batch}",
        seq_when_broker_stopped=down_at,
        backlog_at_restart=backlog_at_restart,
        drain_events_s=drain_rate(r.collector, restarted, backlog_end),
        cards=r.feeder.cards,
    )
    assert backlog_at_restart > 500, "the outage built no backlog: no load"
    assert (figures.lost, figures.reused, figures.out_of_order) == (0, 0, 0)
    # Every card was read and entered: the serial port was read throughout the outage.
    missing = sorted(n for n in range(r.feeder.cards) if f"42{n:08X}" not in r.collector.entered)
    assert missing == []


@needs_mosquitto
async def test_repeated_sigkill_under_load_loses_no_accepted_event_and_never_reuses_seq(
    mosquitto: PersistentMosquitto, tmp_path: Path
) -> None:
    async with rig(tmp_path, mosquitto.port) as r:
        for round_ in range(4):
            await r.started() if round_ == 0 else r.daemon.start()
            await asyncio.sleep(1.5 + 0.4 * round_)
            r.daemon.kill()
        r.daemon.start()
        await asyncio.sleep(1.0)
        r.feeder.paused = True
        await asyncio.sleep(2.5)  # the last exits are decided
        last_seq = await settle(r.daemon, r.collector, r.outbox, 25)
    figures = Figures.of(r.collector.events, last_seq)
    figures.show("sigkill", kills=4, cards=r.feeder.cards)
    assert last_seq > 200
    assert (figures.lost, figures.reused, figures.out_of_order) == (0, 0, 0)
    ids = [event_id for _, event_id in r.collector.events]
    assert len(set(ids)) == last_seq  # no id under two seqs either


class FlakyProxy:
    """A TCP proxy to the broker that is slow (``delay_s`` per chunk each way), hangs now and
    then (connections stay open, nothing moves: the worst case, no error to react to) and then
    cuts every connection."""

    def __init__(self, target_port: int, delay_s: float = 0.1) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.hang = False
        self.port = free_port()
        self.cuts = 0
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FlakyProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()

    async def flap(self, up_s: float = 1.5, hang_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(up_s)
            self.hang = True
            await asyncio.sleep(hang_s)
            self.hang = False
            self.cut()

    def cut(self) -> None:
        self.cuts += 1
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            w.transport.abort()
            self._writers.discard(w)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1 << 16):
            await asyncio.sleep(self.delay_s)
            while self.hang:
                await asyncio.sleep(0.05)
            writer.write(data)
            await writer.drain()


@needs_mosquitto
async def test_a_slow_flapping_broker_link_does_not_hold_up_the_serial_port(
    mosquitto: PersistentMosquitto, tmp_path: Path
) -> None:
    async with (
        FlakyProxy(mosquitto.port) as proxy,
        rig(tmp_path, mosquitto.port, proxy.port) as r,
    ):
        await r.started()
        flapper = asyncio.create_task(proxy.flap())
        await asyncio.sleep(8.0)
        flapper.cancel()
        proxy.hang, proxy.delay_s = False, 0.0
        r.feeder.paused = True
        await asyncio.sleep(2.5)  # the last exits are decided
        last_seq = await settle(r.daemon, r.collector, r.outbox, 25)
    figures = Figures.of(r.collector.events, last_seq)
    figures.show("flapping", cards=r.feeder.cards, cuts=proxy.cuts, connects=proxy.connections)
    assert proxy.connections >= 3
    missing = [n for n in range(r.feeder.cards) if f"42{n:08X}" not in r.collector.entered]
    assert missing == []  # every card the feeder wrote was read and became an enter
    assert (figures.lost, figures.reused, figures.out_of_order) == (0, 0, 0)


async def test_a_full_outbox_drops_only_droppable_events_says_so_and_loses_nothing_else(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    """The link is down (no uplink yet) while events pour in until the outbox is full; then the
    uplink starts. In-process: the daemon's wiring of ``storage.max_bytes`` is not needed here."""
    config = make_config(broker.url, tmp_path)
    outbox = Outbox.open(config.storage.path, max_bytes=256 << 10)
    status = StatusBoard(outbox.backlog)
    entered: set[str] = set()
    weights = 0
    while outbox.backlog().held < 300:
        batch: list[AnyEvent] = [enter(i) for i in range(20)]
        entered |= {e.id for e in batch}
        batch += [weight(i) for i in range(20)]
        weights += 20
        outbox.append(batch)  # never raises for lack of space
    full = json.loads(status.payload())
    seen: list[tuple[str, dict[str, Any]]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(
        subscribe(
            broker.url,
            "silentcommerce/v1/store-042/gw-1/#",
            lambda k, o: seen.append((k, o)),
            ready,
        )
    )
    await ready.wait()
    uplink = Uplink(config, outbox, status)
    task = asyncio.create_task(uplink.run())
    await until(lambda: outbox.backlog().count + outbox.backlog().held == 0, 30, "delivery")
    uplink.stop()
    await task
    listener.cancel()
    events = [o for k, o in seen if k == "event"]
    dropped = outbox.backlog().dropped.get("shelf.weight", 0)
    delivered_weights = sum(e["type"] == "shelf.weight" for e in events)
    figures = {
        "enters": len(entered),
        "weights": weights,
        "weights_dropped": dropped,
        "weights_delivered": delivered_weights,
        "held_at_peak": full["outbox"]["held"],
        "lost": outbox.backlog().lost,
    }
    print(f"\nFIGURES outbox_full {json.dumps(figures)}")
    assert full["outbox"]["full"] is True
    assert any("outbox full" in a for a in full["alerts"])
    assert {e["id"] for e in events if e["type"] == "presence.enter"} == entered
    assert dropped > 0
    assert delivered_weights + dropped == weights
    assert sorted({e["seq"] for e in events}) == list(range(1, outbox.last_seq + 1))
    assert outbox.backlog().lost == 0
    online = [o for k, o in seen if k == "status" and o["state"] == "online"]
    assert online[0]["outbox"]["full"] is True  # what the first status after connect said
    assert json.loads(status.payload())["outbox"]["full"] is False
