"""Fixtures shared by the whole suite: a real MQTT broker process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from gateway.demo.broker import BrokerProcess, environment_broker_kind

# Two cores shared with pty simulators and broker processes: wall-clock deadlines on
# Hypothesis examples would measure the machine's load, not the code.
settings.register_profile("silentgate", deadline=None)
settings.load_profile("silentgate")


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerProcess]:
    """One broker for the session: mosquitto where installed, else the embedded one.
    Tests that stop or kill a broker start their own with ``BrokerProcess``."""
    with BrokerProcess(environment_broker_kind()) as process:
        yield process
