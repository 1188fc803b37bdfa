"""OpenEPaperLink request builders and response parsers (AP web.cpp / tag_db.cpp shapes)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from drivers.errors import DeviceError, EncodeError, FrameError
from drivers.openepaperlink import (
    Box,
    Color,
    Line,
    TagCommand,
    TagInfo,
    Text,
    get_db,
    json_upload,
    normalize_mac,
    parse_db,
    parse_upload,
    tag_cmd,
    text_lines,
)

# One record in the shape fillNode writes (tag_db.cpp), values made up.
NODE = {
    "mac": "0000021F8A3C4D5E",
    "hash": "00000000000000000000000000000000",
    "lastseen": 1763900000,
    "nextupdate": 0,
    "nextcheckin": 1763900060,
    "pending": False,
    "alias": "shelf-a",
    "contentMode": 19,
    "LQI": 100,
    "RSSI": -61,
    "temperature": 21,
    "batteryMv": 2900,
    "hwType": 1,
    "wakeupReason": 0,
    "capabilities": 0,
    "modecfgjson": "",
    "isexternal": False,
    "rotate": 0,
    "lut": 0,
    "ch": 11,
    "ver": 0,
}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0000021f8a3c4d5e", "0000021F8A3C4D5E"),
        ("00:00:02:1F:8A:3C:4D:5E", "0000021F8A3C4D5E"),
        ("1F-8A-3C-4D-5E-6F", "1F8A3C4D5E6F"),
    ],
)
def test_mac_normalisation(given: str, expected: str) -> None:
    assert normalize_mac(given) == expected


@pytest.mark.parametrize("bad", ["", "12345", "0000021F8A3C4D5", "0000021F8A3C4D5EZZ", "G" * 12])
def test_bad_macs_are_encode_errors(bad: str) -> None:
    with pytest.raises(EncodeError):
        json_upload(bad, [])


def test_json_upload_is_a_form_post_with_mac_and_template() -> None:
    request = json_upload(
        "00:00:02:1f:8a:3c:4d:5e",
        [Text(5, 5, "Käse 2,99 €"), Box(0, 30, 296, 2, Color.ACCENT), Line(0, 40, 296, 40)],
        ttl_min=15,
    )
    assert (request.method, request.target) == ("POST", "/jsonupload")
    assert request.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    form = dict(parse_qsl(request.body.decode("ascii")))
    assert form["mac"] == "0000021F8A3C4D5E"
    assert form["ttl"] == "15"
    assert json.loads(form["json"]) == [
        {"text": [5, 5, "Käse 2,99 €", "fonts/bahnschrift20", 1]},
        {"box": [0, 30, 296, 2, 2]},
        {"line": [0, 40, 296, 40, 1]},
    ]


def test_text_lines_stack_downwards() -> None:
    elements = text_lines(["a", "b", "c"], line_px=20)
    assert [(t.x, t.y, t.text) for t in elements] == [(5, 5, "a"), (5, 25, "b"), (5, 45, "c")]


def test_negative_ttl_is_refused() -> None:
    with pytest.raises(EncodeError):
        json_upload("0000021F8A3C4D5E", [], ttl_min=-1)


def test_get_db_by_mac_and_by_page() -> None:
    assert get_db(mac="0000021f8a3c4d5e").target == "/get_db?mac=0000021F8A3C4D5E"
    assert get_db().target == "/get_db"
    assert get_db(pos=50).target == "/get_db?pos=50"
    assert get_db().method == "GET"
    assert get_db().body == b""


def test_tag_cmd_form() -> None:
    request = tag_cmd("0000021F8A3C4D5E", TagCommand.REFRESH)
    assert (request.method, request.path) == ("POST", "/tag_cmd")
    assert dict(parse_qsl(request.body.decode())) == {"mac": "0000021F8A3C4D5E", "cmd": "refresh"}


def test_parse_db_reads_the_fields_fill_node_writes() -> None:
    page = parse_db(200, json.dumps({"tags": [NODE], "continu": 1}).encode())
    (tag,) = page.tags
    assert tag == TagInfo(
        mac="0000021F8A3C4D5E",
        alias="shelf-a",
        last_seen=1763900000,
        next_checkin=1763900060,
        pending=False,
        content_mode=19,
        hw_type=1,
        battery_mv=2900,
        rssi=-61,
        lqi=100,
    )
    assert page.next_pos == 1
    assert parse_db(200, b'{"tags": []}').next_pos is None


def test_tag_info_json_round_trip() -> None:
    tag = TagInfo.from_json(NODE)
    assert TagInfo.from_json(tag.to_json()) == tag


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b'{"error": "malformatted parameter"}', DeviceError),
        (200, b"not json", FrameError),
        (200, b"[]", FrameError),
        (200, b'{"tags": [{"alias": "no mac"}]}', FrameError),
        (200, b'{"tags": [1]}', FrameError),
        (500, b"boom", DeviceError),
    ],
)
def test_parse_db_errors(status: int, body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_db(status, body)


@pytest.mark.parametrize(
    ("status", "body"),
    [(400, b"mac not found in tagDB"), (409, b"come back later"), (400, b"Missing parameters")],
)
def test_upload_refusals_are_device_errors_with_the_status(status: int, body: bytes) -> None:
    with pytest.raises(DeviceError) as info:
        parse_upload(status, body)
    assert info.value.status == status
    assert body.decode() in str(info.value)
    parse_upload(200, b"Ok, saved")
