"""The gateway's configuration: one TOML file, validated by pydantic models.

Every model forbids unknown keys, because a misspelt key silently ignored is a shop that does not
behave as its integrator thinks. Secrets never sit in the TOML: the file names them by path
(``password_file``, ``secret_file``) and they are read when the daemon starts. ``load_config``
collects every problem at once, each located at its line, so one run of ``check-config`` shows
the integrator everything to fix.

The file is hostile input like any other: at most ``bounds.MAX_BYTES`` of it are read, its
nesting and key depth are bounded before ``tomllib`` parses it, and whatever the text holds
ends as a ConfigError of located problems (``Problem``), each a single line of bounded length,
or as a config. Stages run in order and stop at the first that finds problems: size and shape,
TOML syntax, the models, the checks across sections (unique ids, rules), then the files the
config names (secret, TLS files, the storage path). A file that is usable but open to others is
a warning, located like a problem.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, get_args

from pydantic import ValidationError

from gateway.config import bounds
from gateway.config.devices import ReaderConfig, SensorConfig
from gateway.config.outputs import OutputConfig
from gateway.config.root import Config
from gateway.config.rules import Loc, Located, check_rules
from gateway.config.unique import duplicate_ids
from gateway.errors import ConfigError, Problem, SecretError
from gateway.events.privacy import read_secret, secret_warning
from gateway.tomlmap import TomlMap

MAX_PROBLEMS: Final = 50  # more than a screenful says "wrong file" better than a full list
MAX_TEXT: Final = 200  # characters of a message or a key path


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: Config
    warnings: list[Problem] = field(default_factory=list)


def load_config(path: str | Path, *, check_files: bool = True) -> Config:
    """Read and validate a config file, or raise ConfigError listing every problem."""
    return read_config(path, check_files=check_files).config


def read_config(path: str | Path, *, check_files: bool = True) -> LoadedConfig:
    """``load_config``, and the warnings a valid config may still deserve."""
    name = str(path)
    try:
        with open(path, "rb") as file:  # a FIFO, as from <(...), is fine too
            data = file.read(bounds.MAX_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise ConfigError([Problem(name, 0, "-", f"cannot read the file: {exc}")]) from exc
    if len(data) > bounds.MAX_BYTES:
        line = data.count(b"\n", 0, bounds.MAX_BYTES) + 1
        message = f"larger than {bounds.MAX_BYTES >> 10} KiB: is this the config file?"
        raise ConfigError([Problem(name, line, "(file)", message)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([Problem(name, line, "toml", f"not UTF-8: {exc.reason}")]) from exc
    return _parse(text, name, check_files=check_files)


def parse_config(text: str, name: str = "<config>", *, check_files: bool = True) -> Config:
    return _parse(text, name, check_files=check_files).config


def _parse(text: str, name: str, *, check_files: bool) -> LoadedConfig:
    data = _toml(text, name)
    where = TomlMap(text)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _error([_validation_problem(name, where, err) for err in exc.errors()]) from exc
    across = [*duplicate_ids(config), *check_rules(config)]
    if across:
        raise _error([_located(name, where, loc, message) for loc, message in across])
    if not check_files:
        return LoadedConfig(config)
    if files := _file_problems(config):
        raise _error([_located(name, where, loc, message) for loc, message in files])
    warnings = [_located(name, where, loc, f"warning: {m}") for loc, m in _file_warnings(config)]
    return LoadedConfig(config, warnings)


def _toml(text: str, name: str) -> dict[str, Any]:
    shape = bounds.shape_problem(text)
    if shape is not None:
        raise ConfigError([Problem(name, shape[0], "toml", shape[1])])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(name, exc)]) from exc


def _error(problems: list[Problem]) -> ConfigError:
    problems = sorted(problems, key=lambda p: p.line)
    if len(problems) > MAX_PROBLEMS:
        rest = problems[MAX_PROBLEMS]
        more = Problem(rest.file, rest.line, "(file)", f"and {len(problems) - MAX_PROBLEMS} more")
        problems = [*problems[:MAX_PROBLEMS], more]
    return ConfigError(problems)


def _located(name: str, where: TomlMap, loc: Loc, message: str) -> Problem:
    path = ".".join(_show(part) for part in loc) or "(top level)"
    return Problem(name, where.line_of(loc), _one_line(path), _one_line(message))


def _show(part: str | int) -> str:
    """A key as the path shows it: quoted (JSON-style, ASCII) unless it is a bare TOML key."""
    if isinstance(part, int) or re.fullmatch(r"[A-Za-z0-9_-]{1,64}", part):
        return str(part)
    return ascii(part)


def _one_line(text: str) -> str:
    """Problems are one line each, of bounded length, whatever the file put in them."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _syntax_problem(name: str, exc: tomllib.TOMLDecodeError) -> Problem:
    m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
    line = int(m.group(1)) if m else 1
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
    return Problem(name, line, "toml", f"syntax error: {message}")


def _driver_tags(union: object) -> tuple[str, ...]:
    """The ``driver`` values a ``[[readers]]``-style list takes, from its annotated union."""
    models = get_args(get_args(union)[0]) or (get_args(union)[0],)
    return tuple(str(get_args(m.model_fields["driver"].annotation)[0]) for m in models)


_DRIVERS: Final = {
    "readers": _driver_tags(ReaderConfig),
    "sensors": _driver_tags(SensorConfig),
    "outputs": _driver_tags(OutputConfig),
}


_DRIVER_ERRORS: Final = ("union_tag_invalid", "union_tag_not_found")


def _validation_problem(name: str, where: TomlMap, err: Any) -> Problem:
    loc: Loc = tuple(part for part in err["loc"] if part != "[key]")
    tags = _DRIVERS.get(str(loc[0])) if len(loc) > 1 else None
    if tags is None:
        return _located(name, where, loc, _message(err))
    if len(loc) > 2 and loc[2] in tags:
        loc = (*loc[:2], *loc[3:])  # pydantic names the union member: not a key of the file
    if err["type"] in _DRIVER_ERRORS or (err["type"] == "missing" and loc[2:] == ("driver",)):
        what = "unknown or missing" if err["type"] == "union_tag_invalid" else "missing"
        message = f"{what} driver (expected one of: {', '.join(tags)})"
        return _located(name, where, (*loc[:2], "driver"), message)
    return _located(name, where, loc, _message(err))


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "string_pattern_mismatch":
        return f"{repr(err['input'])[:60]} must match {err['ctx']['pattern']}"
    return str(err["msg"]).removeprefix("Value error, ")


def _file_problems(config: Config) -> list[Located]:
    problems: list[Located] = []
    for loc, file in _mqtt_files(config):
        why = _not_a_file(file)
        if why is not None:
            problems.append((loc, why))
    if config.privacy.customer_ids == "hmac-sha256":
        try:
            read_secret(config.privacy.secret_file)
        except SecretError as exc:
            problems.append((("privacy", "secret_file"), str(exc)))
    if config.web.password_file is not None:
        try:
            read_secret(config.web.password_file)
        except SecretError as exc:
            problems.append((("web", "password_file"), str(exc)))
    why = _storage_problem(config.storage.path)
    if why is not None:
        problems.append((("storage", "path"), why))
    return problems


def _file_warnings(config: Config) -> list[Located]:
    """Secrets readable by more than the service: the privacy secret and the page's password."""
    named: list[tuple[Loc, Path]] = []
    if config.privacy.customer_ids == "hmac-sha256":
        named.append((("privacy", "secret_file"), config.privacy.secret_file))
    if config.web.password_file is not None:
        named.append((("web", "password_file"), config.web.password_file))
    return [(loc, why) for loc, path in named if (why := secret_warning(path)) is not None]


def _mqtt_files(config: Config) -> list[tuple[Loc, Path]]:
    mqtt = config.mqtt
    named = {
        "password_file": mqtt.password_file,
        "ca_file": mqtt.ca_file,
        "cert_file": mqtt.cert_file,
        "key_file": mqtt.key_file,
    }
    return [(("mqtt", key), file) for key, file in named.items() if file is not None]


def _not_a_file(path: Path) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return f"no such file: {path}"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    return None if stat.S_ISREG(mode) else f"{path} is not a regular file"


def _storage_problem(path: Path) -> str | None:
    """What makes ``path`` impossible as the outbox file, as far as the file system shows it to
    this user. Whether the service may create it is ``doctor``'s (another user, maybe)."""
    for parent in path.parents:
        try:
            mode = os.stat(parent).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue  # created at start, unless an ancestor is in the way
        except OSError:
            return None  # not ours to look into
        if not stat.S_ISDIR(mode):
            kind = "a file" if stat.S_ISREG(mode) else "a special file"
            return f"{parent} is {kind}, not a directory"
        break
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return None
    return f"{path} is a directory; name the outbox file in it" if is_dir else None
