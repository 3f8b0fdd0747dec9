"""`rungs user password PERSON`: a person's password for the web console."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rungs.cli.common import _fail, app, err
from rungs.cli.store import DbOption, _token_db

user_app = typer.Typer(help="People's sign-in to the web console.", no_args_is_help=True)
app.add_typer(user_app, name="user")

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; a bound keeps a pasted file out


def _read_password() -> str:
    """The first line of standard input when it is not a terminal, else a prompt asked twice."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("password")
def password(
    person: Annotated[str, typer.Argument(help="The policy's person: their id or e-mail.")],
    db: DbOption = "sqlite:///rungs.db",
) -> None:
    """Set PERSON's console password (read from the first line of standard input when it is
    not a terminal); only its argon2 hash is kept. A new password lifts a lockout."""
    from rungs.store.credentials import person_named, set_password
    from rungs.store.tokens import stored_people
    from rungs.time.clock import SystemClock

    engine = _token_db(db)
    try:
        with engine.connect() as conn:
            people = stored_people(conn)
        if people is None:
            raise _fail("no policy is stored yet: start `rungs serve --policy FILE` once first")
        who = person_named(people, person)
        if who is None:
            raise _fail(f"unknown person '{person}': not an id or e-mail of the policy's people")
        secret = _read_password()
        if not MIN_LENGTH <= len(secret) <= MAX_LENGTH:
            raise _fail(f"the password must be {MIN_LENGTH} to {MAX_LENGTH} characters long")
        with engine.begin() as conn:
            set_password(conn, who, secret, SystemClock().now())
    finally:
        engine.dispose()
    err.print(f"password of '{who}' set", highlight=False)
