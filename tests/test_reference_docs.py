"""docs/configuration.md and docs/asyncapi.json are generated from the models: never stale."""

from __future__ import annotations

import json

from gateway.reference import DOCS, asyncapi, config_reference


def test_the_configuration_reference_is_current() -> None:
    assert (DOCS / "configuration.md").read_text() == config_reference(), (
        "regenerate with: python -m gateway.reference"
    )


def test_the_asyncapi_document_is_current() -> None:
    assert json.loads((DOCS / "asyncapi.json").read_text()) == asyncapi(), (
        "regenerate with: python -m gateway.reference"
    )


def test_every_config_section_and_driver_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for heading in ("`[site]`", "`[mqtt]`", "`[[readers]]`", "`[[sensors]]`", "`[[outputs]]`"):
        assert heading in text
    for model in ("ThingMagicReader", "Em4100Reader", "Pn532Reader", "RelayOutput"):
        assert f"### {model}" in text
    for key in ("antennas", "register_map", "secret_file", "dwell_s"):
        assert f"| `{key}` |" in text


def test_asyncapi_has_every_event_type() -> None:
    schemas = asyncapi()["components"]["schemas"]
    types = {
        s["properties"]["type"].get("const") or tuple(s["properties"]["type"].get("enum", ()))
        for s in schemas.values()
        if "type" in s.get("properties", {})
    }
    assert {"presence.enter", "presence.dwell", "presence.exit", "shelf.weight"} <= types
    assert ("item.pickup", "item.putback") in types
    channels = asyncapi()["channels"]
    assert set(channels["commands"]["messages"]) == {"relay", "serial-display", "openepaperlink"}
    assert channels["commandResults"]["address"].endswith("/cmd/{output_id}/result")
