"""Policy commands: validate, init, due, simulate, oncall and `policy diff`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from rungs.cli.common import JsonFlag, _fail, _option, _policy_or_exit, app, err, out
from rungs.policy import Problem, validate_file
from rungs.policy.advice import advice
from rungs.policy.diff import diff_texts, render_diff
from rungs.policy.secrets import secret_prefix
from rungs.time.instant import format_local, format_utc, parse_duration, parse_instant


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
