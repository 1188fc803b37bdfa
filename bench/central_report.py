"""How long ``silentgate central report`` takes for a day of a store.

Run: ``.venv/bin/python -m bench.central_report [--hours 12] [--customers-per-hour 120]``

A day is played offline (``bench.store_day``: reads, scales and the daemon's stages, customers
picking items up), stored through the consumer's checks into SQLite and into a throwaway
PostgreSQL database, and reported from each: reading the day, the funnel, the CSV and HTML. The
target is 2 s; the baseline, measured in the same run, is reading the day's events alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from bench.store_day import shop, simulate
from bench.throwaway_pg import throwaway_database
from central.funnel import funnel, visits_from
from central.records import classify, event_rows
from central.report import write
from central.store import Store, open_store

TARGET_S: Final = 2.0
PREFIX: Final = "silentcommerce/v1"


def land(events: list[dict[str, object]], store: Store) -> None:
    rows = []
    for e in events:
        topic = f"{PREFIX}/{e['store']}/{e['gateway']}/event/{e['type']}"
        rows += event_rows(classify(topic, PREFIX), json.dumps(e).encode())
    for at in range(0, len(rows), 1000):
        store.insert(rows[at : at + 1000], 0.0)


def report(store: Store, day: date, out: Path) -> tuple[float, float, int]:
    """Seconds to read the day, seconds for the whole report, events read."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    began = time.perf_counter()
    events = store.events_between(start, start + timedelta(days=1))
    read = time.perf_counter() - began
    write(funnel(visits_from(events)), out, day)
    return read, time.perf_counter() - began, len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--customers-per-hour", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    began = time.perf_counter()
    day = simulate(shop(args.seed, args.hours, args.customers_per_hour), args.seed)
    when = datetime.fromtimestamp(day.wall_origin, UTC).date()
    customers = sum(s.kind == "customer" for s in day.scenario.subjects)
    print(f"a day of {args.hours:g} h, {customers} customers: {len(day.events)} events "
          f"(simulated in {time.perf_counter() - began:.0f} s)")  # fmt: skip
    print(
        f"{'database':<12} {'events':>7} {'read s':>7} {'report s':>9} {'vs read':>8} {'vs 2 s':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp, throwaway_database("bench") as pg_url:
        for name, url in (("sqlite", f"sqlite:///{tmp}/central.db"), ("postgresql", pg_url)):
            store = open_store(url)
            land(day.events, store)
            read, total, count = report(store, when, Path(tmp) / name)
            store.close()
            print(f"{name:<12} {count:7d} {read:7.2f} {total:9.2f} {total / read:8.1f} "
                  f"{total / TARGET_S:7.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
