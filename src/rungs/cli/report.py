"""`rungs report`: the reports over a database's case facts, or over simulated stories.

    rungs report --db URL --from DATE --to DATE [--by DIM] [--section S] [--json|--csv]
    rungs report --db URL --section value-at-risk [--horizon 4h] [--json|--csv]
    rungs report --simulate POLICY STORY [STORY ...] --json

`value-at-risk` (as `GET /v1/reports/value-at-risk`) is about the cases open now, not a window:
those past an SLA target or due within `--horizon`, per customer, most valuable first.

`--simulate` runs the stories (merged, `rungs.sim.merge`) through the core, derives each
case's facts from its simulated timeline (`rungs.core.facts`) and answers with the same
report functions over an in-memory database: what a policy would do to the numbers.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from rungs.cli.common import _db_problem, _fail, _policy_or_exit, app, err, out

__all__ = ["report", "simulated_report"]


@app.command("report")
def report(
    stories: Annotated[
        list[str] | None,
        typer.Argument(metavar="[POLICY STORY...]", help="With --simulate: a policy, stories."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="RUNGS_DATABASE_URL", help="SQLAlchemy URL of the database."),
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="Date or instant.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Date or instant (exclusive).")] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="customer, team, priority, category or tier.")
    ] = None,
    section: Annotated[
        str,
        typer.Option(
            "--section",
            help="summary, sla, escalations, ping-pong, aging, load, reasons or value-at-risk.",
        ),
    ] = "summary",
    horizon: Annotated[
        str, typer.Option("--horizon", help="value-at-risk: due within this (4h, 1d).")
    ] = "4h",
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Report over simulated stories instead.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="The section's table as CSV.")] = False,
) -> None:
    """Escalation quality, SLA achievement, aging and load over the cases opened in a window."""
    from rungs.store.views.reports import SECTIONS, WindowError, window_of

    if section == AT_RISK:
        if simulate or stories or start or end or by:
            raise _fail("--section value-at-risk reads the open cases of --db now: no --simulate, "
                        "--from, --to or --by")  # fmt: skip
        if db is None:
            raise _fail("--section value-at-risk needs --db")
        _print_at_risk(_at_risk(db, _horizon(horizon)), as_json=as_json, as_csv=as_csv)
        return
    if section not in SECTIONS:
        raise _fail(
            f"--section: unknown section '{section}' (use {', '.join([*SECTIONS, AT_RISK])})"
        )
    if simulate:
        if not stories or len(stories) < 2:
            raise _fail("--simulate needs a POLICY and at least one STORY")
        if by is not None and by not in ("customer", "team", "priority", "category", "tier"):
            raise _fail(f"--by: unknown grouping '{by}'")
        result = simulated_report(stories[0], stories[1:], section, by)
    else:
        if stories:
            raise _fail("POLICY and STORY go with --simulate; a database report takes --db")
        if db is None or start is None or end is None:
            raise _fail("a report needs --db, --from and --to (or --simulate POLICY STORY...)")
        try:
            w = window_of(start, end, by)
        except WindowError as exc:
            raise _fail(f"--{exc.field}: {exc.message.removeprefix(exc.field + ': ')}") from None
        result = _db_report(db, section, w)
    _print(section, result, as_json=as_json, as_csv=as_csv)


AT_RISK = "value-at-risk"
MAX_HORIZON_S = 366 * 86_400  # as the API's


def _horizon(text: str) -> int:
    from rungs.time.instant import DurationError, parse_duration

    try:
        span = parse_duration(text)
    except DurationError as exc:
        raise _fail(f"--horizon: {exc}") from None
    if span > MAX_HORIZON_S * 1_000_000:
        raise _fail("--horizon: at most a year")
    return span


def _at_risk(db: str, horizon: int) -> dict[str, Any]:
    from rungs.store.views.report_open import value_at_risk
    from rungs.time.clock import SystemClock

    try:
        engine, policy = _stored(db)
        if policy is None:
            raise _fail("value-at-risk needs a stored policy (its customers' values and SLAs)")
        with engine.connect() as conn:
            return value_at_risk(conn, policy, SystemClock().now(), horizon)
    except SQLAlchemyError as exc:
        raise _fail(_db_problem(exc, db)) from None


def _stored(db: str) -> tuple[Any, Any]:
    """The database, migrated, and its current stored policy (None when it has none)."""
    from rungs.policy import load_policy_text
    from rungs.store.db import make_engine, upgrade

    engine = make_engine(db)
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT yaml FROM policies ORDER BY version DESC LIMIT 1"
        ).first()
    if row is None:
        return engine, None
    policy, _ = load_policy_text(row[0], "stored policy", secret_prefix=None)
    return engine, policy


def _print_at_risk(result: dict[str, Any], *, as_json: bool, as_csv: bool) -> None:
    header = ["customer", "tier", "value", "past breach", "near breach", "cases"]
    rows = [
        [c["customer"], c["tier"] or "", c["value"] if c["value"] is not None else "",
         c["past_breach"], c["near_breach"], " ".join(x["case"] for x in c["cases"])]
        for c in result["customers"]
    ]  # fmt: skip
    if as_json:
        print(json.dumps(result, indent=2))
        return
    if as_csv:
        import csv
        import io

        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header, *rows])
        print(buf.getvalue(), end="")
        return
    hours = result["horizon_s"] / 3600
    title = f"value at risk at {result['now']} (due within {hours:g} h)"
    total = {"value at risk": result["value_at_risk"]}
    _table(title, header, rows, {**total, **result["definitions"]})


def _db_report(db: str, section: str, w: Any) -> dict[str, Any]:
    from rungs.store.views.reports import report as run_report
    from rungs.time.clock import SystemClock

    try:
        engine, policy = _stored(db)
        if policy is None and section == "load":
            raise _fail("the load report needs a stored policy (its schedules)")
        with engine.connect() as conn:
            return run_report(conn, section, w, policy, SystemClock().now())
    except SQLAlchemyError as exc:
        raise _fail(_db_problem(exc, db)) from None


def simulated_report(
    policy_file: str, story_files: list[str], section: str = "summary", by: str | None = None
) -> dict[str, Any]:
    """The report over the stories' simulated timelines; the window is the whole story."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from rungs.core.facts import derive, terms_for
    from rungs.sim import SimulationError, StoryError, load_story, run_story
    from rungs.sim.merge import merge_stories
    from rungs.store.facts import row_of, write_rows
    from rungs.store.tables import case_facts
    from rungs.store.views.reports import Window
    from rungs.store.views.reports import report as run_report

    policy = _policy_or_exit(policy_file)
    try:
        story = merge_stories([load_story(s) for s in story_files])
    except StoryError as exc:
        for p in exc.problems:
            err.print(str(p), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    try:
        sim = run_story(policy, story)
    except SimulationError as exc:
        raise _fail(str(exc)) from None
    per_case: dict[str, list[dict[str, Any]]] = {}
    for e in sim.timeline:
        per_case.setdefault(e["case"], []).append(e)
    rows = []
    for entries in per_case.values():
        terms = terms_for(policy, str(entries[0].get("customer") or ""))
        f = derive(entries, terms)
        if f is not None:
            rows.append(row_of(f, terms))
    start = story.events[0].at if story.events else 0
    end = (max(sim.now, story.until or 0, start) // 1_000_000 + 1) * 1_000_000  # next second
    engine = create_engine("sqlite://", poolclass=StaticPool)
    case_facts.create(engine)
    with engine.begin() as conn:
        write_rows(conn, rows)
    with engine.connect() as conn:
        return run_report(conn, section, Window(start, end, by), policy, sim.now)


def _print(section: str, result: dict[str, Any], *, as_json: bool, as_csv: bool) -> None:
    from rungs.store.views.report_tables import table, to_csv

    if as_json:
        print(json.dumps(result, indent=2))
        return
    if as_csv:
        print(to_csv(section, result), end="")
        return
    header, rows = table(section, result)
    title = f"{section}: cases opened {result['from']} to {result['to']}"
    _table(title, header, rows, result["definitions"])


def _table(title: str, header: list[str], rows: list[list[Any]], notes: dict[str, Any]) -> None:
    """A Rich table, then each note (a definition, a total) on its own line."""
    t = Table(title=title)
    for h in header:
        t.add_column(h)
    for r in rows:
        t.add_row(*(str(c) for c in r))
    out.print(t)
    for key, text in notes.items():
        out.print(f"[bold]{key}[/bold]: {text}", highlight=False, soft_wrap=True)
