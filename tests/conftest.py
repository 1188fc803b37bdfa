"""Fixtures shared by the whole suite: a real MQTT broker process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.demo.broker import BrokerProcess, environment_broker_kind


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerProcess]:
    """One broker for the session: mosquitto where installed, else the embedded one.
    Tests that stop or kill a broker start their own with ``BrokerProcess``."""
    with BrokerProcess(environment_broker_kind()) as process:
        yield process
