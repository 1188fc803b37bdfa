from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.demo.broker import BrokerProcess
from gateway.doctor import check_clock, check_port, check_secret, run


def config_file(tmp_path: Path, port: str, broker: str = "mqtt://127.0.0.1:1") -> Path:
    secret = tmp_path / "secret"
    secret.write_text("a-doctor-secret-of-sixteen-bytes\n")
    secret.chmod(0o640)
    path = tmp_path / "gw.toml"
    path.write_text(
        f"""
[site]
store = "store-042"
gateway = "gw-1"
[mqtt]
url = "{broker}"
[storage]
path = "{tmp_path / "state" / "outbox.db"}"
[privacy]
secret_file = "{secret}"
[[readers]]
id = "cards"
driver = "em4100"
port = "{port}"
zone = "entrance"
"""
    )
    parse_config(path.read_text())  # the fixture itself must be valid
    return path


def doctor(path: Path, *, broker: bool) -> tuple[int, list[str]]:
    lines: list[str] = []
    rc = run(argparse.Namespace(config=path, no_broker=not broker), lines.append)
    return rc, lines


def test_a_healthy_installation_passes(tmp_path: Path, broker: BrokerProcess) -> None:
    master, slave = os.openpty()
    try:
        rc, lines = doctor(config_file(tmp_path, os.ttyname(slave), broker.url), broker=True)
    finally:
        os.close(master)
        os.close(slave)
    assert rc == 0, lines
    assert any(line.startswith("ok    broker: connected") for line in lines)
    assert any(line.startswith("ok    device cards:") for line in lines)


def test_a_missing_port_and_a_dead_broker_fail_with_a_fix(tmp_path: Path) -> None:
    rc, lines = doctor(config_file(tmp_path, str(tmp_path / "ttyUSB9")), broker=True)
    assert rc == 1
    text = "\n".join(lines)
    assert "FAIL  device cards:" in text
    assert "fix: plug the device in" in text
    assert "FAIL  broker: 127.0.0.1:1" in text


def test_a_world_readable_secret_is_a_warning(tmp_path: Path) -> None:
    path = config_file(tmp_path, "socket://127.0.0.1:1")
    (tmp_path / "secret").chmod(0o644)
    _, lines = doctor(path, broker=False)
    assert any(line.startswith("warn  privacy.secret_file:") for line in lines)


def test_the_secret_is_judged_as_run_judges_it(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("short\n")
    secret.chmod(0o600)
    finding = check_secret(secret)
    assert (finding.level, finding.detail) == (
        "FAIL",
        f"{secret} holds 5 bytes; a secret needs at least 16 "
        "(create one: head -c 32 /dev/urandom | base64 > FILE)",
    )
    secret.write_text("k" * 32)
    assert check_secret(secret).level == "ok"


def test_an_invalid_config_fails_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[site]\nstore = "x"\n')
    rc, lines = doctor(path, broker=False)
    assert rc == 1
    assert lines[0].startswith("FAIL  config:")


@pytest.mark.parametrize(("now", "level"), [(0.0, "FAIL"), (1_795_000_000.0, "ok")])
def test_clock(now: float, level: str) -> None:
    assert check_clock(now).level == level


def test_a_port_without_permission_names_its_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI runs as root, whom permissions never stop: the refusal is simulated at os.access.
    port = tmp_path / "ttyUSB0"
    port.write_text("")
    monkeypatch.setattr(os, "access", lambda *_args, **_kw: False)
    finding = check_port("x", str(port))
    assert finding.level == "FAIL"
    assert "usermod -aG" in finding.fix


def test_doctor_says_how_the_kernels_run_and_what_they_sustain_here() -> None:
    from drivers.compiled import Mode, choice  # noqa: PLC0415
    from gateway.doctor import check_kernels  # noqa: PLC0415

    finding = check_kernels(budget_s=0.2)
    rate = int(finding.detail.split("about ")[1].split(" reads/s")[0].replace(",", ""))
    assert rate > 1000
    assert finding.detail.startswith(choice().mode.value)
    if choice().mode is Mode.COMPILED:
        assert finding.level == "ok"
    else:  # the suite's own process: numba's JIT, or NUMBA_DISABLE_JIT=1 in CI's second run
        assert finding.level == "warn"
        assert "silentgate build-kernels" in finding.fix
