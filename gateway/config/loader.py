"""The gateway's configuration: one TOML file, validated by pydantic models.

Every model forbids unknown keys, because a misspelt key silently ignored is a shop that does not
behave as its integrator thinks. Secrets never sit in the TOML: the file names them by path
(``password_file``, ``secret_file``) and they are read when the daemon starts. ``load_config``
collects every problem at once, each located at its line, so one run of ``check-config`` shows
the integrator everything to fix.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from gateway.config.root import Config
from gateway.config.rules import check_rules
from gateway.errors import ConfigError, Problem
from gateway.tomlmap import TomlMap


def load_config(path: str | Path, *, check_files: bool = True) -> Config:
    """Read and validate a config file, or raise ConfigError listing every problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(name, 0, "-", f"cannot read the file: {exc}")]) from exc
    return parse_config(text, name, check_files=check_files)


def parse_config(text: str, name: str = "<config>", *, check_files: bool = True) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(name, exc)]) from exc
    where = TomlMap(text)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = [_validation_problem(name, where, err) for err in exc.errors()]
        raise ConfigError(sorted(problems, key=lambda p: p.line)) from exc
    rule_problems = [
        Problem(name, where.line_of(loc), ".".join(str(p) for p in loc), message)
        for loc, message in check_rules(config)
    ]
    if rule_problems:
        raise ConfigError(sorted(rule_problems, key=lambda p: p.line))
    if check_files:
        problems = _file_problems(config, name, where)
        if problems:
            raise ConfigError(problems)
    return config


def _syntax_problem(name: str, exc: tomllib.TOMLDecodeError) -> Problem:
    m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
    line = int(m.group(1)) if m else 1
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
    return Problem(name, line, "toml", f"syntax error: {message}")


_UNION_TAGS: Final = {
    "thingmagic",
    "em4100",
    "pn532",
    "modbus-scale",
    "relay",
    "serial-display",
    "openepaperlink",
}


def _validation_problem(name: str, where: TomlMap, err: Any) -> Problem:
    loc = tuple(part for part in err["loc"] if part not in _UNION_TAGS and part != "[key]")
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, err["ctx"]["discriminator"].strip("'"))
        expected = err["ctx"]["expected_tags"].replace("'", "")
        message = f"unknown or missing driver (expected one of: {expected})"
    path = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif err["type"] == "string_pattern_mismatch":
        message = f"{err['input']!r} must match {err['ctx']['pattern']}"
    return Problem(name, where.line_of(loc), path, message)


def _file_problems(config: Config, name: str, where: TomlMap) -> list[Problem]:
    wanted: list[tuple[tuple[str, ...], Path | None]] = [
        (("mqtt", "password_file"), config.mqtt.password_file),
        (("mqtt", "ca_file"), config.mqtt.ca_file),
        (("mqtt", "cert_file"), config.mqtt.cert_file),
        (("mqtt", "key_file"), config.mqtt.key_file),
    ]
    if config.privacy.customer_ids == "hmac-sha256":
        wanted.append((("privacy", "secret_file"), config.privacy.secret_file))
    problems = []
    for loc, file in wanted:
        if file is not None and not file.is_file():
            hint = ""
            if loc == ("privacy", "secret_file"):
                hint = " (create one: head -c 32 /dev/urandom | base64 > FILE)"
            problems.append(
                Problem(name, where.line_of(loc), ".".join(loc), f"no such file: {file}{hint}")
            )
    return problems
