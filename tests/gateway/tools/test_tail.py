"""What ``silentgate tail`` prints for a gateway's ``P/status``: the figures an operator looks for,
on one line, from the payload the gateway really publishes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from gateway.outbox import Outbox
from gateway.tools.tail import decode_message, format_status
from gateway.uplink.status import StatusBoard
from tests.gateway.outbox.test_outbox_limits import enter

TOPIC = "silentcommerce/v1/store-042/gw-1/status"


def shown(status: StatusBoard, state: str = "online") -> str:
    [(kind, body)] = decode_message(TOPIC, status.payload(state).encode())
    assert kind == "status"
    return format_status(TOPIC, body)


def test_an_online_status_shows_state_backlog_oldest_age_storage_and_devices(
    tmp_path: Path,
) -> None:
    outbox = Outbox.open(tmp_path / "o.db")
    outbox.append([enter(i) for i in range(3)])
    status = StatusBoard(outbox.backlog, outbox.health)
    status.set_device("door", "ok", None)
    # The status rounds the age to the millisecond, and an age of 0 is not shown: read within
    # half a millisecond of the append (a warm process, about one run in 25), it would be 0.
    time.sleep(0.002)
    line = shown(status)
    outbox.close()
    assert re.fullmatch(
        rf"{TOPIC}: online backlog 3 \(oldest \d+\.\d s\) storage ok door=ok", line
    ), line


def test_a_storage_problem_shows_its_reason_and_every_alert(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the storage directory should be\n")
    outbox = Outbox.open(blocker / "o.db")
    outbox.append([enter(i) for i in range(2)])
    status = StatusBoard(outbox.backlog, outbox.health)
    body = json.loads(status.payload())
    line = shown(status)
    outbox.close()
    assert "\n" not in line
    assert f"storage failed ({body['storage']['reason']})" in line
    assert line.endswith("alerts: " + "; ".join(body["alerts"]))
    assert body["alerts"]


def test_an_offline_status_is_its_state_alone_and_no_control_character_passes() -> None:
    assert format_status(TOPIC, {"state": "offline"}) == f"{TOPIC}: offline"
    hostile = {"state": "online\x1b[2J", "alerts": ["a\nb"], "outbox": {"oldest_age_s": "x"}}
    assert format_status(TOPIC, hostile) == f"{TOPIC}: online [2J backlog None alerts: a b"
