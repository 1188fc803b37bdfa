"""Fixtures shared by the whole suite: a real MQTT broker process; and the one rule for running
the suite on two workers (``-n 2 --dist loadgroup``, the README's test command)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Final

import pytest
from hypothesis import settings

from demo.broker import BrokerProcess, environment_broker_kind

# Two cores shared with pty simulators and broker processes: wall-clock deadlines on
# Hypothesis examples would measure the machine's load, not the code.
settings.register_profile("silentgate", deadline=None)
settings.load_profile("silentgate")

# A suite started in the background by a non-interactive shell (``bash .ci/run &``) inherits
# SIGINT ignored, and so would every tool it starts: tests that press Ctrl-C on ``tail`` or the
# demo would then wait forever. Python keeps an inherited "ignore"; the tests mean a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# Tests that start processes (the daemon, brokers, the demo, a browser) run one after another
# on one worker, as they would alone; the other worker takes the tests that run in this process.
# They wait on real processes on a shared two-core machine, so one that fails runs once more;
# a test that passed only on its second run is reported as rerun ("R" in the summary).
SERIAL: Final = ("integration", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name in SERIAL:
            item.add_marker(pytest.mark.xdist_group("processes"))
            item.add_marker(pytest.mark.flaky(reruns=1))


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerProcess]:
    """One broker for the session: mosquitto where installed, else the embedded one.
    Tests that stop or kill a broker start their own with ``BrokerProcess``."""
    with BrokerProcess(environment_broker_kind()) as process:
        yield process
