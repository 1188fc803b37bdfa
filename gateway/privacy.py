"""What may leave the device about a customer (CONTRACT.md, privacy).

A raw card number is personal data: by default the published id is
``hmac-sha256(secret, raw_id)`` in lowercase hex, a stable pseudonym that the central CRM can
join on without ever learning the card number. The secret is read from a file so it never sits
in the TOML, and the daemon refuses to start in hmac mode without one.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Literal

from gateway.errors import ConfigError, Problem

CustomerIdMode = Literal["hmac-sha256", "raw", "omit"]


class Pseudonymizer:
    def __init__(self, mode: CustomerIdMode, secret: bytes | None) -> None:
        if mode == "hmac-sha256" and not secret:
            raise ValueError("hmac-sha256 mode needs a non-empty secret")
        self.mode = mode
        self._secret = secret or b""

    @classmethod
    def from_file(cls, mode: CustomerIdMode, secret_file: Path) -> Pseudonymizer:
        if mode != "hmac-sha256":
            return cls(mode, None)
        try:
            secret = secret_file.read_bytes().strip()
        except OSError as exc:
            problem = Problem(str(secret_file), 0, "privacy.secret_file", f"cannot read: {exc}")
            raise ConfigError([problem]) from exc
        if not secret:
            problem = Problem(str(secret_file), 0, "privacy.secret_file", "the secret is empty")
            raise ConfigError([problem])
        return cls(mode, secret)

    def customer_id(self, raw_id: str) -> str | None:
        """The id to publish for a customer's card, or None when ids are omitted."""
        if self.mode == "raw":
            return raw_id
        if self.mode == "omit":
            return None
        return hmac.new(self._secret, raw_id.encode("ascii"), hashlib.sha256).hexdigest()
