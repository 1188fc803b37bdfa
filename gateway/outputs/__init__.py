"""Outputs the gateway drives: LCUS relay boards, serial shelf displays, OpenEPaperLink labels.

Each configured output is a session (``base.OutputSession``) that holds its port or connection
open under supervision, reports ``ok`` / ``down`` / ``error`` like a device session, and carries
out commands one at a time with retries within a deadline (``execute``, the
``gateway.commands.OutputExecutor`` protocol). See docs/outputs.md.
"""

from gateway.outputs.base import (
    ACTION_DEADLINE_S,
    InvalidCommandError,
    Output,
    OutputSession,
    RetryableError,
)
from gateway.outputs.openepaperlink import LabelSession
from gateway.outputs.registry import Outputs, make_output
from gateway.outputs.relay import RelaySession
from gateway.outputs.serial_display import DisplaySession

__all__ = [
    "ACTION_DEADLINE_S",
    "DisplaySession",
    "InvalidCommandError",
    "LabelSession",
    "Output",
    "OutputSession",
    "Outputs",
    "RelaySession",
    "RetryableError",
    "make_output",
]
