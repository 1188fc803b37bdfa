"""A PostgreSQL database for one test, dropped after it, on the server at 127.0.0.1:5432 (trust
auth, user postgres; SILENTGATE_TEST_POSTGRES overrides the server, a URL without a database)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

SERVER = os.environ.get("SILENTGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


@contextmanager
def throwaway_database() -> Iterator[str]:
    name = f"central_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
