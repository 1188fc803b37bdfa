from __future__ import annotations

import argparse
import grp
import os
import socket
from pathlib import Path

import pytest

from demo.broker import BrokerProcess
from gateway.config import parse_config
from gateway.tools.doctor import STATE_DIRECTORY, check_clock, check_port, check_secret, run


def config_file(
    tmp_path: Path,
    port: str,
    broker: str = "mqtt://127.0.0.1:1",
    *,
    storage: Path | None = None,
    mqtt: str = "",
    extra: str = "",
) -> Path:
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
{mqtt}
[storage]
path = "{storage or tmp_path / "state" / "outbox.db"}"
[privacy]
secret_file = "{secret}"
[[readers]]
id = "cards"
driver = "em4100"
port = "{port}"
zone = "entrance"
{extra}"""
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
    os.chown(port, -1, grp.getgrnam("dialout").gr_gid)
    monkeypatch.setattr(os, "access", lambda *_args, **_kw: False)
    finding = check_port("x", str(port))
    assert finding.level == "FAIL"
    assert finding.fix == "add the service user to group 'dialout' (usermod -aG dialout silentgate)"


def test_a_port_of_group_root_is_fixed_with_a_udev_rule_not_membership_of_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = tmp_path / "ttyACM0"
    port.write_text("")
    os.chown(port, -1, 0)
    monkeypatch.setattr(os, "access", lambda *_args, **_kw: False)
    finding = check_port("x", str(port))
    assert finding.level == "FAIL"
    assert "usermod" not in finding.fix
    assert "udev rule" in finding.fix
    assert "systemd/99-silentgate.rules" in finding.fix


def test_outputs_are_checked_too(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        free = closed.getsockname()[1]
    extra = f"""
[[outputs]]
id = "door-lock"
driver = "relay"
port = "{tmp_path / "ttyRELAY"}"
[[outputs]]
id = "labels"
driver = "openepaperlink"
url = "http://127.0.0.1:{free}"
tags = {{ cheese = "0000021F8A3C4D5E" }}
"""
    rc, lines = doctor(config_file(tmp_path, "socket://127.0.0.1:1", extra=extra), broker=False)
    text = "\n".join(lines)
    assert rc == 1
    assert f"FAIL  device door-lock: {tmp_path / 'ttyRELAY'} does not exist" in text
    assert f"FAIL  device labels: http://127.0.0.1:{free}/:" in text


def test_before_the_first_start_the_state_directory_is_a_note_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the service user, /var/lib is not writable and /var/lib/silentgate is not there yet:
    # systemd makes it at the first start. (CI runs as root: the refusal is simulated.)
    assert not STATE_DIRECTORY.exists()
    path = config_file(tmp_path, "socket://127.0.0.1:1", storage=STATE_DIRECTORY / "outbox.db")
    monkeypatch.setattr(os, "access", lambda p, _mode, **_kw: Path(p).is_relative_to(tmp_path))
    _, lines = doctor(path, broker=False)
    storage = [line for line in lines if line.split()[1] == "storage:"]
    assert storage == [
        f"note  storage: {STATE_DIRECTORY} does not exist yet: systemd creates it at the first "
        "start (StateDirectory=silentgate)"
    ]
    elsewhere = config_file(tmp_path, "socket://127.0.0.1:1", storage=Path("/var/lib/x/o.db"))
    _, lines = doctor(elsewhere, broker=False)
    assert any(line.startswith("FAIL  storage: /var/lib is not writable") for line in lines)


def test_a_certificate_readable_by_everyone_is_fine_a_private_key_is_not(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("-----BEGIN-----\n")
        (tmp_path / name).chmod(0o644)
    mqtt = f"""ca_file = "{tmp_path / "ca.pem"}"
cert_file = "{tmp_path / "client.pem"}"
key_file = "{tmp_path / "client.key"}"
"""
    path = config_file(tmp_path, "socket://127.0.0.1:1", "mqtts://127.0.0.1:1", mqtt=mqtt)
    _, lines = doctor(path, broker=False)
    assert f"ok    mqtt.ca_file: {tmp_path / 'ca.pem'} is readable" in lines
    assert f"ok    mqtt.cert_file: {tmp_path / 'client.pem'} is readable" in lines
    assert any(line.startswith("warn  mqtt.key_file:") for line in lines)


def test_doctor_says_how_the_kernels_run_and_what_they_sustain_here() -> None:
    from drivers.compiled import Mode, choice  # noqa: PLC0415
    from gateway.tools.doctor import check_kernels  # noqa: PLC0415

    finding = check_kernels(budget_s=0.2)
    rate = int(finding.detail.split("about ")[1].split(" reads/s")[0].replace(",", ""))
    assert rate > 1000
    assert finding.detail.startswith(choice().mode.value)
    if choice().mode is Mode.COMPILED:
        assert finding.level == "ok"
    else:  # the suite's own process: numba's JIT, or NUMBA_DISABLE_JIT=1 in CI's second run
        assert finding.level == "warn"
        assert "silentgate build-kernels" in finding.fix
