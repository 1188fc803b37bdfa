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
from gateway.runtime.logs import LIFECYCLE

if TYPE_CHECKING:
    from gateway.config import Config

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("gateway.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="silentgate", description="Edge gateway for silent commerce."
    )
    parser.add_argument("--version", action="version", version=f"silentgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("--config", required=True, type=Path, metavar="FILE", help="the config file")
    run.add_argument(
        "--log-level", default=os.environ.get("SILENTGATE_LOG_LEVEL", "INFO"),
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING or ERROR: the least severe level logged "
        "(default: $SILENTGATE_LOG_LEVEL, else INFO)",
    )  # fmt: skip

    check = sub.add_parser("check-config", help="validate a config file without touching devices")
    check.add_argument("file", type=Path, metavar="FILE", help="the config file")

    demo = sub.add_parser("demo", help="simulated store: devices, broker, daemon and a live view")
    demo.add_argument(
        "--duration", type=float, default=None, metavar="S",
        help="seconds to run once the daemon is ready (default: until Ctrl-C)",
    )  # fmt: skip
    demo.add_argument("--json", action="store_true", help="one JSON object per line")
    demo.add_argument("--broker", default=None, metavar="URL",
                      help="use this broker (default: start one)")  # fmt: skip
    demo.add_argument("--seed", type=int, default=42, help="draws the store's scenario")
    demo.add_argument("--miss-rate", type=float, default=0.2, help="per-read miss probability")
    demo.add_argument("--web", action="store_true", help="serve the live page on 127.0.0.1")
    demo.add_argument("--web-port", type=int, default=8080, metavar="N", help="its port")

    build = sub.add_parser(
        "build-kernels", help="compile the kernels ahead of time (once per installed version)"
    )
    build.add_argument("--dir", type=Path, default=None, metavar="DIR",
                       help="base directory (default: where the daemon looks first)")  # fmt: skip
    build.add_argument("--force", action="store_true", help="rebuild even if a build exists")

    doctor = sub.add_parser("doctor", help="check devices, files, broker, clock and disk")
    doctor.add_argument(
        "--config", type=Path, default=Path("/etc/silentgate/silentgate.toml"), metavar="FILE",
        help="the daemon's config (default /etc/silentgate/silentgate.toml)",
    )  # fmt: skip
    doctor.add_argument("--no-broker", action="store_true", help="skip the broker connection")

    send = sub.add_parser("send", help="send a command to an output and wait for its result")
    from gateway.tools.send import add_arguments as add_send_arguments  # noqa: PLC0415

    add_send_arguments(send)

    request = sub.add_parser(
        "request", help="ask a gateway for its info or health, a reload or a log level"
    )
    from gateway.tools.send import add_request_arguments  # noqa: PLC0415

    add_request_arguments(request)

    tail = sub.add_parser("tail", help="print events and status as a central server sees them")
    from gateway.tools.tail import add_arguments as add_tail_arguments  # noqa: PLC0415

    add_tail_arguments(tail)

    from central.cli import add_parser as add_central_parser  # noqa: PLC0415

    add_central_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _COMMANDS[args.command](args)


def _demo(args: argparse.Namespace) -> int:
    from demo.run import run_demo  # noqa: PLC0415  (pulls in the simulators)

    return run_demo(args)


def _doctor(args: argparse.Namespace) -> int:
    from gateway.tools.doctor import run as run_doctor  # noqa: PLC0415

    return run_doctor(args)


def _build_kernels(args: argparse.Namespace) -> int:
    from gateway.service import build  # noqa: PLC0415

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
    from gateway.tools.send import run as run_send  # noqa: PLC0415

    return run_send(args)


def _request(args: argparse.Namespace) -> int:
    from gateway.tools.send import run_request  # noqa: PLC0415

    return run_request(args)


def _tail(args: argparse.Namespace) -> int:
    from gateway.tools.tail import run_tail  # noqa: PLC0415

    return run_tail(args)


def _central(args: argparse.Namespace) -> int:
    from central.cli import main as central_main  # noqa: PLC0415

    return central_main(args)


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
    print(f"{file}: ok ({loaded.config.counts()})")
    return EXIT_OK


class _StoppedWhileStarting(Exception):
    """SIGTERM or SIGINT before the event loop took the signals over."""


def _stop_while_starting(signum: int, _frame: object) -> None:
    raise _StoppedWhileStarting(signal.Signals(signum).name)


def _run(file: Path, level: str) -> int:
    from gateway.runtime.logs import setup_logging  # noqa: PLC0415

    setup_logging(level.upper())
    # Imports and the config take seconds on a small board: a stop then is answered at once,
    # with exit 0 like any stop. The event loop installs its own handlers once it runs.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_while_starting)
    try:
        return _start(file)
    except _StoppedWhileStarting as stop:
        log.info("stopped while starting (%s)", stop, extra=LIFECYCLE)
        return EXIT_OK


def _start(file: Path) -> int:
    from gateway.config import read_config  # noqa: PLC0415

    try:
        loaded = read_config(file)
        for warning in loaded.warnings:
            log.warning("%s", warning, extra=LIFECYCLE)
        _import_daemon()
        asyncio.run(_serve(file, loaded.config))
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem, extra=LIFECYCLE)
        return EXIT_USAGE
    except (GatewayError, KernelError) as exc:
        log.error("%s", exc, extra=LIFECYCLE)
        return EXIT_FAILURE
    return EXIT_OK


def _import_daemon() -> None:
    """The daemon's modules, and with them the kernels (loaded, or numba imported), before the
    event loop runs: an import there would hold a stop up until it finished."""
    import gateway.service.daemon  # noqa: F401, PLC0415


async def _serve(file: Path, config: Config) -> None:
    from gateway.runtime.notify import Notifier  # noqa: PLC0415
    from gateway.service.lifecycle import Lifecycle  # noqa: PLC0415

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
    "request": _request,
    "tail": _tail,
    "central": _central,
}
