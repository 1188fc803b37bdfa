"""Reference documents generated from the code, so they can never drift from it.

``python -m gateway.reference`` writes ``docs/configuration.md`` (every config key, from the
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

DOCS: Final = Path(__file__).resolve().parent.parent / "docs"
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
        "Generated from the config models by `python -m gateway.reference`; do not edit by hand.",
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


def asyncapi() -> dict[str, Any]:
    from gateway.events import (  # noqa: PLC0415
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
        schemas[model.__name__] = schema
    messages = {
        m.__name__: {"name": m.__name__, "payload": {"$ref": f"#/components/schemas/{m.__name__}"}}
        for m in events
    }
    base = "{topic_prefix}/{store}/{gateway}"
    params: dict[str, Any] = {"topic_prefix": {}, "store": {}, "gateway": {}}
    channels: dict[str, Any] = {
        "events": {
            "address": base + "/event/{type}",
            "parameters": {**params, "type": {}},
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in messages},
            "description": "One event per message, QoS 1, not retained, in seq order.",
        },
        "eventBatches": {
            "address": base + "/events",
            "parameters": params,
            "description": "With mqtt.batch > 1: a JSON array of events in seq order.",
            "messages": {
                "batch": {
                    "payload": {
                        "type": "array",
                        "items": {
                            "oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in messages]
                        },
                    }
                }
            },
        },
        "status": {
            "address": base + "/status",
            "parameters": params,
            "description": "Retained; the last will sets state offline.",
            "messages": {"status": {"payload": {"type": "object", "required": ["state"]}}},
        },
    }
    _add_commands(channels, schemas, params)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "silentgate",
            "version": __version__,
            "description": "Events and status published by a silentgate store gateway. "
            "Generated by `python -m gateway.reference`.",
        },
        "channels": channels,
        "operations": {
            name: {"action": "send", "channel": {"$ref": f"#/channels/{name}"}} for name in channels
        },
        "components": {"schemas": schemas, "messages": messages},
    }


def _add_commands(
    channels: dict[str, Any], schemas: dict[str, Any], params: dict[str, Any]
) -> None:
    """``P/cmd/{output_id}`` (in, one schema per output kind) and its results (out)."""
    from gateway.commands import SCHEMAS  # noqa: PLC0415

    base = "{topic_prefix}/{store}/{gateway}/cmd/{output_id}"
    messages = {}
    for kind, adapter in SCHEMAS.items():
        name = "Command_" + kind.replace("-", "_")
        schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
        messages[kind] = {"name": name, "payload": {"$ref": f"#/components/schemas/{name}"}}
    channels["commands"] = {
        "address": base,
        "parameters": {**params, "output_id": {}},
        "description": "A command for one configured output (QoS 1); the schema depends on "
        "the output's driver. Refused unless valid, unexpired and new (command_id).",
        "messages": messages,
    }
    channels["commandResults"] = {
        "address": base + "/result",
        "parameters": {**params, "output_id": {}},
        "description": "One result per command received, refused ones included (QoS 1); "
        "refusals beyond 50 a second, or whose topic would not be a valid MQTT topic, are "
        "counted instead (docs/mqtt.md, Commands).",
        "messages": {"result": {"payload": {
            "type": "object",
            "required": ["command_id", "ok", "error", "ts"],
            "properties": {
                "command_id": {"type": ["string", "null"]},
                "ok": {"type": "boolean"},
                "error": {"type": ["string", "null"]},
                "ts": {"type": "string"},
            },
        }}},
    }  # fmt: skip


def write(docs: Path = DOCS) -> list[Path]:
    out = [docs / "configuration.md", docs / "asyncapi.json"]
    out[0].write_text(config_reference())
    out[1].write_text(json.dumps(asyncapi(), indent=2) + "\n")
    return out


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS):
        print(f"wrote {path}")
