"""The ``silentgate`` command line (docs/contract.md, "Command line").

Exit codes everywhere: 0 success, 2 bad usage or bad config, 1 failure at run time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.errors import KernelError
from gateway import __version__
from gateway.errors import ConfigError, GatewayError

if TYPE_CHECKING:
    from gateway.config import Config

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("gateway.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="silentgate", description="Edge gateway for silent commerce."
    )
    parser.add_argument("--version", action="version", version=f"silentgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("--config", required=True, type=Path, metavar="FILE")
    run.add_argument("--log-level", default=os.environ.get("SILENTGATE_LOG_LEVEL", "INFO"))

    check = sub.add_parser("check-config", help="validate a config file without touching devices")
    check.add_argument("file", type=Path, metavar="FILE")

    demo = sub.add_parser("demo", help="simulated store: devices, broker, daemon and a live view")
    demo.add_argument("--duration", type=float, default=None, metavar="S")
    demo.add_argument("--json", action="store_true", help="one JSON object per line")
    demo.add_argument("--broker", default=None, metavar="URL", help="use this broker")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--miss-rate", type=float, default=0.2, help="per-read miss probability")

    build = sub.add_parser(
        "build-kernels", help="compile the kernels ahead of time (once per installed version)"
    )
    build.add_argument("--dir", type=Path, default=None, metavar="DIR",
                       help="base directory (default: where the daemon looks first)")  # fmt: skip
    build.add_argument("--force", action="store_true", help="rebuild even if a build exists")

    doctor = sub.add_parser("doctor", help="check devices, files, broker, clock and disk")
    doctor.add_argument("--config", type=Path, default=Path("/etc/silentgate/silentgate.toml"))
    doctor.add_argument("--no-broker", action="store_true", help="skip the broker connection")

    send = sub.add_parser("send", help="send a command to an output and wait for its result")
    from gateway.send import add_arguments as add_send_arguments  # noqa: PLC0415

    add_send_arguments(send)

    tail = sub.add_parser("tail", help="print events and status as a central server sees them")
    tail.add_argument("--broker", default="mqtt://127.0.0.1:1883", metavar="URL")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("--prefix", default="silentcommerce/v1", help="the gateways' topic_prefix")
    tail.add_argument(
        "filter", nargs="?", default="+/+/#", metavar="FILTER",
        help="topic filter below the prefix (default: every store and gateway)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _COMMANDS[args.command](args)


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo.run import run_demo  # noqa: PLC0415  (pulls in the simulators)

    return run_demo(args)


def _doctor(args: argparse.Namespace) -> int:
    from gateway.doctor import run as run_doctor  # noqa: PLC0415

    return run_doctor(args)


def _build_kernels(args: argparse.Namespace) -> int:
    from gateway.kernels import build  # noqa: PLC0415

    done = None if args.force else build.existing(args.dir)
    if done is not None:
        print(f"compiled kernels are up to date: {done}")
        return EXIT_OK
    try:
        built = build.build(args.dir, lambda line: print(line, flush=True))
    except GatewayError as exc:
        print(f"silentgate build-kernels: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"built {built.kernels} kernels ({built.exports} exports) in {built.seconds:.1f} s: "
          f"{built.directory}")  # fmt: skip
    return EXIT_OK


def _send(args: argparse.Namespace) -> int:
    from gateway.send import run as run_send  # noqa: PLC0415

    return run_send(args)


def _tail(args: argparse.Namespace) -> int:
    from gateway.tail import run_tail  # noqa: PLC0415

    return run_tail(args)


def _check_config(file: Path) -> int:
    from gateway.config import read_config  # noqa: PLC0415

    try:
        loaded = read_config(file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    for warning in loaded.warnings:
        print(warning, file=sys.stderr)
    config = loaded.config
    devices = len(config.readers) + len(config.sensors) + len(config.outputs)
    print(f"{file}: ok ({devices} devices, {len(config.all_zones())} zones)")
    return EXIT_OK


class _StoppedWhileStarting(Exception):
    """SIGTERM or SIGINT before the event loop took the signals over."""


def _stop_while_starting(signum: int, _frame: object) -> None:
    raise _StoppedWhileStarting(signal.Signals(signum).name)


def _run(file: Path, level: str) -> int:
    from gateway.logs import setup_logging  # noqa: PLC0415

    setup_logging(level.upper())
    # Imports and the config take seconds on a small board: a stop then is answered at once,
    # with exit 0 like any stop. The event loop installs its own handlers once it runs.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_while_starting)
    try:
        return _start(file)
    except _StoppedWhileStarting as stop:
        log.info("stopped while starting (%s)", stop)
        return EXIT_OK


def _start(file: Path) -> int:
    from gateway.config import read_config  # noqa: PLC0415

    try:
        loaded = read_config(file)
        for warning in loaded.warnings:
            log.warning("%s", warning)
        _import_daemon()
        asyncio.run(_serve(file, loaded.config))
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return EXIT_USAGE
    except (GatewayError, KernelError) as exc:
        log.error("%s", exc)
        return EXIT_FAILURE
    return EXIT_OK


def _import_daemon() -> None:
    """The daemon's modules, and with them the kernels (loaded, or numba imported), before the
    event loop runs: an import there would hold a stop up until it finished."""
    import gateway.daemon  # noqa: F401, PLC0415


async def _serve(file: Path, config: Config) -> None:
    from gateway.lifecycle import Lifecycle  # noqa: PLC0415
    from gateway.notify import Notifier  # noqa: PLC0415

    lifecycle = Lifecycle(file, config, Notifier())
    lifecycle.install_signal_handlers()
    await lifecycle.run()


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": lambda args: _run(args.config, args.log_level),
    "check-config": lambda args: _check_config(args.file),
    "demo": _demo,
    "build-kernels": _build_kernels,
    "doctor": _doctor,
    "send": _send,
    "tail": _tail,
}
