"""A private MQTT broker process for the demo and the tests: mosquitto when it is installed,
otherwise the embedded amqtt broker, run the same way (a child process on a free port) so that
callers can stop, kill and restart either one alike.

amqtt speaks MQTT 3.1.1 only; the gateway's v5-to-3.1.1 fallback handles that. Shared
subscriptions and message expiry need mosquitto (or another v5 broker).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final, Literal

from demo.lifeline import die_with_parent

STARTUP_TIMEOUT_S: Final = 10.0
BrokerKind = Literal["mosquitto", "amqtt"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class BrokerProcess:
    """A broker child process on 127.0.0.1:``port``; ``restart()`` keeps the port."""

    def __init__(
        self,
        kind: BrokerKind | None = None,
        port: int | None = None,
        *,
        own_session: bool = False,
        persistent: bool = False,
        extra_config: str = "",
    ) -> None:
        """``own_session``: start the broker in its own session, so that Ctrl-C in a terminal
        (a signal to the whole foreground process group) does not take it away before its owner
        has finished with it; the owner stops it on the way out (the demo), and the broker ends
        with its owner's process if that is killed outright (demo/lifeline.py).
        ``persistent`` (mosquitto): sessions and their queued messages survive ``restart()``, as
        on a production broker. ``extra_config``: more mosquitto.conf lines (benchmarks)."""
        self.own_session = own_session
        self.persistent = persistent
        self.extra_config = extra_config
        self.binary = find_mosquitto()
        self.kind: BrokerKind = kind or ("mosquitto" if self.binary else "amqtt")
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="silentgate-broker-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> BrokerProcess:
        log = (self._dir / "broker.log").open("ab")
        self._proc = subprocess.Popen(
            self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=self.own_session,
            preexec_fn=die_with_parent() if self.own_session else None,  # noqa: PLW1509
        )  # fmt: skip
        log.close()
        self._wait_listening()
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        path = self._dir / "broker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _command(self) -> list[str]:
        if self.kind == "mosquitto":
            assert self.binary is not None, "mosquitto is not installed"
            conf = self._dir / "mosquitto.conf"
            persistence = "persistence false\n"
            if self.persistent:
                persistence = f"persistence true\npersistence_location {self._dir}/\n"
            # ``user``: started as root, mosquitto would switch to the user "mosquitto", which
            # cannot write in this private directory, and a change of user clears the
            # parent-death signal (demo/lifeline.py); as anyone else it changes nothing.
            conf.write_text(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{persistence}"
                f"max_queued_messages 100000\nuser {getpass.getuser()}\n{self.extra_config}"
            )
            return [self.binary, "-c", str(conf)]
        return [sys.executable, "-m", "demo.embedded_broker", str(self.port)]

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not listen on port {self.port}:\n{self.log_text()}")


def environment_broker_kind() -> BrokerKind | None:
    """SILENTGATE_TEST_BROKER=mosquitto|amqtt forces a broker kind (tests, CI)."""
    value = os.environ.get("SILENTGATE_TEST_BROKER")
    if value in ("mosquitto", "amqtt"):
        return value  # type: ignore[return-value]
    return None
