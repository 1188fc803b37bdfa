"""Content the central server pushes for rules to show, cached on the device and on disk.

Three retained MQTT topics feed it (``P`` is the gateway's topic base)::

    P/content/zone/{zone}        {"title": "Fresh bread", "price": "2.49", "expires_at": ...}
    P/content/gtin/{gtin}        {"name": "Gouda 400 g", "price": "3.99"}
    P/content/offer/{pseudonym}  {"text": "-20% on cheese today"}

Each payload is one flat JSON object (``gateway.wire.bounded_json``: at most
``MAX_PAYLOAD_BYTES``, no nesting, integers of at most 15 digits, finite floats) of at most
``MAX_KEYS`` short strings and numbers, with an optional ``expires_at`` (ISO 8601 with a zone) after
which it is ignored. An empty payload, the way a retained message is deleted, removes the entry. A
payload that breaks the limits is refused whole (counted by reason in ``refused_by``) and the cached
entry stays as it was: the shelf keeps the last good content rather than showing a half-parsed one.

The cache is bounded per kind, in entries and in bytes (``BOUNDS``: the size of an entry is
its payload's), so a broker that holds 20,000 retained offers costs at most what the bounds
allow: the oldest entries of that kind go first, and other kinds keep theirs.

Everything is written to one JSON file beside the outbox, replaced atomically (temporary file,
fsync, rename), so rules work after a restart with the broker still down. ``apply`` only marks
the store dirty; ``run`` takes a snapshot every ``SAVE_INTERVAL_S`` when something changed (a
copy of the per-kind tables, whose entries are never changed in place) and writes it on a
thread, so the event loop never waits for the encoder or the SD card. The file is untrusted at
load like the broker that wrote it: read only up to ``MAX_FILE_BYTES``, parsed with the same
bounds, each entry checked like a message, and loaded within ``BOUNDS``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, NamedTuple

import aiomqtt

from gateway.config.templates import Value, valid_key
from gateway.errors import InputError
from gateway.runtime.ratelog import Throttle
from gateway.wire import bounded_json

log = logging.getLogger(__name__)
_refusals = Throttle(log, logging.WARNING)

MAX_PAYLOAD_BYTES: Final = 2048
MAX_KEYS: Final = 16
MAX_KEY_CHARS: Final = 128  # of a zone, gtin or pseudonym in the topic
MAX_VALUE_CHARS: Final = 256
LIMITS: Final = bounded_json.Limits(MAX_PAYLOAD_BYTES, max_depth=1, max_keys=MAX_KEYS + 1)
SAVE_INTERVAL_S: Final = 5.0
FILE_VERSION: Final = 1

Kind = Literal["zone", "gtin", "offer"]
KINDS: Final[tuple[Kind, ...]] = ("zone", "gtin", "offer")
Entry = dict[str, Value]


@dataclass(frozen=True, slots=True)
class Bound:
    entries: int
    bytes: int


# Per kind, the oldest go first beyond either bound. Zones are few; a shop's assortment and
# its loyalty customers are many, and their content must not push out the zones'.
BOUNDS: Final[dict[Kind, Bound]] = {
    "zone": Bound(1_000, 256 << 10),
    "gtin": Bound(10_000, 4 << 20),
    "offer": Bound(10_000, 4 << 20),
}
MAX_FILE_BYTES: Final = 2 * sum(b.bytes for b in BOUNDS.values())  # JSON adds its wrapping
# A table with more entries than its bound loads its newest (the file's last) within the bound.
FILE_LIMITS: Final = bounded_json.Limits(
    MAX_FILE_BYTES, max_depth=4, max_keys=2 * max(b.entries for b in BOUNDS.values())
)


class Item(NamedTuple):
    entry: Entry
    expires: float | None
    size: int


Snapshot = dict[Kind, dict[str, Item]]


class ContentStore:
    def __init__(self, path: Path | None, *, wall: Callable[[], float] = time.time) -> None:
        self.path = path
        self._wall = wall
        self._items: Snapshot = _empty()
        self._bytes: Counter[Kind] = Counter()
        self._dirty = False
        self._writing = threading.Lock()
        self.applied = 0
        self.evicted = 0
        self.refused_by: Counter[str] = Counter()

    @classmethod
    def open(cls, path: Path, *, wall: Callable[[], float] = time.time) -> ContentStore:
        """The store saved at ``path``; empty when there is none or it cannot be read."""
        store = cls(path, wall=wall)
        try:
            store._load(path)
        except FileNotFoundError:  # a first start: nothing is wrong, so not a warning
            log.info("no content cache %s yet: content comes from the broker", path)
        return store

    @property
    def refused(self) -> int:
        return self.refused_by.total()

    @property
    def size(self) -> int:
        """Bytes of content held, as counted against ``BOUNDS``."""
        return self._bytes.total()

    def zone(self, zone: str) -> Mapping[str, Value] | None:
        return self._get("zone", zone)

    def gtin(self, gtin: str) -> Mapping[str, Value] | None:
        return self._get("gtin", gtin)

    def offer(self, pseudonym: str) -> Mapping[str, Value] | None:
        return self._get("offer", pseudonym)

    def __len__(self) -> int:
        return sum(len(items) for items in self._items.values())

    def apply(self, topic_suffix: str, payload: bytes) -> bool:
        """A message on ``P/content/{topic_suffix}``; False (and nothing changed) if refused."""
        try:
            kind, key = _split(topic_suffix)
            parsed = None if not payload else _entry(bounded_json.parse(payload, LIMITS))
        except InputError as exc:
            self.refuse(topic_suffix, str(exc), exc.code)
            return False
        if parsed is None:
            self._remove(kind, key)
        else:
            self._put(kind, key, Item(*parsed, size=len(payload)))
        self.applied += 1
        self._dirty = True
        return True

    def refuse(self, topic_suffix: str, reason: str, code: str) -> None:
        self.refused_by[code] += 1
        suffix = topic_suffix[:MAX_KEY_CHARS]
        _refusals(code, "content refused (%s) on %s: %s", code, suffix, reason)

    def flush(self) -> None:
        """Write the file now if anything changed since the last write (at shutdown, tests)."""
        snapshot = self._take_snapshot()
        if snapshot is not None:
            self._write(snapshot)

    async def run(self) -> None:
        """Write changes every SAVE_INTERVAL_S on a thread until cancelled; at shutdown write
        once more, on the loop (nothing else is left to wait)."""
        try:
            while True:
                await asyncio.sleep(SAVE_INTERVAL_S)
                snapshot = self._take_snapshot()
                if snapshot is not None:
                    await asyncio.to_thread(self._write, snapshot)
        finally:
            self.flush()

    def _get(self, kind: Kind, key: str) -> Entry | None:
        item = self._items[kind].get(key)
        if item is None:
            return None
        if item.expires is not None and item.expires <= self._wall():
            return None
        return item.entry

    def _put(self, kind: Kind, key: str, item: Item) -> None:
        items, bound = self._items[kind], BOUNDS[kind]
        self._remove(kind, key)  # re-inserted last: dict order is the eviction order
        items[key] = item
        self._bytes[kind] += item.size
        while len(items) > bound.entries or self._bytes[kind] > bound.bytes:
            self._remove(kind, next(iter(items)))
            self.evicted += 1

    def _remove(self, kind: Kind, key: str) -> None:
        item = self._items[kind].pop(key, None)
        if item is not None:
            self._bytes[kind] -= item.size

    def _take_snapshot(self) -> Snapshot | None:
        """A copy of the tables if they changed since the last one, else None. Items are
        immutable and never changed in place, so copying the tables is enough."""
        if not self._dirty or self.path is None:
            return None
        self._dirty = False
        return {kind: dict(items) for kind, items in self._items.items()}

    def _write(self, snapshot: Snapshot) -> None:
        assert self.path is not None  # _take_snapshot gives none without a path
        with self._writing:  # the last write at shutdown may meet one still on its thread
            self._write_file(self.path, snapshot)

    def _write_file(self, path: Path, snapshot: Snapshot) -> None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as f:
                document = _document(snapshot, self._wall())
                json.dump(document, f, ensure_ascii=False, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            # The cache only helps while the broker is away; a full disk must not stop rules.
            self._dirty = True
            log.warning("cannot write the content cache %s: %s", path, exc)

    def _load(self, path: Path) -> None:
        try:
            with path.open("rb") as f:
                data = bounded_json.parse(f.read(MAX_FILE_BYTES + 1), FILE_LIMITS)
            if not isinstance(data, dict):
                raise InputError("not a JSON object")
        except FileNotFoundError:
            raise  # no cache yet: not worth a warning
        except (OSError, InputError) as exc:
            # A damaged cache must not stop the shop: start empty, the broker refills it.
            log.warning("content cache %s unreadable (%s); starting empty", path, exc)
            return
        skipped = sum(self._load_kind(kind, data.get(kind)) for kind in KINDS)
        if skipped:
            log.warning("content cache %s: %d entries out of bounds were skipped", path, skipped)

    def _load_kind(self, kind: Kind, table: object) -> int:
        """Entries of ``table`` loaded like messages; returns how many were refused."""
        if not isinstance(table, dict):
            return 0 if table is None else 1
        refused = 0
        for key, saved in table.items():
            try:
                _split(f"{kind}/{key}")
                entry, _ = _entry(saved.get("data") if isinstance(saved, dict) else None)
                expires = _saved_expiry(saved.get("expires"))
            except InputError:
                refused += 1
                continue
            size = len(json.dumps(entry, ensure_ascii=False).encode())
            self._put(kind, key, Item(entry, expires, size))
        return refused


def _empty() -> Snapshot:
    return {kind: {} for kind in KINDS}


def _document(snapshot: Snapshot, now: float) -> dict[str, object]:
    out: dict[str, object] = {"version": FILE_VERSION}
    for kind, items in snapshot.items():
        out[kind] = {
            key: {"data": item.entry, "expires": item.expires}
            for key, item in items.items()
            if item.expires is None or item.expires > now
        }
    return out


def _split(topic_suffix: str) -> tuple[Kind, str]:
    kind, _, key = topic_suffix.partition("/")
    if kind not in BOUNDS:
        raise InputError(f"unknown content kind {kind[:16]!r} (zone, gtin, offer)", "topic")
    if not key or "/" in key or len(key) > MAX_KEY_CHARS:
        raise InputError(f"bad key {key[:MAX_KEY_CHARS]!r}", "topic")
    return kind, key


def _entry(obj: object) -> tuple[Entry, float | None]:
    if not isinstance(obj, dict):
        raise InputError("content is a JSON object", "object")
    obj = dict(obj)
    expires = _expires(obj.pop("expires_at", None))
    if len(obj) > MAX_KEYS:
        raise InputError(f"more than {MAX_KEYS} keys", "object")
    entry: Entry = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not valid_key(key):
            reason = f"key {str(key)[:40]!r} is not allowed (lowercase name, never an id)"
            raise InputError(reason, "key")
        entry[key] = _value(key, value)
    return entry, expires


def _value(key: str, value: object) -> Value:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(f"{key}: values are strings or numbers", "value")
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        raise InputError(f"{key}: longer than {MAX_VALUE_CHARS} characters", "value")
    return value


def _expires(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise InputError("expires_at is an ISO 8601 time with a zone", "expires_at")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise InputError("expires_at is an ISO 8601 time with a zone", "expires_at") from None
    if stamp.tzinfo is None:
        raise InputError("expires_at needs a zone (e.g. Z)", "expires_at")
    return stamp.timestamp()


def _saved_expiry(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError("expires is a unix time", "expires_at")
    return float(value)


class ContentSubscription:
    """The uplink's side: which topics to subscribe to, and messages on them into the store."""

    def __init__(self, store: ContentStore, base: str) -> None:
        self.store = store
        self.topic_filter = f"{base}/content/#"
        self.prefix = f"{base}/content/"
        self.shed = 0  # dropped before parsing: the inbound lane was full

    def receive(self, topic: str, payload: bytes) -> bool:
        """True when ``topic`` is a content topic (applied or refused), False when it is not."""
        if not topic.startswith(self.prefix):
            return False
        self.store.apply(topic[len(self.prefix) :], payload)
        return True

    def refuse(self, message: aiomqtt.Message, code: str) -> None:
        """A message the inbound queue did not take: its lane was full ("busy"), or it was
        larger than a content message may be ("too_large")."""
        suffix = message.topic.value.removeprefix(self.prefix)
        if code == "busy":
            self.shed += 1
            _refusals(code, "content dropped on %s: too many messages waiting", suffix[:64])
        else:
            reason = f"payload of {len(message.payload)} bytes exceeds {MAX_PAYLOAD_BYTES}"
            self.store.refuse(suffix, reason, code)
