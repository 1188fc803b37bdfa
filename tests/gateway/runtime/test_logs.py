from __future__ import annotations

import logging

from gateway.runtime.logs import LIFECYCLE, RepeatFilter


def record(msg: str, *args: object, name: str = "gateway.devices.door") -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_repeats_inside_the_window_are_counted_and_reported_once() -> None:
    now = [0.0]
    repeat = RepeatFilter(window_s=60.0, clock=lambda: now[0])
    assert repeat.filter(record("port %s closed", "/dev/ttyUSB0"))
    passed = []
    for _ in range(50):
        now[0] += 1.0
        passed.append(repeat.filter(record("port %s closed", "/dev/ttyUSB0")))
    assert not any(passed[:58])
    now[0] = 61.0
    again = record("port %s closed", "/dev/ttyUSB0")
    assert repeat.filter(again)
    assert again.getMessage() == "port /dev/ttyUSB0 closed (50 more in the last 60 s)"


def test_other_devices_and_messages_still_pass() -> None:
    repeat = RepeatFilter(window_s=60.0, clock=lambda: 0.0)
    assert repeat.filter(record("port %s closed", "/dev/ttyUSB0"))
    assert repeat.filter(record("port %s closed", "/dev/ttyUSB1"))
    assert repeat.filter(record("port %s closed", "/dev/ttyUSB0", name="gateway.devices.cards"))
    assert repeat.filter(record("connected"))


def test_lifecycle_lines_always_pass() -> None:
    # A reload stops and starts the daemon within a second: both must show.
    f = RepeatFilter(window_s=60.0, clock=lambda: 0.0)
    lines = [record("stopped", name="gateway.daemon") for _ in range(3)]
    for line in lines:
        line.__dict__.update(LIFECYCLE)
    assert [f.filter(line) for line in lines] == [True, True, True]
    assert all(line.getMessage() == "stopped" for line in lines)
