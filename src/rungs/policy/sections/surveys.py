"""`surveys`: satisfaction surveys sent to a case's requester after resolution.

`after` (since resolution; a reopen first cancels it), `scale` (5: ratings 1-5, 2: bad/good),
`expire` (how long a link stays good), `sample` (percent of eligible cases), `per_contact`
(at most one survey per requester in this window), `followup_at_or_below` (a rating this
low pages the account owner).
"""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.model import Surveys
from rungs.policy.reader import Reader

__all__ = ["compile_surveys"]

_DEFAULTS = Surveys()


def compile_surveys(r: Reader) -> Surveys | None:
    if "surveys" not in r.data:
        return None
    p: Path = ("surveys",)
    allowed = ("after", "scale", "expire", "sample", "per_contact", "followup_at_or_below")
    m = r.fields(r.data["surveys"] or {}, p, "surveys", allowed, ())
    if m is None:
        return None
    d = _DEFAULTS
    scale = _int(r, m, p, "scale", d.scale, (2, 5))
    if scale not in (2, 5):
        r.err((*p, "scale"), f"'scale' must be 5 (ratings 1-5) or 2 (bad/good), not {scale}")
        scale = 5
    sample = _int(r, m, p, "sample", d.sample, (0, 100))
    low = _int(r, m, p, "followup_at_or_below", min(d.followup_at_or_below, scale), (0, scale))
    return Surveys(
        after=r.duration(m, "after", p, default=d.after) or 0,
        scale=scale,
        expire=r.duration(m, "expire", p, default=d.expire) or d.expire,
        sample=sample,
        per_contact=r.duration(m, "per_contact", p, default=d.per_contact) or 0,
        followup_at_or_below=low,
    )


def _int(
    r: Reader, m: dict[str, Any], p: Path, key: str, default: int, bounds: tuple[int, int]
) -> int:
    v = m.get(key, default)
    lo, hi = bounds
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        r.err((*p, key), f"'{key}' must be a whole number from {lo} to {hi}, not {v!r}")
        return default
    return v
