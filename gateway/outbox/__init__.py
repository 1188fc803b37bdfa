"""The durable outbox: every accepted event lives here until the broker has acknowledged it.

An event counts as accepted only once the transaction that stores it has committed; that same
transaction assigns its ``seq``, so ``seq`` is gap-free and never reused, across restarts and
kill -9 alike (the last assigned value lives in ``meta`` and only moves forward, and a ceiling
beside the file covers a database that is damaged or gone). Rows are deleted once the broker's
PUBACK arrives, so the table holds only the undelivered backlog.

Bounded size: ``max_bytes`` becomes SQLite's ``max_page_count`` on the one connection that
writes, the command ledger's writes included, so the file cannot grow past it. Above
``HIGH_WATER`` of the limit, events of a droppable type (raw ``shelf.weight`` by default) are
dropped before they get a ``seq`` (so consumers see no gap for them) and counted per type. The
rest of the space is kept for presence and item events. When even those cannot be stored, they
wait in memory (up to ``HELD_MAX``) and are stored first as soon as there is room; only beyond
that are events lost, and that is counted and logged as an error.

Storage degrades instead of dying: a full disk, a read-only file or directory, an I/O error or a
damaged database is a state (``StorageHealth``: ok / full / failed, with a reason) shown in the
status, never an exception out of ``store`` or ``delivered``. Delivery goes on from what is in
the file, and storage is retried until it works again.

    store.py    the Outbox: the API, the writer thread, the reading connection
    writer.py   the writer thread's side: storing, deleting, holding, failing, retrying
    opening.py  opening: check, migrate, prove writable; a damaged file moved aside
    files.py    beside the database: the disk reserve, the seq ceiling, moving aside
    schema.py   connections, migrations, SQLite's error codes
    ranges.py   delivered seqs not yet deleted, as ranges
    health.py   the figures and the state the status shows
"""

from gateway.outbox.files import RESERVE_BYTES, SEQ_BLOCK
from gateway.outbox.health import Backlog, StorageHealth, StorageState
from gateway.outbox.schema import SCHEMA_VERSION, WAL_LIMIT_BYTES
from gateway.outbox.store import RETRY_S, Outbox, Row
from gateway.outbox.writer import DEFAULT_DROPPABLE, HELD_MAX, HIGH_WATER

__all__ = [
    "DEFAULT_DROPPABLE",
    "HELD_MAX",
    "HIGH_WATER",
    "RESERVE_BYTES",
    "RETRY_S",
    "SCHEMA_VERSION",
    "SEQ_BLOCK",
    "WAL_LIMIT_BYTES",
    "Backlog",
    "Outbox",
    "Row",
    "StorageHealth",
    "StorageState",
]
