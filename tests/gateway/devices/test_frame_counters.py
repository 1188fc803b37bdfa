"""Sessions report their decoders' rejections as totals over reconnects (metrics, status)."""

from __future__ import annotations

from gateway.config import parse_config
from gateway.devices.em4100 import Em4100Session
from gateway.service.metrics import FrameCounters

CONFIG = """
[site]
store = "s"
gateway = "g"
[mqtt]
url = "mqtt://127.0.0.1:1"
[privacy]
customer_ids = "omit"
[[readers]]
id = "cards"
driver = "em4100"
port = "/dev/null"
zone = "entrance"
"""


def test_rejections_survive_a_reopen() -> None:
    (reader,) = parse_config(CONFIG).readers
    assert reader.driver == "em4100"
    session = Em4100Session(reader)
    assert isinstance(session, FrameCounters)
    good = bytes.fromhex("02 30 44 30 30 33 31 39 43 44 30 37 30 03".replace(" ", ""))
    session.decoder.receive_data(b"noise" + good[:-1] + b"\x02" + good)
    assert [f.raw_id for f in session.decoder.frames()] == ["0D00319CD0"]
    before = session.frame_counters()
    assert before["discarded_bytes"] > 0
    session.decoder.receive_data(good[:5])  # a half frame when the port goes away
    session.decoder.drop_partial()
    after = session.frame_counters()
    assert after["discarded_bytes"] == before["discarded_bytes"] + 5
