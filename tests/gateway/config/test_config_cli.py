"""Hostile config files through ``silentgate check-config`` and ``silentgate run`` as processes:
every problem is one ``FILE:LINE: dotted.path: message`` line and exit 2, never a traceback,
and the line is the one that holds the problem."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

pytestmark = pytest.mark.timeout(60)

SECRET = "0123456789abcdef-long-enough"


def config_text(tmp: Path, *, privacy: str = 'customer_ids = "raw"', extra: str = "") -> str:
    return f"""\
[site]
store = "store-042"
gateway = "gw-1"

[mqtt]
url = "mqtt://127.0.0.1:1"

[storage]
path = "{tmp / "state" / "outbox.db"}"

[privacy]
{privacy}

[[readers]]
id = "cards"
driver = "em4100"
port = "{tmp / "ttyNONE"}"
zone = "entrance"
{extra}"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line that contains ``needle``."""
    lines = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    return lines[occurrence - 1]


def silentgate(*args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def check(file: Path) -> tuple[int, list[str]]:
    done = silentgate("check-config", str(file))
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr.splitlines()


def run(file: Path) -> tuple[int, str]:
    """``run`` on a config it must refuse: it exits by itself, before touching anything."""
    done = silentgate("run", "--config", str(file))
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


def write(tmp: Path, text: str) -> Path:
    file = tmp / "gw.toml"
    file.write_text(text)
    return file


def both_refuse(file: Path, expected: str) -> None:
    """check-config prints ``expected`` and exits 2; run logs the same line and exits 2."""
    rc, lines = check(file)
    assert (rc, lines) == (2, [expected])
    rc, log = run(file)
    assert rc == 2, log
    assert expected in log


def test_an_entry_without_a_driver_is_located(tmp_path: Path) -> None:
    text = config_text(tmp_path, extra='\n[[readers]]\nid = "more"\nport = "/dev/null"\n')
    file = write(tmp_path, text)
    line = line_of(text, "[[readers]]", occurrence=2)
    both_refuse(
        file,
        f"{file}:{line}: readers.1.driver: missing driver "
        "(expected one of: thingmagic, em4100, pn532)",
    )


def test_a_sensor_and_an_output_without_a_driver_are_located(tmp_path: Path) -> None:
    extra = '\n[[sensors]]\nid = "scale"\n\n[[outputs]]\nid = "lamp"\n'
    text = config_text(tmp_path, extra=extra)
    file = write(tmp_path, text)
    rc, lines = check(file)
    assert rc == 2
    assert lines == [
        f"{file}:{line_of(text, '[[sensors]]')}: sensors.0.driver: missing driver "
        "(expected one of: modbus-scale)",
        f"{file}:{line_of(text, '[[outputs]]')}: outputs.0.driver: missing driver "
        "(expected one of: relay, serial-display, openepaperlink)",
    ]


def test_a_path_component_over_255_bytes_is_located(tmp_path: Path) -> None:
    long = "x" * 256
    text = config_text(tmp_path).replace("/state/", f"/{long}/")
    file = write(tmp_path, text)
    line = line_of(text, "path = ")
    both_refuse(
        file,
        f"{file}:{line}: storage.path: the name {long[:16]}... is 256 bytes long; "
        "a file system takes at most 255",
    )


def test_a_secret_path_component_over_255_bytes_is_located(tmp_path: Path) -> None:
    secret = tmp_path / ("s" * 300)
    text = config_text(tmp_path, privacy=f'secret_file = "{secret}"')
    file = write(tmp_path, text)
    rc, lines = check(file)
    assert rc == 2
    (found,) = lines
    assert found.startswith(f"{file}:{line_of(text, 'secret_file')}: privacy.secret_file: ")
    assert "is 300 bytes long" in found


def test_a_storage_path_under_a_regular_file_is_located(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory\n")
    text = config_text(tmp_path)
    file = write(tmp_path, text)
    both_refuse(
        file,
        f"{file}:{line_of(text, 'path = ')}: storage.path: {tmp_path / 'state'} "
        "is a file, not a directory",
    )


def test_a_storage_path_that_is_a_directory_is_located(tmp_path: Path) -> None:
    (tmp_path / "state" / "outbox.db").mkdir(parents=True)
    text = config_text(tmp_path)
    file = write(tmp_path, text)
    both_refuse(
        file,
        f"{file}:{line_of(text, 'path = ')}: storage.path: "
        f"{tmp_path / 'state' / 'outbox.db'} is a directory; name the outbox file in it",
    )


def secret_config(tmp: Path, content: str, mode: int = 0o600) -> tuple[Path, str, int]:
    secret = tmp / "secret"
    secret.write_text(content)
    secret.chmod(mode)
    text = config_text(tmp, privacy=f'secret_file = "{secret}"')
    return write(tmp, text), text, line_of(text, "secret_file")


def test_an_empty_secret_is_refused_at_its_line(tmp_path: Path) -> None:
    file, _, line = secret_config(tmp_path, " \n")
    both_refuse(
        file,
        f"{file}:{line}: privacy.secret_file: {tmp_path / 'secret'} is empty "
        "(create one: head -c 32 /dev/urandom | base64 > FILE)",
    )


def test_a_one_byte_secret_is_refused(tmp_path: Path) -> None:
    file, _, line = secret_config(tmp_path, "x\n")
    both_refuse(
        file,
        f"{file}:{line}: privacy.secret_file: {tmp_path / 'secret'} holds 1 byte; "
        "a secret needs at least 16 (create one: head -c 32 /dev/urandom | base64 > FILE)",
    )


def test_a_secret_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    text = config_text(tmp_path, privacy='secret_file = "/dev/zero"')
    file = write(tmp_path, text)
    rc, lines = check(file)
    assert (rc, lines) == (
        2,
        [f"{file}:{line_of(text, 'secret_file')}: privacy.secret_file: /dev/zero is not a "
         "regular file"],
    )  # fmt: skip


@pytest.fixture
def world_readable(tmp_path: Path) -> tuple[Path, str]:
    file, _, line = secret_config(tmp_path, SECRET + "\n", mode=0o644)
    return file, (
        f"{file}:{line}: privacy.secret_file: warning: {tmp_path / 'secret'} is readable by "
        "everyone (mode 0644): chmod 0600, or 0640 owned by root and the service's group"
    )


def test_check_config_warns_about_a_world_readable_secret(
    world_readable: tuple[Path, str],
) -> None:
    file, warning = world_readable
    rc, lines = check(file)
    assert rc == 0
    assert lines == [warning]


def read_until(stream: IO[str], text: str, seen: list[str]) -> None:
    """Collect lines of a daemon's log into ``seen`` up to one that holds ``text``."""
    for line in stream:
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"the log ended without {text!r}: {seen}")


@contextlib.contextmanager
def daemon(file: Path) -> Iterator[tuple[subprocess.Popen[str], IO[str]]]:
    with subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        try:
            yield proc, proc.stderr
        finally:
            proc.terminate()
            proc.wait(20)


def test_run_warns_about_a_world_readable_secret(world_readable: tuple[Path, str]) -> None:
    file, warning = world_readable
    seen: list[str] = []
    with daemon(file) as (_, log):
        read_until(log, "starting", seen)  # the warning comes before the daemon starts
    assert any(line.rstrip().endswith(f"WARNING gateway.cli: {warning}") for line in seen), seen


def test_a_reload_with_an_entry_without_a_driver_is_refused_and_located(tmp_path: Path) -> None:
    good = config_text(tmp_path)
    file = write(tmp_path, good)
    bad = good + '\n[[readers]]\nid = "more"\nport = "/dev/null"\n'
    expected = (
        f"{file}:{line_of(bad, '[[readers]]', occurrence=2)}: readers.1.driver: missing driver "
        "(expected one of: thingmagic, em4100, pn532)"
    )
    seen: list[str] = []
    with daemon(file) as (proc, log):
        read_until(log, "starting", seen)
        file.write_text(bad)
        proc.send_signal(signal.SIGHUP)
        read_until(log, expected, seen)
        running = proc.poll() is None
    assert running
    assert not any("Traceback" in line for line in seen), seen
    assert any("reload refused, still running on the previous config" in line for line in seen)


@pytest.mark.parametrize(
    ("extra", "needle", "message"),
    [
        (
            '[[readers]]\nid = "cards"\ndriver = "em4100"\nport = "/dev/null"\nzone = "a"\n',
            'id = "cards"',
            "readers.1.id: device id 'cards' is used twice",
        ),
        (
            '[[outputs]]\nid = "cards"\ndriver = "relay"\nport = "/dev/null"\n',
            'id = "cards"',
            "outputs.0.id: device id 'cards' is used twice",
        ),
        (
            '[[zones]]\nid = "a"\n[[zones]]\nid = "b"\n[[zones]]\nid = "a"\n',
            'id = "a"',
            "zones.2.id: zone id 'a' is used twice",
        ),
        (
            '[[sensors]]\nid = "cards"\ndriver = "modbus-scale"\nport = "/dev/null"\nzone = "a"\n',
            'id = "cards"',
            "sensors.0.id: device id 'cards' is used twice",
        ),
        (
            '[[outputs]]\nid = "lamp"\ndriver = "relay"\nport = "/dev/null"\n'
            + '[[rules]]\nid = "r1"\ntrigger = { event = "presence.enter" }\n'
            'actions = [{ output = "lamp", do = "switch" }]\n' * 2,
            'id = "r1"',
            "rules.1.id: rule id 'r1' is used twice",
        ),
    ],
)
def test_a_duplicate_id_is_reported_at_its_second_occurrence(
    tmp_path: Path, extra: str, needle: str, message: str
) -> None:
    text = config_text(tmp_path, extra="\n" + extra)
    file = write(tmp_path, text)
    rc, lines = check(file)
    assert (rc, lines) == (2, [f"{file}:{line_of(text, needle, occurrence=2)}: {message}"])
