"""The shipped units: valid, hardened, and the daemon's refuses memory that is written and then
executed (its kernels are compiled ahead of time by the kernels unit)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parent.parent / "systemd"
UNIT = UNITS / "silentgate.service"
KERNELS_UNIT = UNITS / "silentgate-kernels.service"
CENTRAL_UNIT = UNITS / "silentgate-central@.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def exposure(unit: Path) -> float:
    out = subprocess.run(
        [ANALYZE or "", "security", "--offline=true", str(unit)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout + out.stderr)
    assert match, out.stdout + out.stderr
    return float(match.group(1))


@needs_analyze
def test_the_daemon_unit_exposure_is_at_most_1_5() -> None:
    assert exposure(UNIT) <= 1.5


@needs_analyze
def test_the_kernels_unit_is_hardened_too() -> None:
    assert exposure(KERNELS_UNIT) <= 1.5


@needs_analyze
def test_the_central_unit_is_hardened_as_the_daemons() -> None:
    assert exposure(CENTRAL_UNIT.with_name("silentgate-central@1.service")) <= 1.5


@needs_analyze
@pytest.mark.parametrize(
    ("unit", "name"),
    [
        (UNIT, UNIT.name),
        (KERNELS_UNIT, KERNELS_UNIT.name),
        (CENTRAL_UNIT, "silentgate-central@1.service"),  # a template is verified as an instance
    ],
    ids=lambda u: u.name if isinstance(u, Path) else "",
)
def test_verify_is_clean(tmp_path: Path, unit: Path, name: str) -> None:
    # verify insists that ExecStart exists: point it at this checkout's console script, and
    # finds the other unit beside it.
    script = Path(sys.executable).parent / "silentgate"
    for each in (UNIT, KERNELS_UNIT, CENTRAL_UNIT):
        text = each.read_text().replace("/opt/silentgate/venv/bin/silentgate", str(script))
        (tmp_path / each.name).write_text(text)
    out = subprocess.run(
        [ANALYZE or "", "verify", str(tmp_path / name)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert not out.stderr.strip()


def lines(unit: Path) -> list[str]:
    return unit.read_text().splitlines()


def test_the_unit_runs_the_daemon_as_notify_with_a_watchdog() -> None:
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "Restart=on-failure",
        "StateDirectory=silentgate",
        "CacheDirectory=silentgate",
        "SupplementaryGroups=dialout",
        "DevicePolicy=closed",
    ):
        assert line in lines(UNIT), line
    assert "ExecStart=/opt/silentgate/venv/bin/silentgate run --config" in UNIT.read_text()


def test_the_daemon_never_compiles_and_the_kernels_unit_builds_first() -> None:
    assert "MemoryDenyWriteExecute=yes" in lines(UNIT)
    assert "Wants=network-online.target silentgate-kernels.service" in lines(UNIT)
    assert "After=network-online.target silentgate-kernels.service" in lines(UNIT)
    kernels = lines(KERNELS_UNIT)
    assert "ExecStart=/opt/silentgate/venv/bin/silentgate build-kernels" in kernels
    assert "Before=silentgate.service" in kernels
    # The same user and cache directory as the daemon, so the daemon finds and may read it.
    for line in ("User=silentgate", "CacheDirectory=silentgate", "Type=oneshot"):
        assert line in kernels, line


def test_the_central_unit_runs_one_member_per_instance_with_its_own_config() -> None:
    text = CENTRAL_UNIT.read_text()
    assert (
        "ExecStart=/opt/silentgate/venv/bin/silentgate central run --broker ${CENTRAL_BROKER} "
        "--db ${CENTRAL_DB} --group ${CENTRAL_GROUP} "
        "--config /etc/silentgate-central/member-%i.toml"
    ) in text
    for line in (
        "EnvironmentFile=/etc/silentgate-central/central.env",
        "User=silentgate-central",
        "StateDirectory=silentgate-central",
        "Restart=on-failure",
        "PrivateDevices=yes",
        "MemoryDenyWriteExecute=yes",
        "WantedBy=multi-user.target",
    ):
        assert line in lines(CENTRAL_UNIT), line
