"""`rungs verify` and `rungs replay`: the stored history through the pure core again.

`verify` re-runs each case under the policy versions that decided it and compares with the
stored timeline (exit 1 naming each case that differs); `replay --policy DRAFT.yaml` re-runs
the same inputs under a draft and says what would have changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine as Database
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from rungs.cli.common import JsonFlag, _db_problem, _fail, _option, _policy_or_exit, app, out
from rungs.cli.store import DbOption
from rungs.sim.whatif import entry_line
from rungs.time.instant import format_utc, parse_instant

FromOption = Annotated[
    str | None,
    typer.Option("--from", help="Only cases opened at or after this ISO 8601 instant."),
]
ToOption = Annotated[
    str | None,
    typer.Option(
        "--to", help="Only cases opened up to this ISO 8601 instant; each re-run stops there."
    ),
]
SHOWN_CASES = 3  # changed cases shown entry by entry without --json


def _window(start: str | None, end: str | None) -> tuple[int | None, int | None]:
    a = None if start is None else _option(parse_instant, start, "--from")
    b = None if end is None else _option(parse_instant, end, "--to")
    if a is not None and b is not None and b < a:
        raise _fail("--to: it is before --from")
    return a, b


def _database(db: str) -> Database:
    """The existing database at `db`, migrated (cases from before the journal are marked
    not replayable then)."""
    from rungs.store.db import make_engine, upgrade

    try:
        url = make_url(db)
        if url.get_backend_name() == "sqlite":
            path = url.database
            if not path or path == ":memory:" or not Path(path).exists():
                raise _fail(f"--db: there is no database at {path or db}")
        engine = make_engine(db)
        upgrade(engine)
    except SQLAlchemyError as exc:
        raise _fail(_db_problem(exc, db)) from None
    return engine


@app.command()
def verify(
    db: DbOption = "sqlite:///rungs.db",
    start: FromOption = None,
    end: ToOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-run every case's journaled inputs under the policy versions that decided them and
    compare with the stored timeline, entry by entry. Exit 0 when every case is reproduced;
    else print the first divergence of each case and exit 1."""
    from rungs.store.views.replay import keep_verification
    from rungs.store.views.replay import verify as run_verify
    from rungs.time.clock import SystemClock

    a, b = _window(start, end)
    engine = _database(db)
    try:
        result = run_verify(engine, SystemClock().now(), a, b)
        with engine.begin() as conn:
            keep_verification(conn, result)
    except SQLAlchemyError as exc:
        raise _fail(_db_problem(exc, db)) from None
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
        raise typer.Exit(0 if result.ok else 1)
    for case, why in result.divergences:
        out.print(f"case {case}: {why}", highlight=False, markup=False, soft_wrap=True)
    if result.ok:
        out.print(f"{result.cases} cases reproduced", highlight=False)
    else:
        out.print(
            f"{len(result.divergences)} of {result.cases} cases diverge from the stored timeline",
            highlight=False,
        )
    if result.not_replayable:
        out.print(
            f"{result.not_replayable} cases not replayable (stored before the input journal)",
            highlight=False,
        )
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def replay(
    policy: Annotated[str, typer.Option("--policy", help="The draft policy (YAML).")],
    db: DbOption = "sqlite:///rungs.db",
    start: FromOption = None,
    end: ToOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-run the stored inputs under a draft policy and compare with what happened:
    escalations, pages and SLA breaches before and after, per customer, and which cases
    would have gone otherwise."""
    from rungs.store.views.replay import whatif

    draft = _policy_or_exit(policy)
    a, b = _window(start, end)
    engine = _database(db)
    try:
        result = whatif(engine, draft, a, b)
    except SQLAlchemyError as exc:
        raise _fail(_db_problem(exc, db)) from None
    finally:
        engine.dispose()
    answer = result.as_dict()
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    _print_whatif(answer, result)


def _print_whatif(answer: dict[str, Any], result: Any) -> None:
    from rungs.sim.whatif import side_by_side

    t = Table(title=f"{answer['cases']} cases replayed, {len(answer['changed_cases'])} changed")
    for col in ("", "escalations", "pages", "sla_breaches"):
        t.add_column(col, justify="left" if not col else "right")

    def cells(counts: dict[str, dict[str, int]]) -> list[str]:
        return [f"{c['before']} → {c['after']}" for c in counts.values()]

    t.add_row("all customers", *cells(answer["summary"]))
    for customer, counts in answer["by_customer"].items():
        t.add_row(customer, *cells(counts))
    out.print(t)
    if result.not_replayable:
        out.print(f"{result.not_replayable} cases not replayable (stored before the journal)")
    for changed in result.shown[:SHOWN_CASES]:
        d = Table(title=f"case {changed.case}: the entries that differ")
        d.add_column("before")
        d.add_column("after")
        for before, after in side_by_side(changed):
            d.add_row(_cell(before), _cell(after))
        out.print(d)
    more = len(answer["changed_cases"]) - SHOWN_CASES
    if more > 0:
        out.print(f"… and {more} more changed cases (--json lists them all)", highlight=False)


def _cell(e: dict[str, Any] | None) -> str:
    return "" if e is None else f"{format_utc(e['at'])} {entry_line(e)}"
