"""Command payloads through the real router into all three outputs at once, on ptys and a socket.

The MQTT side is tested with the router itself; here the question is whether what a central
server sends ends up on the relay coil, the display line and the label, and whether what cannot
be done comes back as a failed result and touches nothing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from firmware_sim.display import DisplaySim
from firmware_sim.esl import AccessPointSim
from firmware_sim.pty import SimPort
from firmware_sim.relay import RelayBoardSim
from gateway.commands.router import CommandRouter
from gateway.config import parse_config
from gateway.health import DeviceState
from gateway.outbox import Outbox
from gateway.outputs import Outputs
from tests.waiting import background, until

pytestmark = pytest.mark.timeout(30)

MAC = "0000021F8A3C4D5E"


def config_text(relay: SimPort, display: SimPort, ap: AccessPointSim) -> str:
    # The README's output examples, pointed at the simulators.
    return f"""
[site]
store = "s1"
gateway = "g1"

[mqtt]

[[readers]]
id = "door"
driver = "em4100"
port = "/dev/null"
zone = "entrance"

[[outputs]]
id = "door-lock"
driver = "relay"
port = "{relay.path}"
channels = 2
answers_status = true

[[outputs]]
id = "shelf-3"
driver = "serial-display"
port = "{display.path}"
lines = 2
line_length = 20

[[outputs]]
id = "labels"
driver = "openepaperlink"
url = "{ap.base_url}"
tags = {{ cheese = "{MAC}" }}
"""


COMMANDS: list[tuple[str, dict[str, object]]] = [
    ("door-lock", {"command_id": "r1", "action": "switch", "channel": 2, "on": True,
                   "duration_s": 0.3}),
    ("shelf-3", {"command_id": "d1", "action": "show", "line": 1, "text": "Käse 2,99 €"}),
    ("labels", {"command_id": "e1", "action": "show", "mac": MAC, "lines": ["Käse", "2,99 €"]}),
    ("shelf-3", {"command_id": "d2", "action": "show", "line": 2, "text": "x" * 21}),
    ("door-lock", {"command_id": "r2", "action": "switch", "channel": 3, "on": True}),
]  # fmt: skip


def payload(**fields: object) -> bytes:
    return json.dumps(fields).encode()


async def test_commands_reach_the_relay_the_display_and_the_label(tmp_path: Path) -> None:
    states: dict[str, DeviceState] = {}
    async with (
        SimPort(tmp_path, "relay") as relay_port,
        SimPort(tmp_path, "display") as display_port,
        AccessPointSim() as ap,
    ):
        ap.add_tag(MAC)
        relay, display = RelayBoardSim(relay_port, channels=2), DisplaySim(display_port)
        config = parse_config(config_text(relay_port, display_port, ap), check_files=False)
        outputs = Outputs(config.outputs, lambda name, state, _d: states.update({name: state}))
        outbox = Outbox.open(tmp_path / "outbox.db")
        router = CommandRouter.on_outbox(outbox, outputs)
        try:
            async with (
                background(relay.run()),
                background(display.run()),
                background(outputs.run()),
            ):
                await until(lambda: len(states) == 3)
                results = await asyncio.gather(
                    *(router.handle(output, payload(**fields)) for output, fields in COMMANDS)
                )
                await until(lambda: not relay.states[2])  # its duration ran out
        finally:
            outbox.close()
    ok = {r.command_id: (r.ok, r.error) for r in results}
    assert ok["r1"] == ok["d1"] == ok["e1"] == (True, None)
    assert ok["d2"] == (False, "shelf-3: 21 characters do not fit a line of 20")
    assert ok["r2"] == (False, "door-lock: no channel 3 (the board has 2)")
    assert states == dict.fromkeys(["door-lock", "shelf-3", "labels"], DeviceState.OK)
    assert display.visible() == {0: "Käse 2,99 €"}
    assert ap.tag(MAC).texts() == ["Käse", "2,99 €"]
    assert [(s.channel, s.on) for s in relay.switches] == [(2, True), (2, False)]
