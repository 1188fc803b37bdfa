"""The hand-written bridge a store integrator would otherwise write, for comparison.

    python -m bench.bridge PORT BROKER_PORT

pyserial in blocking mode, one frame per loop turn the way such scripts read a length-prefixed
protocol (the binary form of ``readline``: find 0xFF, read LEN, read the rest), the drivers'
per-frame parser, and one paho ``publish`` of a small JSON document per tag read (QoS 0, paho's
network thread). No dedup, no presence: every read goes to the broker.
"""

from __future__ import annotations

import json
import signal
import sys
import time

import paho.mqtt.client as paho
import serial

from drivers.errors import FrameError
from drivers.thingmagic import commands
from drivers.thingmagic.frames import RESPONSE_OVERHEAD, SOF, Response
from drivers.thingmagic.records import TagRead, parse_stream_message


def read_frame(port: serial.Serial) -> bytes | None:
    head = port.read(1)
    if head != bytes((SOF,)):
        return None
    length = port.read(1)
    if not length:
        return None
    return head + length + port.read(length[0] + RESPONSE_OVERHEAD - 2)


def main(argv: list[str]) -> None:
    device, broker_port = argv[0], int(argv[1])
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker_port)
    client.loop_start()
    port = serial.Serial(device, 115200, timeout=0.5)
    port.write(commands.start_continuous_read().to_bytes())
    while running:
        raw = read_frame(port)
        if raw is None:
            continue
        try:
            message = parse_stream_message(Response.from_bytes(raw))
        except FrameError:
            continue
        if isinstance(message, TagRead):
            doc = {"epc": message.epc.hex().upper(), "antenna": message.antenna,
                   "rssi": message.rssi_dbm, "t": time.time()}  # fmt: skip
            client.publish(f"bridge/reads/{message.antenna}", json.dumps(doc))
    port.close()
    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    main(sys.argv[1:])
