"""``silentgate doctor``: is this installation healthy, and if not, what to do about it.

Each check prints one line, ``ok``, ``warn`` or ``FAIL``, with what it saw and, when something is
wrong, the fix. Nothing here changes anything (but numba's cache, where the kernels are measured
under its JIT); the exit code is 1 when any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import os
import shutil
import socket
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

import aiomqtt

from gateway.config import Config, load_config
from gateway.config.outputs import OpenEPaperLinkOutput
from gateway.errors import ConfigError, SecretError, UplinkError
from gateway.events.privacy import read_secret, secret_warning
from gateway.uplink import brokerclient

MIN_FREE_BYTES: Final = 100 << 20
# systemd/silentgate.service: StateDirectory=silentgate
STATE_DIRECTORY: Final = Path("/var/lib/silentgate")
# Certificates are public; only a private key and a password must be kept from others.
PUBLIC_FILES: Final = frozenset({"mqtt.ca_file", "mqtt.cert_file"})
SANE_YEAR: Final = 2025  # a Pi without a real-time clock boots in 1970 until NTP answers
Level = Literal["ok", "note", "warn", "FAIL"]


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    check: str
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        hint = f"\n      fix: {self.fix}" if self.fix and self.level != "ok" else ""
        return f"{self.level:<4}  {self.check}: {self.detail}{hint}"


def check_port(device_id: str, port: str) -> Finding:
    name = f"device {device_id}"
    parts = urlsplit(port)
    if parts.scheme in ("socket", "rfc2217"):
        try:
            with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=3):
                return Finding("ok", name, f"{port} accepts connections")
        except OSError as exc:
            return Finding("FAIL", name, f"{port}: {exc}", "is the serial server running?")
    path = Path(port)
    if not path.exists():
        return Finding(
            "FAIL", name, f"{port} does not exist",
            "plug the device in; for stable names see systemd/99-silentgate.rules",
        )  # fmt: skip
    if not os.access(path, os.R_OK | os.W_OK):
        group = _group_of(path)
        fix = f"add the service user to group {group!r} (usermod -aG {group} silentgate)"
        if group == "root":  # membership of root's group would open far more than a port
            fix = (
                'give the port a group of its own with a udev rule (GROUP="dialout", '
                'MODE="0660"; see systemd/99-silentgate.rules); the unit runs with '
                "SupplementaryGroups=dialout"
            )
        return Finding("FAIL", name, f"{port} is not readable and writable by this user", fix)
    kind = "a character device" if stat.S_ISCHR(path.stat().st_mode) else "not a tty device"
    level: Level = "ok" if kind == "a character device" else "warn"
    return Finding(level, name, f"{port} is {kind} and accessible")


def check_access_point(output_id: str, url: str) -> Finding:
    """An OpenEPaperLink access point: does it take a TCP connection."""
    name = f"device {output_id}"
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=3):
            return Finding("ok", name, f"{url} accepts connections")
    except OSError as exc:
        return Finding(
            "FAIL", name, f"{url}: {exc}", "is the access point powered and on this network?"
        )


def check_files(config: Config) -> Iterator[Finding]:
    wanted: list[tuple[str, Path | None]] = [
        ("mqtt.password_file", config.mqtt.password_file),
        ("mqtt.ca_file", config.mqtt.ca_file),
        ("mqtt.cert_file", config.mqtt.cert_file),
        ("mqtt.key_file", config.mqtt.key_file),
    ]
    for key, path in wanted:
        if path is None:
            continue
        if not os.access(path, os.R_OK):
            yield Finding("FAIL", key, f"{path} is not readable", "check the path and its group")
        elif key in PUBLIC_FILES:
            yield Finding("ok", key, f"{path} is readable")
        elif path.stat().st_mode & 0o007:
            yield Finding("warn", key, f"{path} is readable by everyone", f"chmod o-rwx {path}")
        else:
            yield Finding("ok", key, f"{path} is readable, not by everyone")
    if config.privacy.customer_ids == "hmac-sha256":
        yield check_secret(config.privacy.secret_file)


def check_secret(path: Path) -> Finding:
    """The rules of ``check-config`` and ``run`` (``gateway.events.privacy``), as a finding."""
    key = "privacy.secret_file"
    try:
        read_secret(path)
    except SecretError as exc:
        return Finding("FAIL", key, str(exc), "check the path, its group and its content")
    warning = secret_warning(path)
    if warning is not None:
        return Finding("warn", key, warning)  # the warning says what to do
    return Finding("ok", key, f"{path} holds a usable secret, not open to others")


def check_storage(config: Config) -> Iterator[Finding]:
    directory = config.storage.path.parent
    existing = next((p for p in (directory, *directory.parents) if p.exists()), Path("/"))
    if existing != directory and directory.is_relative_to(STATE_DIRECTORY):
        # Before the first start, as the service user: systemd makes it, nobody else may.
        yield Finding(
            "note", "storage",
            f"{directory} does not exist yet: systemd creates it at the first start "
            f"(StateDirectory=silentgate)",
        )  # fmt: skip
    elif not os.access(existing, os.W_OK):
        yield Finding(
            "FAIL", "storage", f"{existing} is not writable",
            f"run as the service user, or keep storage.path under {STATE_DIRECTORY}, "
            "which systemd creates (StateDirectory=silentgate)",
        )  # fmt: skip
    free = shutil.disk_usage(existing).free
    level: Level = "ok" if free >= MIN_FREE_BYTES else "FAIL"
    yield Finding(level, "disk", f"{free >> 20} MiB free at {existing}", "free some space")
    if config.storage.path.exists():
        size = config.storage.path.stat().st_size
        yield Finding("ok", "outbox", f"{config.storage.path} is {size >> 10} KiB")


def check_clock(now: float | None = None) -> Finding:
    year = time.gmtime(time.time() if now is None else now).tm_year
    if year < SANE_YEAR:
        return Finding(
            "FAIL", "clock", f"the system clock says {year}",
            "enable NTP (timedatectl set-ntp true) or fit a real-time clock; event times are wrong",
        )  # fmt: skip
    return Finding("ok", "clock", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now)))


async def check_broker(config: Config, timeout: float = 5.0) -> Finding:
    mqtt = config.mqtt
    where = f"{mqtt.host}:{mqtt.port}"
    try:
        async with brokerclient.connected(
            mqtt, identifier=f"{config.client_id}-doctor", timeout=timeout
        ):
            return Finding("ok", "broker", f"connected to {where}")
    except (aiomqtt.MqttError, OSError, UplinkError) as exc:
        return Finding(
            "FAIL", "broker", f"{where}: {exc}",
            "check mqtt.url, the firewall, and mqtt.username / password_file / TLS files; "
            "events wait in the outbox meanwhile",
        )  # fmt: skip


BUILD_FIX: Final = (
    "silentgate build-kernels (needs g++ and python3-dev), then restart; "
    "silentgate-kernels.service does it before the daemon starts (docs/installation.md)"
)


def check_kernels(budget_s: float = 1.0) -> Finding:
    """How the kernels run and the reads per second they then sustain here."""
    from drivers.compiled import Mode, choice, describe  # noqa: PLC0415
    from gateway.service.warmup import warm_up_kernels  # noqa: PLC0415
    from gateway.stages.kernels.capacity import measure  # noqa: PLC0415

    warm_up_kernels()  # a JIT compiles now, not inside the measurement
    rate = measure(budget_s).reads_per_s
    detail = f"{describe()}; about {rate:,.0f} reads/s on this machine (kernels alone)"
    mode = choice().mode
    if mode is Mode.COMPILED:
        return Finding("ok", "kernels", detail)
    if mode is Mode.JIT:
        detail += "; under the unit (MemoryDenyWriteExecute=yes) they would run as Python"
        return Finding("warn", "kernels", detail, BUILD_FIX)
    fix = BUILD_FIX
    if "numba is not installed" in detail:
        fix = (
            "numba has wheels for 64-bit systems only: install a 64-bit OS "
            "(dpkg --print-architecture must say arm64), reinstall, then " + BUILD_FIX
        )
    return Finding("warn", "kernels", detail, fix)


def run_checks(config: Config, *, broker: bool = True, kernels: bool = True) -> list[Finding]:
    findings = [check_clock()]
    for device in (*config.readers, *config.sensors):
        findings.append(check_port(device.id, device.port))
    for output in config.outputs:
        if isinstance(output, OpenEPaperLinkOutput):
            findings.append(check_access_point(output.id, str(output.url)))
        else:
            findings.append(check_port(output.id, output.port))
    findings += check_files(config)
    findings += check_storage(config)
    if broker:
        findings.append(asyncio.run(check_broker(config)))
    if kernels:
        findings.append(check_kernels())
    return findings


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            out(str(Finding("FAIL", "config", str(problem), "silentgate check-config FILE")))
        return 1
    out(str(Finding("ok", "config", f"{args.config} is valid")))
    findings = run_checks(config, broker=not args.no_broker)
    for finding in findings:
        out(str(finding))
    return 1 if any(f.level == "FAIL" for f in findings) else 0


def _group_of(path: Path) -> str:
    try:
        return grp.getgrgid(path.stat().st_gid).gr_name
    except KeyError:
        return str(path.stat().st_gid)
