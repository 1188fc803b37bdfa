"""Reference documents generated from the code, so they can never drift from it.

``python -m gateway.tools.reference`` writes ``docs/configuration.md`` (every config key, from the
pydantic models: type, default, limits, and the comment written beside the field) and
``docs/asyncapi.json`` (the MQTT interface as an AsyncAPI 3.0 document, with the JSON schemas of
the event and command models). A test regenerates both and fails when the files are stale.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel

from gateway import __version__
from gateway.config import Config

DOCS: Final = Path(__file__).resolve().parents[2] / "docs"
_FIELD: Final = re.compile(r"^ {4}(\w+)\s*:[^#]*?(?:#\s*(.+))?$")
_COMMENT: Final = re.compile(r"^ {4}#\s?(.*)$")


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment written beside each field, or on the lines just above it, through the bases."""
    comments: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        comments.update(_comments_in(source))
    return comments


def _comments_in(source: str) -> dict[str, str]:
    found: dict[str, str] = {}
    above: list[str] = []
    for line in source.splitlines():
        if m := _COMMENT.match(line):
            above.append(m.group(1).strip())
        elif m := _FIELD.match(line):
            text = m.group(2) or " ".join(above)
            if text:
                found[m.group(1)] = text.strip()
            above = []
        else:
            above = []
    return found


def _type_of(prop: dict[str, Any]) -> str:  # noqa: PLR0911  (one return per JSON schema form)
    if "const" in prop:
        return f'`"{prop["const"]}"`'
    if "enum" in prop:
        return " \\| ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        kinds = [_type_of(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " \\| ".join(kinds)
    if "$ref" in prop:
        return "table"
    kind = prop.get("type", "")
    if kind == "array":
        return f"array of {_type_of(prop.get('items', {}))}"
    if kind == "object":
        return "table"
    return {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}.get(
        kind, kind or "any"
    )


def _limits(prop: dict[str, Any]) -> str:
    names = {
        "minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<",
        "minLength": "length >=", "maxLength": "length <=", "minItems": "items >=",
        "maxItems": "items <=", "minProperties": "entries >=",
    }  # fmt: skip
    parts = [f"{sym} {prop[key]}" for key, sym in names.items() if key in prop]
    if "pattern" in prop:
        parts.append(f"`{prop['pattern']}`")
    return ", ".join(parts)


def _default(name: str, model: type[BaseModel]) -> str:
    field = model.model_fields[name]
    if field.is_required():
        return "**required**"
    factory = field.default_factory
    value = field.default if factory is None else factory()  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return ""
    if value is None:
        return "none"
    return f"`{json.dumps(value if not isinstance(value, Path) else str(value))}`"


def model_table(model: type[BaseModel]) -> str:
    schema = model.model_json_schema()
    comments = field_comments(model)
    rows = ["| key | type | default | limits | meaning |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        description = prop.get("description") or comments.get(name, "")
        rows.append(
            f"| `{name}` | {_type_of(prop)} | {_default(name, model)} | {_limits(prop)} "
            f"| {description} |"
        )
    return "\n".join(rows)


def _members(annotation: Any) -> list[type[BaseModel]]:
    """The models of a field: one, a list of one, or a (discriminated) union of several."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in args for m in _members(a)]


def config_reference() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the config models by `python -m gateway.tools.reference`;"
        " do not edit by hand.",
        "Unknown keys are errors. `silentgate check-config FILE` reports every problem with its",
        "line. A worked example is in the README.",
    ]
    for name, field in Config.model_fields.items():
        models = _members(field.annotation)
        is_array = typing.get_origin(field.annotation) is list
        header = f"[[{name}]]" if is_array else f"[{name}]"
        required = " (required)" if field.is_required() else ""
        lines += ["", f"## `{header}`{required}"]
        for model in models:
            if len(models) > 1:
                lines += ["", f"### {model.__name__}"]
            doc = model.__dict__.get("__doc__")  # the class's own, not BaseModel's
            if doc:
                lines += ["", doc.split("\n\n")[0]]
            lines += ["", model_table(model)]
        if not models:
            lines += ["", "Tables with free-form keys; see the section on rules."]
    return "\n".join(lines) + "\n"


# Descriptions of the event fields, for consumers reading the AsyncAPI document.
EVENT_FIELDS: Final = {
    "schema": "The payload's schema and its version.",
    "id": "UUIDv7 of the event; delivery is at least once, so consumers drop repeats by it.",
    "seq": "Per gateway, +1 per event, never reused across restarts: a gap is a lost event.",
    "type": "The event type; on P/event/{family}/{name} its dot is a topic level.",
    "ts": "When it happened, UTC, millisecond precision.",
    "store": "The gateway's site.store.",
    "gateway": "The gateway's site.gateway.",
    "zone": "The zone it happened in (null for events of no zone).",
    "subject": "Who or what: a customer (pseudonymous by default) or an item.",
    "source": "The reader and antenna that saw the subject.",
    "rssi_dbm": "Signal strength of the read that made the event, dBm.",
    "dwell_s": "Seconds in the zone: so far (dwell) or in all (exit).",
    "since": "When the subject entered the zone, UTC.",
    "weight_delta_g": "The shelf's weight change that goes with the item event, grams.",
    "grams": "The shelf's settled weight, grams.",
    "delta_g": "Change from the previous settled weight, grams.",
    "sensor": "The scale's id ([[sensors]]).",
    "device": "The device's id ([[readers]], [[sensors]] or [[outputs]]).",
    "state": "starting, ok, down or error.",
    "detail": "Why, in words.",
    "rule": "The rule's id ([[rules]]).",
    "trigger": "The id of the event that made the rule fire.",
    "output": "The output acted on ([[outputs]]).",
    "action": "show, clear, switch or blink.",
    "ok": "Whether the output acknowledged the action.",
    "error": "Why it failed (null when ok).",
    "latency_ms": "From the rule firing to the output's acknowledgement or giving up, ms.",
    "attempts": "Deliveries tried.",
    "kind": "customer or item.",
    "gtin": "GTIN-14 of an item whose EPC is an SGTIN-96.",
    "serial": "Serial number of such an item.",
    "antenna": "The reader's antenna number.",
}
DATE_TIMES: Final = ("ts", "since", "expires_at")
DATE_TIME: Final = {"type": "string", "format": "date-time"}


def asyncapi() -> dict[str, Any]:
    """The MQTT interface as an AsyncAPI 3.0.0 document, from the gateway's point of view:
    what it sends (events, status, info, results, responses) and receives (commands,
    requests). Event schemas leave additionalProperties open: a field added later must not
    break a strict consumer. Inbound schemas are closed, as the gateway refuses unknown fields."""
    from gateway.events.model import (  # noqa: PLC0415
        ActionExecuted,
        DeviceStatus,
        ItemMoved,
        PresenceDwell,
        PresenceEnter,
        PresenceExit,
        ShelfWeight,
    )

    events: list[type[BaseModel]] = [
        PresenceEnter, PresenceDwell, PresenceExit, ItemMoved, ShelfWeight, DeviceStatus,
        ActionExecuted,
    ]  # fmt: skip
    schemas: dict[str, Any] = {}
    for model in events:
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        # Always in the payload, defaults or not.
        always = ["schema", "id", "seq", "type"]
        schema["required"] = always + [f for f in schema["required"] if f not in always]
        schemas[model.__name__] = schema
    for name in ("Subject", "Source", *(m.__name__ for m in events)):
        _open_and_described(schemas[name])
    messages = {
        m.__name__: {
            "name": m.__name__,
            "contentType": "application/json",
            "summary": (m.__doc__ or m.__name__).split("\n")[0],
            "payload": {"$ref": f"#/components/schemas/{m.__name__}"},
        }
        for m in events
    }
    base = "{topic_prefix}/{store}/{gateway}"
    params: dict[str, Any] = {
        "topic_prefix": {"description": "mqtt.topic_prefix, e.g. silentcommerce/v1."},
        "store": {"description": "site.store of the gateway."},
        "gateway": {"description": "site.gateway of the gateway."},
    }
    channels: dict[str, Any] = {
        "events": {
            "address": base + "/event/{family}/{name}",
            "parameters": {
                **params,
                "family": {"description": "The event type before its dot (presence)."},
                "name": {"description": "The event type after its dot (enter)."},
            },
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in messages},
            "description": "One event per message, QoS 1, not retained, in seq order; the type's "
            "dot is a topic level (presence.enter on event/presence/enter).",
        },
        "eventBatches": {
            "address": base + "/events",
            "parameters": params,
            "description": "With mqtt.batch > 1: a JSON array of events in seq order.",
            "messages": {
                "batch": {
                    "contentType": "application/json",
                    "payload": {
                        "type": "array",
                        "description": "Events in seq order, each exactly as on events.",
                        "items": {
                            "oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in messages]
                        },
                    },
                }
            },
        },
        "status": {
            "address": base + "/status",
            "parameters": params,
            "description": "Retained, QoS 1; published on connect, on changes and every 30 s; "
            "the last will sets state offline.",
            "messages": {"status": _json_message("Status", "The gateway's state.")},
        },
        "info": {
            "address": base + "/info",
            "parameters": params,
            "description": "Retained, QoS 1, published at every connect: what the gateway is.",
            "messages": {"info": _json_message("Info", "The gateway's description.")},
        },
    }
    schemas["Status"] = _status_schema()
    schemas["Info"] = _info_schema()
    _add_commands(channels, schemas, params)
    _add_requests(channels, schemas, params)
    received = ("commands", "requests")
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "silentgate",
            "version": __version__,
            "description": "What a silentgate store gateway publishes (events, status, info, "
            "command results, request responses) and takes in (commands for its outputs, "
            "gateway requests), over MQTT. Generated by `python -m gateway.tools.reference`.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": {
            name: {
                "action": "receive" if name in received else "send",
                "channel": {"$ref": f"#/channels/{name}"},
            }
            for name in channels
        },
        "components": {"schemas": schemas, "messages": messages},
    }


def _json_message(schema: str, summary: str) -> dict[str, Any]:
    return {
        "contentType": "application/json",
        "summary": summary,
        "payload": {"$ref": f"#/components/schemas/{schema}"},
    }


def _open_and_described(schema: dict[str, Any]) -> None:
    """An outbound schema: open to added fields, its fields described, its times date-times."""
    schema.pop("additionalProperties", None)
    for name, prop in schema.get("properties", {}).items():
        prop.setdefault("description", EVENT_FIELDS.get(name, name))
        if name in DATE_TIMES:
            _date_time(prop)


def _date_time(prop: dict[str, Any]) -> None:
    if prop.get("type") == "string":
        prop["format"] = "date-time"
    for choice in prop.get("anyOf", ()):
        _date_time(choice)


def _closed_for_asyncapi(schema: Any) -> Any:
    """pydantic's schema of an inbound model as AsyncAPI 3.0's Schema Object takes it: a
    discriminator is the property's name (pydantic writes an OpenAPI object with a mapping)."""
    if isinstance(schema, dict):
        out = {k: _closed_for_asyncapi(v) for k, v in schema.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(schema, list):
        return [_closed_for_asyncapi(v) for v in schema]
    return schema


def _status_schema() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    return {
        "type": "object",
        "description": "The retained P/status (docs/mqtt.md, Status). Fields may be added.",
        "required": ["state", "version", "ts", "devices"],
        "properties": {
            "state": {"enum": ["online", "offline"], "description": "Online, or gone."},
            "version": {"type": "string", "description": "silentgate's version."},
            "ts": {**DATE_TIME, "description": "When this status was made, UTC."},
            "devices": {
                "type": "object",
                "additionalProperties": {"enum": ["starting", "ok", "down", "error"]},
                "description": "Each device's and output's state, by id.",
            },
            "details": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Why a device is not ok, by id.",
            },
            "kernels": {
                "enum": ["compiled", "jit", "python"],
                "description": "How the kernels run.",
            },
            "outbox": {
                "type": "object",
                "description": "Events not yet delivered (when online).",
                "properties": {
                    "backlog": {**count, "description": "Undelivered events in the outbox."},
                    "oldest_age_s": {
                        "type": "number",
                        "description": "Age of the oldest undelivered event, seconds.",
                    },
                    "last_seq": {**count, "description": "The last seq given."},
                    "bytes": {**count, "description": "The outbox file's size."},
                    "max_bytes": {
                        "type": ["integer", "null"],
                        "description": "storage.max_bytes (null: no limit).",
                    },
                    "full": {"type": "boolean", "description": "Events are dropped or held."},
                    "held": {**count, "description": "Events waiting in memory for space."},
                    "dropped": {
                        "type": "object",
                        "additionalProperties": count,
                        "description": "Droppable events dropped, by type.",
                    },
                    "lost": {**count, "description": "Events lost beyond what memory holds."},
                },
            },
            "storage": {
                "type": "object",
                "description": "Whether the outbox can be written (when online).",
                "required": ["state"],
                "properties": {
                    "state": {"enum": ["ok", "full", "failed"], "description": "ok, or why not."},
                    "reason": {"type": "string", "description": "Why not ok, in words."},
                    "since": {**DATE_TIME, "description": "When the state began, UTC."},
                    "reserve": {"type": "boolean", "description": "The disk reserve is there."},
                    "moved_aside": {
                        "type": "string",
                        "description": "Where a damaged outbox was moved at this start.",
                    },
                    "stranded": {
                        "type": ["integer", "string"],
                        "description": "Undelivered events in it, or unknown.",
                    },
                },
            },
            "alerts": {
                "type": "array",
                "items": {"type": "string"},
                "description": "One sentence per problem, for a dashboard.",
            },
            "counters": {
                "type": "object",
                "description": "Commands, inbound rejections and content figures.",
            },
        },
    }


def _info_schema() -> dict[str, Any]:
    ids = {"type": "object", "additionalProperties": {"type": "string"}}
    return {
        "type": "object",
        "description": "The retained P/info and the data of the info response. Fields may be "
        "added.",
        "required": ["store", "gateway", "versions", "zones", "antennas", "outputs"],
        "properties": {
            "store": {"type": "string", "description": "site.store."},
            "gateway": {"type": "string", "description": "site.gateway."},
            "versions": {
                "type": "object",
                "description": "silentgate's, the contract's and Python's versions.",
                "properties": {
                    "silentgate": {"type": "string"},
                    "contract": {"type": "integer"},
                    "python": {"type": "string"},
                },
            },
            "kernels": {"enum": ["compiled", "jit", "python"], "description": "How they run."},
            "zones": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Every zone's id.",
            },
            "antennas": {
                "type": "object",
                "additionalProperties": ids,
                "description": "For each reader, the zone each antenna watches.",
            },
            "sensors": {**ids, "description": "Each sensor's zone."},
            "outputs": {**ids, "description": "Each output's driver."},
            "config_digest": {
                "type": "string",
                "pattern": "^sha256:[0-9a-f]{64}$",
                "description": "SHA-256 of the validated config the gateway runs.",
            },
        },
    }


def _add_commands(
    channels: dict[str, Any], schemas: dict[str, Any], params: dict[str, Any]
) -> None:
    """``P/cmd/{output_id}`` (in, one schema per output kind) and its results (out)."""
    from gateway.commands import SCHEMAS  # noqa: PLC0415

    base = "{topic_prefix}/{store}/{gateway}/cmd/{output_id}"
    output_id = {"description": "The output's id ([[outputs]])."}
    messages = {}
    for kind, adapter in SCHEMAS.items():
        name = "Command_" + kind.replace("-", "_")
        schema = _closed_for_asyncapi(
            adapter.json_schema(ref_template="#/components/schemas/{model}")
        )
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
        messages[kind] = {
            "name": name,
            "contentType": "application/json",
            "summary": f"A command for a {kind} output.",
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
    channels["commands"] = {
        "address": base,
        "parameters": {**params, "output_id": output_id},
        "description": "A command for one configured output (QoS 1); the schema depends on "
        "the output's driver. Refused unless valid, unexpired and new (command_id).",
        "messages": messages,
    }
    channels["commandResults"] = {
        "address": base + "/result",
        "parameters": {**params, "output_id": output_id},
        "description": "One result per command received, refused ones included (QoS 1); "
        "refusals beyond 50 a second, or whose topic would not be a valid MQTT topic, are "
        "counted instead (docs/mqtt.md, Commands).",
        "messages": {"result": {"contentType": "application/json", "payload": {
            "type": "object",
            "required": ["command_id", "ok", "error", "ts"],
            "properties": {
                "command_id": {"type": ["string", "null"],
                               "description": "The command's, when it could be read."},
                "ok": {"type": "boolean", "description": "Executed and acknowledged."},
                "error": {"type": ["string", "null"], "description": "Why not (null when ok)."},
                "ts": {**DATE_TIME, "description": "When the outcome was decided, UTC."},
            },
        }}},
    }  # fmt: skip


def _add_requests(
    channels: dict[str, Any], schemas: dict[str, Any], params: dict[str, Any]
) -> None:
    """``P/request/{name}`` (in, one schema per request) and ``P/response/{name}`` (out)."""
    from gateway.uplink.requests import REQUESTS  # noqa: PLC0415

    name_param = {
        "description": "The request: " + ", ".join(REQUESTS) + ".",
        "enum": list(REQUESTS),
    }
    messages = {}
    for name, model in REQUESTS.items():
        schema_name = "Request_" + name
        schema = _closed_for_asyncapi(model.model_json_schema())
        for prop in schema["properties"].values():
            prop.pop("title", None)
        schema["properties"]["id"]["description"] = "Chosen by the sender; echoed."
        schema["properties"]["expires_at"]["description"] = "Refused when it arrives later."
        schemas[schema_name] = schema
        messages[name] = {
            "name": schema_name,
            "contentType": "application/json",
            "summary": (model.__doc__ or name).split("\n")[0],
            "payload": {"$ref": f"#/components/schemas/{schema_name}"},
        }
    channels["requests"] = {
        "address": "{topic_prefix}/{store}/{gateway}/request/{name}",
        "parameters": {**params, "name": name_param},
        "description": "A gateway request (QoS 1), acted on at most once per id.",
        "messages": messages,
    }
    schemas["Response"] = {
        "type": "object",
        "description": "One response per request, with the request's id.",
        "required": ["id", "ok", "error", "ts"],
        "properties": {
            "id": {"type": ["string", "null"], "description": "The request's, when readable."},
            "ok": {"type": "boolean", "description": "Done as asked."},
            "error": {"type": ["string", "null"], "description": "Why not (null when ok)."},
            "ts": {**DATE_TIME, "description": "When it was answered, UTC."},
            "data": {
                "type": "object",
                "description": "info: Info; health: Status; reload: {reloading} or {problems}; "
                "log_level: {level}.",
            },
        },
    }
    channels["responses"] = {
        "address": "{topic_prefix}/{store}/{gateway}/response/{name}",
        "parameters": {**params, "name": name_param},
        "description": "The response to each request to a known name (QoS 1).",
        "messages": {"response": _json_message("Response", "A request's outcome.")},
    }


def write(docs: Path = DOCS) -> list[Path]:
    out = [docs / "configuration.md", docs / "asyncapi.json"]
    out[0].write_text(config_reference())
    out[1].write_text(json.dumps(asyncapi(), indent=2) + "\n")
    return out


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS):
        print(f"wrote {path}")
