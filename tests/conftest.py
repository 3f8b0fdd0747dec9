"""Shared fixtures: the shared scenarios folder and real databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def shared_scenarios() -> Path | None:
    """The shared contract: `RUNGS_SHARED` (a `shared/` folder), else beside this checkout."""
    env = os.environ.get("RUNGS_SHARED")
    roots = [Path(env)] if env else []
    roots += [ROOT.parent / "shared", ROOT / "shared"]
    for root in roots:
        if (root / "scenarios").is_dir():
            return root / "scenarios"
    return None


def require_shared() -> Path:
    """The shared scenarios, or skip: a user's clone has no `../shared`; under CI=true it must."""
    found = shared_scenarios()
    if found is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("../shared/scenarios is missing (required under CI=true)")
        pytest.skip("../shared/scenarios is not beside this checkout (it is under CI)")
    return found


def _pg_admin_url() -> str:
    return os.environ.get("RUNGS_TEST_DATABASE_URL", PG_DEFAULT)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process; under CI=true it must exist."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = make_url(_pg_admin_url())
    try:
        eng = create_engine(admin, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"PostgreSQL is required under CI=true: {exc}") from exc
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"rungs_{uuid.uuid4().hex[:10]}"
    with eng.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with eng.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        eng.dispose()


def reset_database(url: str) -> None:
    """Drop every Rungs table so the next service starts on an empty, migrated database."""
    from sqlalchemy import text

    from rungs.store.db import make_engine

    eng = make_engine(url)
    with eng.begin() as conn:
        if eng.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        else:
            names = conn.execute(
                text(
                    "SELECT name FROM sqlite_master"
                    " WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            ).scalars()
            for t in list(names):
                conn.execute(text(f"DROP TABLE IF EXISTS {t}"))
    eng.dispose()


def api_token(
    engine_or_url: Any, role: str = "admin", name: str | None = None, person: str | None = None
) -> str:
    """A new API token with `role` (acting as `person`), written straight to the (migrated)
    database."""
    from rungs.store.db import make_engine, upgrade
    from rungs.store.tokens import create_token

    own = isinstance(engine_or_url, str)
    engine = make_engine(engine_or_url) if own else engine_or_url
    try:
        if own:
            upgrade(engine)
        with engine.begin() as conn:
            name = name or f"test-{role}-{uuid.uuid4().hex[:8]}"
            return create_token(conn, name, role, 0, person)
    finally:
        if own:
            engine.dispose()


def auth_headers(service: Any, role: str = "admin") -> dict[str, str]:
    """`Authorization: Bearer` headers of a new token for a built Service (see bootstrap.build)."""
    return {"Authorization": f"Bearer {api_token(service.db, role)}"}


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rungs.db'}"
    url = request.getfixturevalue("pg_url")
    reset_database(url)
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Any]:
    """A migrated, empty database on each of SQLite and PostgreSQL (its SQLAlchemy engine);
    a module with a `db` of its own shadows this one."""
    from rungs.store.db import make_engine, upgrade

    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()
