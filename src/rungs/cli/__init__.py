"""The `rungs` command (Typer + Rich): one module per group of commands, registered on `app`
when imported here.

The commands import the server (FastAPI, uvicorn, the engine) inside their functions, on
purpose: `rungs validate` or `simulate` starts in a fraction of the time without them.
"""

from __future__ import annotations

import sys

from rungs.cli import importers, policy, replay, report, serve, store, user  # noqa: F401  (each registers its commands)
from rungs.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `rungs ... | head`
        sys.exit(0)
