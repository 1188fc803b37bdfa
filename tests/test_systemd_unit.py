"""The shipped unit file: valid, and hardened to an exposure of 2.0 or lower."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parent.parent / "systemd" / "silentgate.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


@needs_analyze
def test_security_exposure_is_at_most_2() -> None:
    out = subprocess.run(
        [ANALYZE or "", "security", "--offline=true", str(UNIT)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout + out.stderr)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) <= 2.0, out.stdout


@needs_analyze
def test_verify_is_clean(tmp_path: Path) -> None:
    # verify insists that ExecStart exists: point it at this checkout's console script.
    script = Path(sys.executable).parent / "silentgate"
    unit = tmp_path / "silentgate.service"
    unit.write_text(UNIT.read_text().replace("/opt/silentgate/venv/bin/silentgate", str(script)))
    out = subprocess.run(
        [ANALYZE or "", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert not out.stderr.strip()


def test_the_unit_runs_the_daemon_as_notify_with_a_watchdog() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "Restart=on-failure",
        "StateDirectory=silentgate",
        "CacheDirectory=silentgate",
        "SupplementaryGroups=dialout",
        "DevicePolicy=closed",
    ):
        assert line in text.splitlines(), line
    assert "ExecStart=/opt/silentgate/venv/bin/silentgate run --config" in text
