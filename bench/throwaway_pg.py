"""A PostgreSQL database for one test or one benchmark run, dropped after it, on the server at
127.0.0.1:5432 (trust auth, user postgres; SILENTGATE_TEST_POSTGRES overrides the server, a
URL without a database).

Here rather than under tests/: the benchmarks use it as well, and tests already import from
``bench`` (never the other way round)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg

SERVER: Final = os.environ.get("SILENTGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


@contextmanager
def throwaway_database(purpose: str = "test") -> Iterator[str]:
    """The URL of a new, empty database named ``central_{purpose}_...`` (a database that a
    killed run leaves behind says where it came from)."""
    name = f"central_{purpose}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
