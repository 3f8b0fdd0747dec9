"""Delivery hygiene: bundling, rate limits and retry backoff (pure: handed `now`).

Within `channels.bundle` of a message to one person on one channel, further ones wait for the
window's end and go as one message; `channels.rate_limits` per person and per channel hold
messages until a slot frees (then also as one message). P1 goes past both. Rule webhooks and
notices are neither bundled nor limited.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Hashable, Mapping

from rungs.policy.channels import Channels, RateLimit, Retry
from rungs.store.outbox import Row

__all__ = ["Limiter", "Plan", "backoff", "hygienic", "pages_by_target", "plan"]

Limits = list[tuple[Hashable, RateLimit]]
Plan = tuple[list[list[Row]], dict[int, list[Row]]]  # messages to send now; rows held until


class Limiter:
    """Sliding windows of send instants (one dispatcher's, used by one thread at a time)."""

    def __init__(self) -> None:
        self._sent: dict[Hashable, deque[int]] = {}

    def next_slot(self, limits: Limits, now: int) -> int:
        at = now
        for key, lim in limits:
            dq = self._sent.get(key)
            if not dq:
                continue
            while dq and dq[0] <= now - lim.per:
                dq.popleft()
            if len(dq) >= lim.count:
                at = max(at, dq[-lim.count] + lim.per)
        return at

    def record(self, limits: Limits, now: int) -> None:
        for key, lim in limits:
            dq = self._sent.setdefault(key, deque())
            dq.append(now)
            while len(dq) > lim.count:
                dq.popleft()


def backoff(retry: Retry, attempts: int) -> int:
    """µs before the next attempt after `attempts` failed ones: doubling, with equal jitter."""
    d = min(retry.max_backoff, retry.backoff * 2 ** max(0, attempts - 1))
    return d // 2 + random.randint(0, d // 2)


def hygienic(settings: Channels) -> bool:
    """Whether messages are bundled or rate-limited: then each is planned before it goes."""
    return bool(settings.bundle or settings.person_limit or settings.channel_limits)


def pages_by_target(rows: list[Row]) -> tuple[list[list[Row]], dict[tuple[str, str], list[Row]]]:
    """Rows that go alone as they are, and pages grouped by (person, channel)."""
    alone: list[list[Row]] = []
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        if r.kind == "notify":
            groups.setdefault((r.payload["person"], r.payload["channel"]), []).append(r)
        else:
            alone.append([r])
    return alone, groups


def plan(
    groups: dict[tuple[str, str], list[Row]],
    priority: Mapping[str, str],
    settings: Channels,
    limiter: Limiter,
    now: int,
) -> Plan:
    """Which pages go now (each message a list of rows) and which wait, until when."""
    jobs: list[list[Row]] = []
    held: dict[int, list[Row]] = {}
    for (person, channel), grp in groups.items():
        limits: Limits = []
        if settings.bundle:
            limits.append((("bundle", person, channel), RateLimit(1, settings.bundle)))
        if settings.person_limit:
            limits.append((("person", person), settings.person_limit))
        if channel in settings.channel_limits:
            limits.append((("channel", channel), settings.channel_limits[channel]))
        urgent = [r for r in grp if priority.get(r.case_id) == "P1"]
        rest = [r for r in grp if priority.get(r.case_id) != "P1"]
        for r in urgent:
            jobs.append([r])
            limiter.record(limits, now)
        if rest:
            at = limiter.next_slot(limits, now)
            if at <= now:
                jobs.append(rest)
                limiter.record(limits, now)
            else:
                held.setdefault(at, []).extend(rest)
    return jobs, held
