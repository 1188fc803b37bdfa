"""Ids that must be unique across the file, each duplicate located at its second occurrence.

A model validator could find them, but a ValueError raised there is placed at the table that
holds the whole list (line 1 for the root); checked here, after the models validate, each
problem names the entry that repeats an id, the way ``check_rules`` places its problems.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from gateway.config.rules import Loc, Located


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


class WholeConfig(Protocol):
    """What ``duplicate_ids`` reads of ``gateway.config.Config``."""

    @property
    def readers(self) -> Sequence[_HasId]: ...

    @property
    def sensors(self) -> Sequence[_HasId]: ...

    @property
    def outputs(self) -> Sequence[_HasId]: ...

    @property
    def zones(self) -> Sequence[_HasId]: ...


def duplicate_ids(config: WholeConfig) -> list[Located]:
    """Readers, sensors and outputs share one namespace (status and commands name them by id);
    zones have their own. Rule ids are ``check_rules``'."""
    lists = (("readers", config.readers), ("sensors", config.sensors), ("outputs", config.outputs))
    devices = [((name, i), d.id) for name, items in lists for i, d in enumerate(items)]
    zones = [(("zones", i), z.id) for i, z in enumerate(config.zones)]
    return [*_repeats(devices, "device"), *_repeats(zones, "zone")]


def _repeats(entries: Iterable[tuple[Loc, str]], kind: str) -> list[Located]:
    seen: set[str] = set()
    problems: list[Located] = []
    for at, name in entries:
        if name in seen:
            problems.append(((*at, "id"), f"{kind} id {name!r} is used twice"))
        seen.add(name)
    return problems
