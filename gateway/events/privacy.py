"""What may leave the device about a customer (docs/contract.md, "Events").

A raw card number is personal data: by default the published id is
``hmac-sha256(secret, raw_id)`` in lowercase hex, a stable pseudonym that the central CRM can
join on without ever learning the card number. The secret is read from a file so it never sits
in the TOML, and the daemon refuses to start in hmac mode without a usable one.

``read_secret`` is the one definition of a usable secret: ``check-config``, ``run``, a reload
and ``doctor`` all go through it, so none of them accepts a file another refuses. The file is
checked before it is read (a regular file, not a FIFO that blocks or /dev/zero that never
ends) and only ``MAX_SECRET_BYTES`` of it are read.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path
from typing import Final, Literal

from gateway.errors import SecretError

CustomerIdMode = Literal["hmac-sha256", "raw", "omit"]

# Card numbers are a small space (an EM4100 id has 40 bits): anyone who learns the secret can
# hash every possible card and undo every pseudonym. A secret of 16 bytes or more cannot be
# guessed by brute force even offline, from a pseudonym and a card number the attacker knows
# (their own card); "s3cret" can. 16 is the floor, the documented recipe makes 44.
MIN_SECRET_BYTES: Final = 16
MAX_SECRET_BYTES: Final = 4096  # a secret is a line of text; anything longer is the wrong file
CREATE_HINT: Final = "create one: head -c 32 /dev/urandom | base64 > FILE"


def read_secret(path: Path) -> bytes:
    """The secret in ``path``, surrounding whitespace stripped; SecretError when unusable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SecretError(f"no such file: {path} ({CREATE_HINT})") from None
    except (OSError, ValueError) as exc:
        raise SecretError(f"cannot read {path}: {_reason(exc)}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SecretError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise SecretError(f"cannot read {path}: {_reason(exc)}") from exc
    return _usable(path, data)


def _usable(path: Path, data: bytes) -> bytes:
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError(f"{path} is longer than {MAX_SECRET_BYTES} bytes: not a secret file")
    secret = data.strip()
    if not secret:
        raise SecretError(f"{path} is empty ({CREATE_HINT})")
    if len(secret) < MIN_SECRET_BYTES:
        count = f"{len(secret)} byte{'s' if len(secret) > 1 else ''}"
        raise SecretError(
            f"{path} holds {count}; a secret needs at least {MIN_SECRET_BYTES} ({CREATE_HINT})"
        )
    return secret


def secret_warning(path: Path) -> str | None:
    """Why the secret file is readable by more than the service, or None when it is not.

    Allowed: 0600, and 0640 when root owns the file (the service reads it through its group,
    the way installation.md sets it up; PostgreSQL applies the same rule to its key file).
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None  # read_secret reports what is wrong with it
    loose = st.st_mode & 0o077
    if not loose or (st.st_uid == 0 and loose == 0o040):
        return None
    who = "everyone" if loose & 0o007 else "its group"
    access = "readable" if loose & 0o044 else "writable"
    return (
        f"{path} is {access} by {who} (mode {stat.S_IMODE(st.st_mode):04o}): chmod 0600, "
        "or 0640 owned by root and the service's group"
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


class Pseudonymizer:
    def __init__(self, mode: CustomerIdMode, secret: bytes | None) -> None:
        if mode == "hmac-sha256" and not secret:
            raise ValueError("hmac-sha256 mode needs a non-empty secret")
        self.mode = mode
        self._secret = secret or b""

    @classmethod
    def from_file(cls, mode: CustomerIdMode, secret_file: Path) -> Pseudonymizer:
        """SecretError when hmac mode has no usable secret (``read_secret``)."""
        if mode != "hmac-sha256":
            return cls(mode, None)
        return cls(mode, read_secret(secret_file))

    def customer_id(self, raw_id: str) -> str | None:
        """The id to publish for a customer's card, or None when ids are omitted."""
        if self.mode == "raw":
            return raw_id
        if self.mode == "omit":
            return None
        return hmac.new(self._secret, raw_id.encode("ascii"), hashlib.sha256).hexdigest()
