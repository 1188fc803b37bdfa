"""docs/configuration.md and docs/asyncapi.json are generated from the models: never stale."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from gateway.tools.reference import DOCS, asyncapi, config_reference


def test_the_configuration_reference_is_current() -> None:
    assert (DOCS / "configuration.md").read_text() == config_reference(), (
        "regenerate with: python -m gateway.tools.reference"
    )


def test_the_asyncapi_document_is_current() -> None:
    assert json.loads((DOCS / "asyncapi.json").read_text()) == asyncapi(), (
        "regenerate with: python -m gateway.tools.reference"
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


def walk(node: object) -> list[dict[str, object]]:
    """Every object in a JSON document."""
    if isinstance(node, dict):
        return [node, *(o for v in node.values() for o in walk(v))]
    if isinstance(node, list):
        return [o for v in node for o in walk(v)]
    return []


def test_asyncapi_discriminators_are_property_names() -> None:
    # AsyncAPI 3.0's Schema Object takes a string; pydantic writes OpenAPI's object.
    found = [o["discriminator"] for o in walk(asyncapi()) if "discriminator" in o]
    assert found
    assert all(isinstance(d, str) for d in found)


def test_asyncapi_operations_are_seen_from_the_gateway() -> None:
    actions = {name: op["action"] for name, op in asyncapi()["operations"].items()}
    assert actions == {
        "events": "send", "eventBatches": "send", "status": "send", "info": "send",
        "commands": "receive", "commandResults": "send", "requests": "receive",
        "responses": "send",
    }  # fmt: skip


def test_asyncapi_events_accept_added_fields_and_say_what_each_field_is() -> None:
    schemas = asyncapi()["components"]["schemas"]
    events = [s for s in schemas.values() if s.get("properties", {}).get("seq")]
    assert len(events) == 7
    for schema in (*events, schemas["Subject"], schemas["Source"]):
        assert "additionalProperties" not in schema, schema["title"]
        assert all(p.get("description") for p in schema["properties"].values()), schema["title"]
    for schema in events:
        assert schema["properties"]["ts"]["format"] == "date-time"
        assert {"schema", "id", "seq", "type", "ts", "store", "gateway"} <= set(schema["required"])


def test_asyncapi_has_full_schemas_for_status_info_requests_and_responses() -> None:
    doc = asyncapi()
    schemas = doc["components"]["schemas"]
    status = schemas["Status"]["properties"]
    assert {"state", "ts", "devices", "outbox", "storage", "alerts"} <= set(status)
    assert set(status["outbox"]["properties"]) >= {"backlog", "oldest_age_s", "last_seq"}
    assert status["storage"]["properties"]["state"]["enum"] == ["ok", "full", "failed"]
    assert {"versions", "zones", "antennas", "outputs", "config_digest"} <= set(
        schemas["Info"]["properties"]
    )
    assert set(doc["channels"]["requests"]["messages"]) == {"info", "health", "reload", "log_level"}
    assert schemas["Request_log_level"]["properties"]["level"]["enum"] == [
        "DEBUG", "INFO", "WARNING", "ERROR",
    ]  # fmt: skip
    assert schemas["Response"]["required"] == ["id", "ok", "error", "ts"]
    for channel in doc["channels"].values():
        assert channel["description"]
        assert all(p.get("description") for p in channel["parameters"].values())


def test_the_asyncapi_document_is_valid_asyncapi_3() -> None:
    """Against the AsyncAPI Initiative's own schema (tests/schemas/README.md): what the official
    parser checks first, so that tools that take AsyncAPI documents take ours."""
    schema = json.loads((Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator.iter_errors(json.loads((DOCS / "asyncapi.json").read_text()))
    ]
    assert problems == []
