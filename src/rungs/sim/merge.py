"""Several stories as one: their events in time order on one virtual clock, for reports
over many stories (`rungs report --simulate`). Cases keep their names when there is one
story; with several, each is named `STORY-STEM/CASE` so names never collide."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rungs.sim.story import Story

__all__ = ["merge_stories"]


def merge_stories(stories: list[Story]) -> Story:
    """One story: every event (stable in time order), `until` the latest of them."""
    if len(stories) == 1:
        return stories[0]
    events = []
    for s in stories:
        stem = Path(s.file).name.removesuffix(".yaml").removesuffix(".story")
        events += [replace(e, case=f"{stem}/{e.case}") for e in s.events]
    events.sort(key=lambda e: e.at)
    untils = [s.until for s in stories if s.until is not None]
    return Story(
        ", ".join(s.file for s in stories),
        stories[0].policy,
        max(untils) if untils else None,
        tuple(events),
    )
