"""A self-signed certificate for 127.0.0.1, made with the `openssl` command (tests that need
one skip without it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["HAVE_OPENSSL", "self_signed"]

HAVE_OPENSSL = shutil.which("openssl") is not None


def self_signed(where: Path) -> tuple[Path, Path]:
    """(certificate, private key), PEM files in `where`, valid for a day."""
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
