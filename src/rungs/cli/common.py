"""The `rungs` command itself: the Typer app, its consoles and the helpers every command uses."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from rungs import __version__
from rungs.policy import Policy, validate_file
from rungs.policy.secrets import secret_prefix

# plain help: Rich's panels print a `<bool>` type beside every flag
app = typer.Typer(
    help="Rungs: escalation management. Escalation as code.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _print_version(value: bool) -> None:
    if value:
        print(f"rungs {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Rungs: escalation management. Escalation as code."""


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


T = TypeVar("T")


def _option(parse: Callable[[Any], T], value: str | None, name: str) -> T:
    """Parse an option's value, or exit with a message naming the option."""
    try:
        return parse(value)
    except ValueError as exc:
        raise _fail(f"{name}: {exc}") from None


def _policy_or_exit(path: str) -> Policy:
    policy, problems = validate_file(path, secret_prefix=secret_prefix(os.environ))
    if policy is None:
        for p in problems:
            err.print(str(p), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1)
    return policy


def _db_problem(exc: SQLAlchemyError, db: str | None = None) -> str:
    """A database error in one line: the driver's first line (no traceback), and the URL
    without its password when known."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if db is None:
        return f"cannot use the database: {first}"
    try:
        shown = make_url(db).render_as_string(hide_password=True)
    except ArgumentError:
        shown = "(a URL that does not parse)"
    return f"cannot use the database at {shown}: {first}"
