"""`rungs import`: another tool's saved API responses to a Rungs policy, with a plan."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rungs.cli.common import _fail, _option, app, err, out
from rungs.time.instant import parse_instant


class Vendor(StrEnum):
    pagerduty = "pagerduty"
    opsgenie = "opsgenie"
    goalert = "goalert"
    grafana_oncall = "grafana-oncall"


@app.command("import")
def import_(
    vendor: Annotated[
        Vendor, typer.Argument(metavar="VENDOR", help="The tool the dump comes from.")
    ],
    input_file: Annotated[
        Path, typer.Option("--input", help="The dump: one JSON object of API list responses.")
    ],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Where to write the policy (not with --plan).")
    ] = None,
    plan: Annotated[
        bool,
        typer.Option("--plan", help="Print what would be created and what cannot; write nothing."),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="When the policy takes over (default: now); older layers are history."
        ),
    ] = None,
) -> None:
    """Translate a PagerDuty, Opsgenie, GoAlert or Grafana OnCall dump into a policy. Prints
    what is created, what cannot be translated (by name, with why), the integrations to
    re-point, and the shift check against the vendor's final schedule. --plan exits 1 when the
    shift check fails; a written import exits 0 unless nothing usable could be read."""
    from rungs.importers import DumpError, import_dump
    from rungs.time.clock import SystemClock

    if not plan and out_file is None:
        raise _fail("give --out FILE to write the policy, or --plan to see what it would hold")
    now = _option(parse_instant, since, "--since") if since else SystemClock().now()
    try:
        raw = input_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {input_file}: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail(f"{input_file}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    try:
        result = import_dump(vendor.value, data, now, source=input_file.name)
    except DumpError as exc:
        raise _fail(f"{input_file}: {exc.path}: {exc.message}") from None
    if not result.draft.usable():
        raise _fail(
            f"{input_file}: nothing usable for {vendor.value}: no users, schedules or "
            "escalation policies were found (is it the right vendor?)"
        )
    for line in result.draft.report(result.differences):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    errors = [p for p in result.problems if p.severity == "error"]
    if errors:  # the importer wrote a policy Rungs refuses: say so, write nothing
        for p in errors:
            err.print(str(p), highlight=False, markup=False, soft_wrap=True)
        raise _fail("the translated policy does not validate; nothing written")
    if plan:
        raise typer.Exit(1 if result.differences else 0)
    assert out_file is not None
    try:
        out_file.write_text(result.text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {out_file}: {exc}") from None
    out.print(
        f"wrote {out_file}; check it with: rungs validate {out_file}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
