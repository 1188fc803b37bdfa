"""The one error hierarchy of the drivers layer.

A decoder never raises on bad input from the wire: garbage is counted and skipped. These errors
are for the caller's mistakes (encoding a command with impossible arguments), for a device that
answers with an error status, and for transport failures, which ``transport.py`` wraps once.
"""


class DriverError(Exception):
    """Root of every error a driver may raise."""


class EncodeError(DriverError, ValueError):
    """A command or frame cannot be encoded from the given arguments."""


class FrameError(DriverError, ValueError):
    """Bytes handed to ``from_bytes`` are not one valid frame."""


class DeviceError(DriverError):
    """The device answered, but with an error status."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransportError(DriverError, OSError):
    """A port could not be opened, or went away while in use."""


class KernelError(DriverError):
    """Compiled kernels cannot be used as asked: a damaged or missing build, a forced mode that
    this machine cannot run."""
