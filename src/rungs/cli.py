"""The `rungs` command."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from rungs.policy import Policy, Problem, validate_file
from rungs.policy.secrets import secret_prefix
from rungs.time.instant import format_local, format_utc, parse_duration, parse_instant

app = typer.Typer(help="Rungs: escalation management. Escalation as code.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


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


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Policy files to check.")],
    as_json: JsonFlag = False,
) -> None:
    """Check policy files; print every error as FILE:LINE:COL: message."""
    problems: list[Problem] = []
    for f in files:
        problems.extend(validate_file(f, secret_prefix=secret_prefix(os.environ))[1])
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        print(json.dumps([p.as_dict() for p in problems], indent=2))
    else:
        for p in problems:
            (err if p.severity == "error" else out).print(
                str(p), highlight=False, markup=False, soft_wrap=True
            )
        if not errors:
            out.print(f"{len(files)} policy file(s) valid", highlight=False)
    raise typer.Exit(1 if errors else 0)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter policy.")] = Path(
        "rungs.yaml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter policy that validates."""
    if path.exists() and not force:
        raise _fail(f"{path} exists; use --force to overwrite it")
    from importlib.resources import files as pkg_files

    path.write_text(pkg_files("rungs").joinpath("examples/starter.yaml").read_text("utf-8"))
    out.print(f"wrote {path}; check it with: rungs validate {path}", highlight=False)


@app.command()
def due(
    policy_file: Annotated[str, typer.Argument(metavar="POLICY")],
    calendar: Annotated[str, typer.Option("--calendar", help="Calendar id.")],
    start: Annotated[str, typer.Option("--from", help="ISO 8601 instant with offset.")],
    after: Annotated[str, typer.Option("--after", help="Duration, e.g. 4h or 1h30m.")],
    as_json: JsonFlag = False,
) -> None:
    """When does a duration run out on a calendar?"""
    policy = _policy_or_exit(policy_file)
    cal = policy.calendars.get(calendar)
    if cal is None:
        known = ", ".join(policy.calendars) or "none"
        raise _fail(f"unknown calendar '{calendar}' (known: {known})")
    t0 = _option(parse_instant, start, "--from")
    d = _option(parse_duration, after, "--after")
    t = cal.add_us(t0, d)
    result = {"due": format_utc(t), "local": format_local(t, cal.tz)}
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"due {result['due']} ({result['local']} {cal.timezone})", highlight=False)


@app.command()
def simulate(
    policy_file: Annotated[str, typer.Argument(metavar="POLICY")],
    story_file: Annotated[str, typer.Argument(metavar="STORY", help="Story file, or - for stdin.")],
    as_json: JsonFlag = False,
    explain: Annotated[
        str | None,
        typer.Option("--explain", metavar="CASE", help="Why each SLA stands where it does."),
    ] = None,
) -> None:
    """Run a story through the escalation core on a virtual clock."""
    from rungs.sim import SimulationError, StoryError, load_story, run_story
    from rungs.sim.output import timeline_json

    policy = _policy_or_exit(policy_file)
    try:
        story = load_story(story_file)
    except StoryError as exc:
        for p in exc.problems:
            err.print(str(p), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    try:
        sim = run_story(policy, story)
    except SimulationError as exc:
        raise _fail(str(exc)) from None
    if explain is not None:
        from rungs.sim.explain import explain_case, render_explain

        if explain not in sim.cases:
            raise _fail(f"no case '{explain}' in the story (cases: {', '.join(sim.cases)})")
        report = explain_case(sim, explain)
        if as_json:
            print(json.dumps(report, indent=2))
        else:
            render_explain(report, out)
        return
    entries = timeline_json(sim.timeline)
    if as_json:
        print(json.dumps(entries, indent=2))
        return
    tz = policy.calendars.get(next(iter(policy.calendars), ""), None)
    zone = tz.tz if tz else None
    table = Table(title=f"{story.file}: {len(entries)} timeline entries")
    for col in ("local", "UTC", "case", "kind", "details"):
        table.add_column(col)
    from zoneinfo import ZoneInfo

    local_tz = ZoneInfo(policy.timezone) if policy.timezone else zone
    for raw, e in zip(sim.timeline, entries, strict=True):
        details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("at", "case", "kind"))
        table.add_row(format_local(raw["at"], local_tz), e["at"], e["case"], e["kind"], details)
    out.print(table)


@app.command()
def oncall(
    policy_file: Annotated[str, typer.Argument(metavar="POLICY")],
    schedule: Annotated[str | None, typer.Argument(metavar="SCHEDULE")] = None,
    at: Annotated[str | None, typer.Option("--at", help="Who is on call at this instant.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Shifts from this instant.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Shifts up to this instant.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Who is on call: now-ish at --at, or every shift between --from and --to."""
    from rungs.schedules.oncall import on_call, shifts

    policy = _policy_or_exit(policy_file)
    if schedule is not None and schedule not in policy.schedules:
        raise _fail(
            f"unknown schedule '{schedule}' (known: {', '.join(policy.schedules) or 'none'})"
        )
    chosen = [schedule] if schedule else list(policy.schedules)
    if (start is None) != (end is None):
        raise _fail("--from and --to go together")
    if at is None and start is None:
        raise _fail("give --at INSTANT, or --from A --to B")
    try:
        if start is not None and end is not None:
            a, b = parse_instant(start), parse_instant(end)
            if b <= a:
                raise _fail("--to must be later than --from")
            result = {
                sid: [
                    {
                        "start": format_utc(s.start),
                        "end": format_utc(s.end),
                        "person": s.person,
                        "source": s.source,
                    }
                    for s in shifts(policy.schedules[sid], a, b)
                ]
                for sid in chosen
            }
        else:
            t = parse_instant(at or "")
            result = {}
            for sid in chosen:
                found = on_call(policy.schedules[sid], t)
                result[sid] = {
                    "schedule": sid,
                    "at": format_utc(t),
                    "on_call": list(found.people),
                    "source": found.source,
                }
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        print(json.dumps(result[schedule] if schedule else result, indent=2))
        return
    for sid, value in result.items():
        table = Table(title=f"schedule {sid}")
        if isinstance(value, list):
            for col in ("start", "end", "person", "source"):
                table.add_column(col)
            for s in value:
                table.add_row(s["start"], s["end"], s["person"], str(s["source"]))
        else:
            for col in ("at", "on call", "source"):
                table.add_column(col)
            table.add_row(
                value["at"], ", ".join(value["on_call"]) or "nobody", str(value["source"])
            )
        out.print(table)


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
    from rungs.store.db import make_engine, upgrade

    upgrade(make_engine(db))
    out.print(f"database at {db} is up to date", highlight=False)


token_app = typer.Typer(
    help="API tokens: who may call the /v1 API, with which role.", no_args_is_help=True
)
app.add_typer(token_app, name="token")


def _token_db(db: str):  # type: ignore[no-untyped-def]
    from rungs.store.db import make_engine, upgrade

    engine = make_engine(db)
    upgrade(engine)
    return engine


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option("--role", help="viewer, responder or admin.")],
    name: Annotated[str, typer.Option("--name", help="A unique name, to list and revoke it.")],
    db: DbOption = "sqlite:///rungs.db",
) -> None:
    """Create a token; it is printed once, alone on the last line, and only its hash is kept."""
    from rungs.store.tokens import TokenError, create_token
    from rungs.time.clock import SystemClock

    engine = _token_db(db)
    try:
        with engine.begin() as conn:
            token = create_token(conn, name, role, SystemClock().now())
    except TokenError as exc:
        raise _fail(exc.message) from None
    finally:
        engine.dispose()
    err.print(
        f"token '{name}' ({role}) created; it is shown only now, keep it secret:", highlight=False
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
    for col in ("name", "role", "created", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["role"], r["created_at"], r["revoked_at"] or "")
    out.print(table)


@app.command()
def serve(
    policy: Annotated[
        Path | None, typer.Option("--policy", envvar="RUNGS_POLICY", help="Policy file to load.")
    ] = None,
    db: DbOption = "sqlite:///rungs.db",
    host: Annotated[str, typer.Option("--host", envvar="RUNGS_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="RUNGS_PORT")] = 8080,
    role: Annotated[
        str, typer.Option("--role", envvar="RUNGS_ROLE", help="api, engine, dispatcher or all.")
    ] = "all",
    virtual_clock: Annotated[
        str | None,
        typer.Option("--virtual-clock", metavar="START", help="Tests: time stands still at START."),
    ] = None,
    token_rate_limit: Annotated[
        str | None,
        typer.Option(
            "--token-rate-limit",
            envvar="RUNGS_TOKEN_RATE_LIMIT",
            metavar="PER_SECOND[:BURST]",
            help="Requests per second per API token (default: no limit).",
        ),
    ] = None,
    max_body: Annotated[
        int,
        typer.Option("--max-body", envvar="RUNGS_MAX_BODY", help="Largest request body, in bytes."),
    ] = 1024 * 1024,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            envvar="RUNGS_WORKERS",
            help="Processes serving the port, each with the same role (one interpreter per core).",
        ),
    ] = 1,
) -> None:
    """Run the API, the engine and the dispatcher on one database."""
    import uvicorn

    from rungs.bootstrap import build, settle_heap

    if role not in ("api", "engine", "dispatcher", "all"):
        raise _fail(f"--role must be api, engine, dispatcher or all, not '{role}'")
    start = None
    if virtual_clock is not None:
        start = _option(parse_instant, virtual_clock, "--virtual-clock")
    from rungs.api.limits import parse_rate

    token_rate = _option(parse_rate, token_rate_limit, "--token-rate-limit")
    if max_body < 1024:
        raise _fail("--max-body must be at least 1024 bytes")
    if workers < 1:
        raise _fail("--workers must be at least 1")
    if workers > 1:
        if start is not None:
            raise _fail("--virtual-clock needs --workers 1: each worker would have its own clock")
        _serve_workers(
            workers,
            host,
            port,
            db_url=db,
            policy_file=policy,
            role=role,
            token_rate=token_rate,
            max_body=max_body,
        )
        return
    with _start_errors():
        engine, api = build(
            db_url=db,
            policy_file=policy,
            virtual_start=start,
            role=role,
            token_rate=token_rate,
            max_body=max_body,
        )
    print(f"Rungs is serving at http://{host}:{port} (API docs at /docs)", flush=True)
    settle_heap()
    try:
        uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)
    finally:
        engine.stop()


@contextlib.contextmanager
def _start_errors() -> Iterator[None]:
    """Errors while starting the service: each policy problem on a line, others as one."""
    from rungs.policy import PolicyError

    try:
        yield
    except PolicyError as exc:
        for p in exc.problems:
            err.print(str(p), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except (PermissionError, RuntimeError, OSError) as exc:
        raise _fail(str(exc)) from None


def _serve_workers(workers: int, host: str, port: int, **settings: Any) -> None:
    """`rungs serve --workers N`: migrate and store the policy here, then N processes."""
    import os

    import uvicorn

    from rungs.bootstrap import WORKER_ENV, prepare, worker_settings

    with _start_errors():
        prepare(db_url=settings["db_url"], policy_file=settings["policy_file"])
    # the workers serve the current version: stored above, or PUT later through the API (a
    # worker restarted after that must not store the file again over it)
    os.environ[WORKER_ENV] = worker_settings(**{**settings, "policy_file": None})
    print(f"Rungs is serving at http://{host}:{port} (API docs at /docs)", flush=True)
    uvicorn.run(
        "rungs.bootstrap:worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `rungs ... | head`
        sys.exit(0)
