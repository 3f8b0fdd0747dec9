"""Database commands: `db upgrade` and the API tokens (`token create|revoke|list`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Engine as Database
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from rungs.cli.common import JsonFlag, _db_problem, _fail, app, err, out

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

DbOption = Annotated[
    str,
    typer.Option(
        "--db", envvar="RUNGS_DATABASE_URL", help="SQLAlchemy URL (SQLite or PostgreSQL)."
    ),
]


@db_app.command("upgrade")
def db_upgrade(db: DbOption = "sqlite:///rungs.db") -> None:
    """Apply the database migrations."""
    _token_db(db).dispose()
    shown = make_url(db).render_as_string(hide_password=True)
    out.print(f"database at {shown} is up to date", highlight=False)


token_app = typer.Typer(
    help="API tokens: who may call the /v1 API, with which role.", no_args_is_help=True
)
app.add_typer(token_app, name="token")


def _token_db(db: str) -> Database:
    """The database at `db`, migrated: a new SQLite file is said so (a mistyped path would
    otherwise hold tokens no server reads); one that can't be reached is one line."""
    from rungs.store.db import make_engine, upgrade

    try:
        url = make_url(db)
        path = url.database if url.get_backend_name() == "sqlite" else None
        new = bool(path) and path != ":memory:" and not Path(str(path)).exists()
        engine = make_engine(db)
        upgrade(engine)
    except SQLAlchemyError as exc:
        raise _fail(_db_problem(exc, db)) from None
    if new:
        err.print(
            f"created a new database at {Path(str(path)).resolve()}",
            highlight=False,
            soft_wrap=True,
        )
    return engine


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option("--role", help="viewer, responder or admin.")],
    name: Annotated[str, typer.Option("--name", help="A unique name, to list and revoke it.")],
    db: DbOption = "sqlite:///rungs.db",
    person: Annotated[
        str | None,
        typer.Option("--person", help="The policy's person it acts as (actions default to them)."),
    ] = None,
) -> None:
    """Create a token; it is printed once, alone on the last line, and only its hash is kept."""
    from rungs.store.tokens import TokenError, check_person, create_token, stored_people
    from rungs.time.clock import SystemClock

    engine = _token_db(db)
    try:
        with engine.begin() as conn:
            if person is not None:
                people = stored_people(conn)
                if people is None:
                    err.print(f"no policy is stored yet: '{person}' is checked when it acts")
                else:
                    check_person(people, person)
            token = create_token(conn, name, role, SystemClock().now(), person)
    except TokenError as exc:
        raise _fail(exc.message) from None
    finally:
        engine.dispose()
    who = f", acting as {person}" if person else ""
    err.print(
        f"token '{name}' ({role}{who}) created; it is shown only now, keep it secret:",
        highlight=False,
    )
    print(token, flush=True)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    db: DbOption = "sqlite:///rungs.db",
) -> None:
    """Revoke a token (running servers refuse it within a second)."""
    from rungs.store.tokens import revoke_token
    from rungs.time.clock import SystemClock

    engine = _token_db(db)
    try:
        with engine.begin() as conn:
            done = revoke_token(conn, name, SystemClock().now())
    finally:
        engine.dispose()
    if not done:
        raise _fail(f"no active token named '{name}'")
    out.print(f"token '{name}' revoked", highlight=False)


@token_app.command("list")
def token_list(
    db: DbOption = "sqlite:///rungs.db",
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked tokens.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List tokens: name, role, when created (and revoked). Tokens themselves are not kept."""
    from rungs.store.tokens import list_tokens

    engine = _token_db(db)
    try:
        with engine.connect() as conn:
            rows = [t.as_dict() for t in list_tokens(conn, revoked=revoked)]
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} token(s)")
    for col in ("name", "role", "person", "created", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"], r["role"], r["person"] or "", r["created_at"], r["revoked_at"] or ""
        )
    out.print(table)
