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
from sqlalchemy import Engine as Database
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from rungs import __version__
from rungs.policy import Policy, Problem, validate_file
from rungs.policy.advice import advice
from rungs.policy.diff import diff_texts, render_diff
from rungs.policy.secrets import secret_prefix
from rungs.time.instant import format_local, format_utc, parse_duration, parse_instant

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


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Policy files to check.")],
    as_json: JsonFlag = False,
) -> None:
    """Check policy files; print every error as FILE:LINE:COL: message (warnings too)."""
    problems: list[Problem] = []
    for f in files:
        policy, found = validate_file(f, secret_prefix=secret_prefix(os.environ))
        problems.extend(found)
        if policy is not None:  # a valid policy that would page nobody: warnings, exit 0
            problems.extend(advice(f.read_text(encoding="utf-8"), str(f), policy))
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
    from rungs.sim.output import timeline_json, timeline_table

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
    zone = policy.timezone or next((c.timezone for c in policy.calendars.values()), "UTC")
    title = f"{story.file}: {len(entries)} timeline entries"
    out.print(timeline_table(title, sim.timeline, entries, zone, out.width))


@app.command()
def oncall(
    policy_file: Annotated[str, typer.Argument(metavar="POLICY")],
    schedule: Annotated[str | None, typer.Argument(metavar="SCHEDULE")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Who is on call at this instant (default: now).")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="Shifts from this instant.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Shifts up to this instant.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Who is on call now (or --at), and who is paged instead when nobody is; or every shift
    between --from and --to."""
    from rungs.sim.oncall import at_report, render_oncall, shifts_report
    from rungs.time.clock import SystemClock

    policy = _policy_or_exit(policy_file)
    if schedule is not None and schedule not in policy.schedules:
        raise _fail(
            f"unknown schedule '{schedule}' (known: {', '.join(policy.schedules) or 'none'})"
        )
    chosen = [schedule] if schedule else list(policy.schedules)
    if (start is None) != (end is None):
        raise _fail("--from and --to go together")
    if at is not None and start is not None:
        raise _fail("give --at INSTANT, or --from A --to B, not both")
    try:
        if start is not None and end is not None:
            a, b = parse_instant(start), parse_instant(end)
            if b <= a:
                raise _fail("--to must be later than --from")
            result: dict[str, Any] = shifts_report(policy, chosen, a, b)
        else:
            t = parse_instant(at) if at is not None else SystemClock().now()
            result = at_report(policy, chosen, t)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        print(json.dumps(result[schedule] if schedule else result, indent=2))
    elif not result:
        out.print(f"{policy_file} has no schedules", highlight=False)
    else:
        render_oncall(policy, result, out)


policy_app = typer.Typer(help="Policy files: compare versions.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("diff")
def policy_diff(
    old: Annotated[Path, typer.Argument(metavar="OLD", help="The policy as it is.")],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The policy as it would be.")],
    as_json: JsonFlag = False,
) -> None:
    """What NEW changes from OLD: customers, matrices, integrations, schedules and people
    added (+), removed (-) and changed (~), and other sections that differ. Both must be
    valid; nothing is stored anywhere."""
    _policy_or_exit(str(old))
    _policy_or_exit(str(new))
    diff = diff_texts(old.read_text(encoding="utf-8"), new.read_text(encoding="utf-8"))
    if as_json:
        print(json.dumps(diff.as_dict(), indent=2))
        return
    for line in render_diff(diff):
        out.print(line, highlight=False, markup=False, soft_wrap=True)


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
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit when the --policy file has errors, instead of serving the last stored "
            "version (for CI pipelines).",
        ),
    ] = False,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar="RUNGS_LOG_LEVEL",
            help="debug, info (a line per request), warning or error.",
        ),
    ] = "info",
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", envvar="RUNGS_TLS_CERT", help="Serve HTTPS: certificate (PEM)."),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            "--tls-key", envvar="RUNGS_TLS_KEY", help="Serve HTTPS: its private key (PEM)."
        ),
    ] = None,
) -> None:
    """Run the API, the engine and the dispatcher on one database."""
    import os

    import uvicorn

    from rungs.api.access import LEVELS, configure_logging
    from rungs.bootstrap import build, settle_heap

    if role not in ("api", "engine", "dispatcher", "all"):
        raise _fail(f"--role must be api, engine, dispatcher or all, not '{role}'")
    if log_level.lower() not in LEVELS:
        raise _fail(f"--log-level must be one of {', '.join(LEVELS)}, not '{log_level}'")
    start = None
    if virtual_clock is not None:
        start = _option(parse_instant, virtual_clock, "--virtual-clock")
    from rungs.api.limits import parse_rate

    token_rate = _option(parse_rate, token_rate_limit, "--token-rate-limit")
    if max_body < 1024:
        raise _fail("--max-body must be at least 1024 bytes")
    if workers < 1:
        raise _fail("--workers must be at least 1")
    tls = _tls_or_exit(tls_cert, tls_key)
    _port_free_or_exit(host, port)
    configure_logging(log_level.lower())
    scheme = "https" if tls else "http"
    if workers > 1:
        if start is not None:
            raise _fail("--virtual-clock needs --workers 1: each worker would have its own clock")
        os.environ["RUNGS_LOG_LEVEL"] = log_level.lower()  # read in each worker process
        _serve_workers(
            workers,
            host,
            port,
            db_url=db,
            policy_file=policy,
            role=role,
            token_rate=token_rate,
            max_body=max_body,
            strict=strict,
            tls=tls,
        )
        return
    with _start_errors(db):
        engine, api = build(
            db_url=db,
            policy_file=policy,
            virtual_start=start,
            role=role,
            token_rate=token_rate,
            max_body=max_body,
            strict=strict,
        )
    print(f"Rungs is serving at {scheme}://{host}:{port} (API docs at /docs)", flush=True)
    settle_heap()
    try:
        uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False, **tls)
    finally:
        engine.stop()


@contextlib.contextmanager
def _start_errors(db: str | None = None) -> Iterator[None]:
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
    except SQLAlchemyError as exc:
        raise _fail(_db_problem(exc, db)) from None


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


def _port_free_or_exit(host: str, port: int) -> None:
    """Refuse at once, naming the settings, when `host:port` cannot be listened on (uvicorn
    would log a bind error and exit after the engine had started)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _fail(f"--host {host}: {exc}; change it with --host or RUNGS_HOST") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise _fail(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another port "
                "with --port or RUNGS_PORT (or another address with --host or RUNGS_HOST)"
            ) from None


def _tls_or_exit(cert: Path | None, key: Path | None) -> dict[str, str]:
    """uvicorn's TLS settings: both files or neither, each readable, and a pair that loads
    (checked here, so a mistake is one line rather than a failing worker)."""
    import ssl

    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        raise _fail("--tls-cert and --tls-key go together")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise _fail(f"--tls-cert {cert} / --tls-key {key}: {exc}") from None
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def _serve_workers(
    workers: int, host: str, port: int, tls: dict[str, str], **settings: Any
) -> None:
    """`rungs serve --workers N`: migrate and store the policy here, then N processes."""
    import os

    import uvicorn

    from rungs.bootstrap import WORKER_ENV, prepare, worker_settings

    strict = settings.pop("strict")
    with _start_errors(settings["db_url"]):
        prepare(db_url=settings["db_url"], policy_file=settings["policy_file"], strict=strict)
    # the workers serve the current version, stored above; with a policy file they are
    # file-managed too (PUT refused), and find its text stored already (or, when it has
    # errors, serve the last stored version and say so on /healthz, as this process would)
    os.environ[WORKER_ENV] = worker_settings(**settings)
    scheme = "https" if tls else "http"
    print(f"Rungs is serving at {scheme}://{host}:{port} (API docs at /docs)", flush=True)
    uvicorn.run(
        "rungs.bootstrap:worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        **tls,  # type: ignore[arg-type]
    )


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `rungs ... | head`
        sys.exit(0)
