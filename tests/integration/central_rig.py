"""A gateway with a backlog and central consumers as processes, for the central tests.

The gateway is a real ``silentgate run`` whose outbox was filled beforehand (10,000 presence
events, as after an outage): it publishes them at full speed once it connects. Consumers are
``silentgate central run`` processes with a config of their own each (a fixed client id, as in
production, so a restarted one resumes its broker session).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from firmware_sim.epc import customer_epc
from gateway.events.ids import new_event_id
from gateway.events.model import PresenceEnter, Source, Subject, format_ts
from gateway.outbox import Outbox

STORE, GATEWAY = "store-042", "gw-central"
SECRET = "central-secret-of-16-bytes"


def fill_outbox(path: Path, count: int) -> None:
    """``count`` presence events, seq 1 to ``count``, waiting in the outbox at ``path``."""
    zones = ("entrance", "shelf-a", "shelf-b")
    wall = time.time()
    events = [
        PresenceEnter(
            id=str(new_event_id()), ts=format_ts(wall + i / 1000), store=STORE, gateway=GATEWAY,
            zone=zones[i % 3], subject=Subject(kind="customer", id=customer_epc("C0FFEE", i)),
            source=Source(device="door"),
        )
        for i in range(count)
    ]  # fmt: skip
    outbox = Outbox.open(path)
    for at in range(0, count, 1000):
        outbox.append(events[at : at + 1000])
    outbox.close()


def gateway_config(tmp: Path, broker: str, *, batch: int, inflight: int) -> Path:
    (tmp / "secret").write_text(SECRET + "\n")
    path = tmp / "gateway.toml"
    path.write_text(f"""
[site]
store = "{STORE}"
gateway = "{GATEWAY}"
[mqtt]
url = "{broker}"
batch = {batch}
inflight = {inflight}
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
secret_file = "{tmp / "secret"}"
[[readers]]
id = "door"
driver = "em4100"
port = "{tmp / "no-such-port"}"
zone = "entrance"
""")
    return path


class ConsumerProcess:
    def __init__(
        self,
        tmp: Path,
        name: str,
        broker: str,
        db: str,
        *,
        grace_s: float,
        extra: str = "",
        args: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.config = tmp / f"{name}.toml"
        self.config.write_text(
            f'[central]\nclient_id = "{name}"\ngrace_s = {grace_s}\ncheck_s = 0.5\n{extra}'
        )
        self.log = tmp / f"{name}.log"
        self._command = [
            sys.executable, "-m", "gateway", "central", "run", "--broker", broker,
            "--db", db, "--group", "crm", "--config", str(self.config), *args,
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ConsumerProcess:
        marks = self.log_text().count("connected to")
        self.launch()
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while self.log_text().count("connected to") == marks:
            assert time.monotonic() < deadline, self.log_text()
            assert self.proc.poll() is None, self.log_text()
            time.sleep(0.05)
        return self

    def launch(self) -> None:
        """Start the process without waiting for it to connect."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)

    def connections(self) -> int:
        return self.log_text().count("connected to")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
