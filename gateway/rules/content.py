"""Content the central server pushes for rules to show, cached on the device and on disk.

Three retained MQTT topics feed it (``P`` is the gateway's topic base)::

    P/content/zone/{zone}        {"title": "Fresh bread", "price": "2.49", "expires_at": ...}
    P/content/gtin/{gtin}        {"name": "Gouda 400 g", "price": "3.99"}
    P/content/offer/{pseudonym}  {"text": "-20% on cheese today"}

Each payload is one flat JSON object of short strings and numbers (``MAX_PAYLOAD_BYTES``,
``MAX_KEYS``), with an optional ``expires_at`` (ISO 8601 with a zone) after which it is ignored.
An empty payload, the way a retained message is deleted, removes the entry. A payload that
breaks the limits is refused whole and the cached entry stays as it was: the shelf keeps the
last good content rather than showing a half-parsed one.

Everything is written to one JSON file beside the outbox, replaced atomically (temporary file,
fsync, rename), so rules work after a restart with the broker still down. Writes are batched:
``apply`` only marks the store dirty, and ``flush`` (every ``SAVE_INTERVAL_S`` from ``run``,
and at shutdown) writes it, so the burst of retained messages after a connect costs one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from gateway.rules.templates import Value, valid_key

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES: Final = 2048
MAX_KEYS: Final = 16
MAX_VALUE_CHARS: Final = 256
MAX_ENTRIES: Final[dict[str, int]] = {
    "zone": 1_000,
    "gtin": 20_000,
    "offer": 50_000,
}  # oldest go first
SAVE_INTERVAL_S: Final = 1.0
FILE_VERSION: Final = 1

Kind = Literal["zone", "gtin", "offer"]
Entry = dict[str, Value]


class ContentStore:
    def __init__(self, path: Path | None, *, wall: Callable[[], float] = time.time) -> None:
        self.path = path
        self._wall = wall
        self._entries: dict[Kind, dict[str, Entry]] = _empty()
        self._expiry: dict[tuple[Kind, str], float] = {}
        self._dirty = False
        self.applied = 0
        self.refused = 0

    @classmethod
    def open(cls, path: Path, *, wall: Callable[[], float] = time.time) -> ContentStore:
        """The store saved at ``path``; empty when there is none or it cannot be read."""
        store = cls(path, wall=wall)
        with contextlib.suppress(FileNotFoundError):
            store._load(path)
        return store

    def zone(self, zone: str) -> Mapping[str, Value] | None:
        return self._get("zone", zone)

    def gtin(self, gtin: str) -> Mapping[str, Value] | None:
        return self._get("gtin", gtin)

    def offer(self, pseudonym: str) -> Mapping[str, Value] | None:
        return self._get("offer", pseudonym)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    def apply(self, topic_suffix: str, payload: bytes) -> bool:
        """A message on ``P/content/{topic_suffix}``; False (and nothing changed) if refused."""
        try:
            kind, key = _split(topic_suffix)
            parsed = None if not payload else _parse(payload)
        except ValueError as exc:
            self.refused += 1
            log.warning("content %s refused: %s", topic_suffix, exc)
            return False
        if parsed is None:
            self._remove(kind, key)
        else:
            self._put(kind, key, *parsed)
        self.applied += 1
        self._dirty = True
        return True

    def flush(self) -> None:
        """Write the file now if anything changed since the last write."""
        if not self._dirty or self.path is None:
            return
        self._dirty = False
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as f:
                json.dump(self._snapshot(), f, ensure_ascii=False, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            # The cache only helps while the broker is away; a full disk must not stop rules.
            self._dirty = True
            log.warning("cannot write the content cache %s: %s", self.path, exc)

    async def run(self) -> None:
        """Write changes every SAVE_INTERVAL_S until cancelled; flush again at shutdown."""
        try:
            while True:
                await asyncio.sleep(SAVE_INTERVAL_S)
                self.flush()
        finally:
            self.flush()

    def _get(self, kind: Kind, key: str) -> Entry | None:
        entry = self._entries[kind].get(key)
        if entry is None:
            return None
        expires = self._expiry.get((kind, key))
        if expires is not None and expires <= self._wall():
            return None
        return entry

    def _put(self, kind: Kind, key: str, entry: Entry, expires: float | None) -> None:
        entries = self._entries[kind]
        entries.pop(key, None)  # re-inserted last: dict order is the eviction order
        entries[key] = entry
        self._expiry.pop((kind, key), None)
        if expires is not None:
            self._expiry[(kind, key)] = expires
        while len(entries) > MAX_ENTRIES[kind]:
            self._remove(kind, next(iter(entries)))

    def _remove(self, kind: Kind, key: str) -> None:
        self._entries[kind].pop(key, None)
        self._expiry.pop((kind, key), None)

    def _snapshot(self) -> dict[str, object]:
        now = self._wall()
        out: dict[str, dict[str, object]] = {}
        for kind, entries in self._entries.items():
            out[kind] = {}
            for key, entry in entries.items():
                expires = self._expiry.get((kind, key))
                if expires is None or expires > now:
                    out[kind][key] = {"data": entry, "expires": expires}
        return {"version": FILE_VERSION, **out}

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            kinds: tuple[Kind, ...] = ("zone", "gtin", "offer")
            for kind in kinds:
                for key, item in data.get(kind, {}).items():
                    entry, _ = _entry(item["data"])
                    expires = item.get("expires")
                    self._put(kind, key, entry, None if expires is None else float(expires))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # A damaged cache must not stop the shop: start empty, the broker refills it.
            log.warning("content cache %s unreadable (%s); starting empty", path, exc)
            self._entries = _empty()
            self._expiry.clear()


def _empty() -> dict[Kind, dict[str, Entry]]:
    return {"zone": {}, "gtin": {}, "offer": {}}


def _split(topic_suffix: str) -> tuple[Kind, str]:
    kind, _, key = topic_suffix.partition("/")
    if kind not in MAX_ENTRIES:
        raise ValueError(f"unknown content kind {kind!r} (zone, gtin, offer)")
    if not key or "/" in key or len(key) > 128:
        raise ValueError(f"bad key {key!r}")
    return kind, key  # type: ignore[return-value]  # checked against MAX_ENTRIES above


def _parse(payload: bytes) -> tuple[Entry, float | None]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"{len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        obj = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed JSON: {exc}") from None
    return _entry(obj)


def _entry(obj: object) -> tuple[Entry, float | None]:
    if not isinstance(obj, dict):
        raise ValueError("content is a JSON object")
    obj = dict(obj)
    expires = _expires(obj.pop("expires_at", None))
    if len(obj) > MAX_KEYS:
        raise ValueError(f"more than {MAX_KEYS} keys")
    entry: Entry = {}
    for key, value in obj.items():
        if not valid_key(key):
            raise ValueError(f"key {key!r} is not allowed (lowercase name, never an id)")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"{key}: values are strings or numbers")
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"{key}: longer than {MAX_VALUE_CHARS} characters")
        entry[key] = value
    return entry, expires


def _expires(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expires_at is an ISO 8601 time with a zone")
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        raise ValueError("expires_at needs a zone (e.g. Z)")
    return stamp.timestamp()


class ContentSubscription:
    """The uplink's side: which topics to subscribe to, and messages on them into the store."""

    def __init__(self, store: ContentStore, base: str) -> None:
        self.store = store
        self.topic_filter = f"{base}/content/#"
        self._prefix = f"{base}/content/"

    def receive(self, topic: str, payload: bytes) -> bool:
        """True when ``topic`` is a content topic (applied or refused), False when it is not."""
        if not topic.startswith(self._prefix):
            return False
        self.store.apply(topic[len(self._prefix) :], payload)
        return True
