"""A token-bucket rate: per second and burst, as the policy and `serve` flags write it."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Rate", "parse_rate"]


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    burst: float

    def __str__(self) -> str:
        return f"{self.per_second:g}/s (burst {self.burst:g})"


def parse_rate(text: str | None) -> Rate | None:
    """`PER_SECOND` or `PER_SECOND:BURST` (burst defaults to twice the rate, at least 1)."""
    if text is None or not str(text).strip():
        return None
    raw = str(text).strip()
    rate, _, burst = raw.partition(":")
    try:
        r = float(rate.removesuffix("/s"))
        b = float(burst) if burst else max(1.0, 2 * r)
    except ValueError:
        raise ValueError(f"a rate limit is PER_SECOND or PER_SECOND:BURST, not '{raw}'") from None
    if not (r > 0 and b >= 1 and math.isfinite(r) and math.isfinite(b)):
        raise ValueError(f"a rate limit needs a rate above 0 and a burst of at least 1: '{raw}'")
    return Rate(r, b)
