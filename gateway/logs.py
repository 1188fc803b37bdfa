"""Logging to stderr, one line per record, in a form journald stores well.

Under systemd (``JOURNAL_STREAM`` set) lines start with the syslog priority prefix ``<N>`` so that
``journalctl -p warning`` works, and carry no timestamp (the journal adds its own). Elsewhere each
line starts with a timestamp. Either way the line names the level and the component.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Final

_PRIORITY: Final = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record).replace("\n", " | ")
        return f"<{_PRIORITY.get(record.levelname, 6)}>{line}"


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter below WARNING is ours to summarise, not to repeat.
    for name in ("asyncio", "aiomqtt", "pymodbus", "numba"):
        logging.getLogger(name).setLevel(logging.WARNING)
