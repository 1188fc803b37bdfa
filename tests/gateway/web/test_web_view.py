"""The live page's view of a daemon (built, not run: reads go in through its device context and
the pipeline is stepped by hand): customers by pseudonym only, whatever ``customer_ids`` says;
items by GTIN and serial; zones with their dwell; rates and RSSI while the ring is armed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_sim.epc import Sgtin, customer_epc
from gateway.clock import ManualClock
from gateway.config import parse_config
from gateway.service.daemon import Daemon

CUSTOMER = customer_epc("C0FFEE", 7)
ITEM = Sgtin(1, "0614141", "812345", 42).to_hex()
SECRET = "view-secret-of-16-bytes"


def daemon(tmp: Path, mode: str) -> tuple[Daemon, ManualClock]:
    (tmp / "secret").write_text(SECRET + "\n")
    config = parse_config(f"""
[site]
store = "store-042"
gateway = "gw-1"
[mqtt]
url = "mqtt://127.0.0.1:1"
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
customer_ids = "{mode}"
secret_file = "{tmp / "secret"}"
[tags]
customer_prefixes = ["C0FFEE"]
[[readers]]
id = "door"
driver = "thingmagic"
port = "/dev/null"
antennas = {{ 1 = "entrance", 2 = "shelf-a" }}
[web]
enabled = true
""")
    clock = ManualClock()
    return Daemon(config, clock=clock), clock


def walk_in(d: Daemon, clock: ManualClock, seconds: float) -> None:
    """The customer at the entrance and the item on shelf-a, read every 0.1 s."""
    ctx = d.contexts[0]
    for _ in range(int(seconds * 10)):
        ctx.emit_read(CUSTOMER, 1, -48.0)
        ctx.emit_read(ITEM, 2, -55.0)
        d.pipeline.step(clock.now())
        clock.advance(0.1)


@pytest.mark.parametrize("mode", ["hmac-sha256", "raw", "omit"])
def test_customers_appear_by_pseudonym_only(tmp_path: Path, mode: str) -> None:
    d, clock = daemon(tmp_path, mode)
    assert d.web is not None
    view = d.web.view  # the daemon hands it every stored event
    view.ring.arm(clock.now() + 60)
    walk_in(d, clock, 3.0)
    state = view.snapshot("door:1")
    d.outbox.close()
    text = json.dumps(state)
    assert CUSTOMER not in text.upper()
    assert CUSTOMER[6:] not in text.upper()  # not even the card number without its prefix
    entrance, shelf = state["zones"]
    (customer,) = entrance["customers"]
    assert len(customer["id"]) == 64
    if mode == "hmac-sha256":  # the events' pseudonym, as the CRM sees it
        assert customer["id"] == d.pseudonymizer.customer_id(CUSTOMER)
    (item,) = shelf["items"]
    assert (item["gtin"], item["serial"]) == ("80614141123458", "42")
    assert item["dwell_s"] >= 2.0
    enter = next(e for e in state["events"] if e["type"] == "presence.enter"
                 and e["subject"]["kind"] == "customer")  # fmt: skip
    assert enter["subject"]["id"] == (None if mode == "omit" else customer["id"])
    door1 = state["antennas"][0]
    assert [t["rssi"] for t in door1["tags_now"]] == [-48.0]
    assert sum(door1["rssi_hist"]) == 30
    (tuned,) = state["tuning"]["tags"]
    assert tuned["home_zone"] == "entrance"
    assert tuned["bleed"] is False
    assert sum(tuned["reads_per_s"]) == 30


def test_nothing_is_kept_per_read_until_someone_watches(tmp_path: Path) -> None:
    d, clock = daemon(tmp_path, "hmac-sha256")
    assert d.web is not None
    view = d.web.view
    walk_in(d, clock, 1.0)
    assert d.pipeline.tap is None
    state = view.snapshot()
    d.outbox.close()
    assert all(sum(a["rssi_hist"]) == 0 for a in state["antennas"])
    assert state["antennas"][0]["reads"] == 10  # the counters the daemon keeps anyway
