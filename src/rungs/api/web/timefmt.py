"""How the console writes instants and spans: `<time>` elements the browser puts in the
viewer's time zone (`static/console.js`), with the absolute instant (UTC) in `title`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markupsafe import Markup

from rungs.time.instant import format_utc, parse_instant

__all__ = ["FILTERS", "human_span", "when"]

_MIN = 60_000_000
_UNITS = (("d", 1440 * _MIN), ("h", 60 * _MIN), ("m", _MIN))


def human_span(us: int) -> str:
    """Calendar time, to the minute, at most two units: `2d 4h`, `1h 5m`, `0m`."""
    us = abs(us)
    parts = []
    for unit, size in _UNITS:
        n, us = divmod(us, size)
        if n or (parts and len(parts) < 2):
            parts.append(f"{n}{unit}")
        if len(parts) == 2:
            break
    return " ".join(p for p in parts if not p.startswith("0") or len(parts) == 1) or "0m"


def when(us: int | str | None) -> Markup:
    """An instant (µs, or the API's `YYYY-MM-DDTHH:MM:SSZ`) as a `<time>` element (UTC
    until the script converts it)."""
    if us is None:
        return Markup("—")
    iso = format_utc(us) if isinstance(us, int) else str(us)
    text = iso.replace("T", " ").removesuffix(":00Z")[:16] + " UTC"
    return Markup(f'<time data-local datetime="{iso}" title="{iso}">{text}</time>')


def due_in(at: int | str | None, now: int) -> Markup:
    """How long until `at` (µs or ISO): `in 1h 5m`, or `-15m breached` once past (the word,
    not only a colour); `—` when nothing runs."""
    if at is None:
        return Markup("—")
    if isinstance(at, str):
        at = parse_instant(at)
    iso = format_utc(at)
    if at > now:
        return Markup(f'<time datetime="{iso}" title="{iso}">in {human_span(at - now)}</time>')
    return Markup(
        f'<time class="breached" datetime="{iso}" title="{iso}">'
        f"-{human_span(now - at)} <strong>breached</strong></time>"
    )


def age(since: int, now: int) -> str:
    return human_span(max(0, now - since))


FILTERS: dict[str, Callable[..., Any]] = {
    "when": when,
    "due_in": due_in,
    "age": age,
    "span": human_span,
}
