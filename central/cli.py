"""``silentgate central ...``: the consumer and the report (docs/contract.md, "Command line").

Registered by ``gateway.cli`` as one subparser; everything below it lives here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from central.store import StoreError, open_store

if TYPE_CHECKING:
    from central.consumer import Consumer

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("central.cli")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    central = sub.add_parser("central", help="the central side: consume events, report funnels")
    commands = central.add_subparsers(dest="central_command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="consume events into a database (a group member)")
    run.add_argument("--broker", required=True, metavar="URL",
                     help="host:port, mqtt://host[:port] or mqtts://host[:port]")  # fmt: skip
    run.add_argument("--db", required=True, metavar="URL",
                     help="sqlite:///PATH or postgresql://...")  # fmt: skip
    run.add_argument("--group", default=None, metavar="NAME", help="shared subscription group")
    run.add_argument("--config", type=Path, default=None, metavar="FILE",
                     help="a TOML file with a [central] table: TLS files, credentials, "
                     "session and batch settings (docs/contract.md)")  # fmt: skip
    run.add_argument("--metrics-port", type=_port, default=None, metavar="PORT",
                     help="Prometheus metrics on 127.0.0.1:PORT/metrics (default off)")  # fmt: skip
    run.add_argument("--log-level", default=os.environ.get("SILENTGATE_LOG_LEVEL", "INFO"),
                     help="DEBUG, INFO, WARNING or ERROR")  # fmt: skip
    report = commands.add_parser("report", help="a day's funnel as CSV and an HTML page")
    report.add_argument("--db", required=True, metavar="URL",
                        help="sqlite:///PATH or postgresql://...")  # fmt: skip
    report.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="where funnel.csv, dwell.csv and funnel.html are written")  # fmt: skip
    report.add_argument("--day", default=None, type=_day, metavar="YYYY-MM-DD",
                        help="UTC day (default: the day of the newest event)")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from gateway.runtime.logs import setup_logging  # noqa: PLC0415

    setup_logging(args.log_level.upper() if "log_level" in args else "INFO")
    return _run(args) if args.central_command == "run" else _report(args)


def _run(args: argparse.Namespace) -> int:
    from central.consumer import Consumer  # noqa: PLC0415
    from central.losswatch import LossWatch  # noqa: PLC0415
    from central.settings import load  # noqa: PLC0415

    try:
        settings = load(args.broker, args.db, args.group, args.config)
        store = open_store(settings.db)
    except StoreError as exc:
        print(f"silentgate central run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        watch = LossWatch(store, settings.grace_s)
        consumer = Consumer(settings, store, watch=watch)
        asyncio.run(_until_stopped(_serve(consumer, args.metrics_port)))
    finally:
        store.close()
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from central.funnel import funnel, visits_from  # noqa: PLC0415
    from central.report import write  # noqa: PLC0415

    try:
        store = open_store(args.db)
    except StoreError as exc:
        print(f"silentgate central report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        day: date | None = args.day
        if day is None:
            latest = store.latest_ts()
            day = datetime.fromtimestamp(latest, UTC).date() if latest is not None else None
        if day is None:
            print("silentgate central report: no events stored yet", file=sys.stderr)
            return EXIT_FAILURE
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        events = store.events_between(start, start + timedelta(days=1))
    finally:
        store.close()
    paths = write(funnel(visits_from(events)), args.out, day)
    print(f"{len(events)} events of {day.isoformat()}: " + ", ".join(str(p) for p in paths))
    return EXIT_OK


async def _serve(consumer: Consumer, metrics_port: int | None) -> None:
    async with asyncio.TaskGroup() as tg:
        tg.create_task(consumer.run())
        if metrics_port is not None:
            tg.create_task(_metrics(consumer, metrics_port))


async def _metrics(consumer: Consumer, port: int) -> None:
    from central.metrics import CentralCollector  # noqa: PLC0415
    from gateway.service.metrics import MetricsServer  # noqa: PLC0415

    try:
        await MetricsServer(CentralCollector(consumer), "127.0.0.1", port).run()
    except OSError as exc:  # the port is taken: the events matter more than their figures
        log.error("metrics on 127.0.0.1:%d: %s; consuming without them", port, exc)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (1-65535): {text!r}")
    return port


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


async def _until_stopped(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until SIGTERM or SIGINT; unacknowledged messages come again later."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    log.info("stopped")
