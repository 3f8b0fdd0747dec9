"""The `rungs` command (Typer + Rich): one module per group of commands, registered on `app`
when imported here."""

from __future__ import annotations

import sys

from rungs.cli import policy, serve, store  # noqa: F401  (each registers its commands)
from rungs.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `rungs ... | head`
        sys.exit(0)
