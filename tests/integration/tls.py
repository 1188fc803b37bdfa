"""A throwaway PKI and a mosquitto that takes only TLS with a client certificate and a password,
for the tests that must reach a broker as an installation configures it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from demo.broker import BrokerProcess

USERNAME, PASSWORD = "gw", "s3cret"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    for name, ext in [
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ]:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext",
                "-out", f"{name}.crt", cwd=d)  # fmt: skip


class TlsMosquitto(BrokerProcess):
    """mosquitto that takes only TLS with a client certificate from the CA, plus a password."""

    def __init__(self, pki: Path) -> None:
        super().__init__("mosquitto")
        self.pki = pki

    def _command(self) -> list[str]:
        assert self.binary is not None
        passwords = self._dir / "passwords"
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(passwords), USERNAME, PASSWORD],
            check=True,
            capture_output=True,
        )
        conf = self._dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"cafile {self.pki / 'ca.crt'}\ncertfile {self.pki / 'server.crt'}\n"
            f"keyfile {self.pki / 'server.key'}\nrequire_certificate true\n"
            f"allow_anonymous false\npassword_file {passwords}\n"
            # Started as root (a container), mosquitto would switch to its own user, which
            # cannot read the private temporary directory; as anyone else this line is ignored.
            "user root\n"
        )
        return [self.binary, "-c", str(conf)]
