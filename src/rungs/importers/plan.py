"""The draft an importer builds: what will be created, what cannot be translated (by name,
with why), which integrations to re-point, and the vendor's final schedules to check against.

Every importer fills one `Draft`; `yamlout` writes it and `shiftcheck` checks it, so the four
vendors share one output and one report. Ids are already Rungs ids (slugs); `source` is the
vendor's own id, written beside each entry as a comment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Draft",
    "Final",
    "Integration",
    "Layer",
    "Level",
    "Matrix",
    "Override",
    "Person",
    "Schedule",
    "Team",
    "Untranslated",
]


@dataclass
class Person:
    id: str
    name: str
    email: str
    source: str
    contacts: dict[str, str] = field(default_factory=dict)
    notify: list[tuple[int, str]] = field(default_factory=list)  # (after minutes, channel)
    timezone: str | None = None


@dataclass
class Team:
    id: str
    name: str
    source: str
    members: list[str]


@dataclass
class Layer:
    name: str
    members: list[str]
    shift: str  # a Rungs duration: `1w`, `12h`
    start: int  # µs: the hand-off anchor
    timezone: str
    restrict: dict[str, str] | None = None  # weekday -> "HH:MM-HH:MM,..."


@dataclass
class Override:
    start: int
    end: int
    who: str
    source: str = ""


@dataclass
class Schedule:
    id: str
    name: str
    source: str
    timezone: str
    layers: list[Layer] = field(default_factory=list)  # last listed on top (Rungs' order)
    overrides: list[Override] = field(default_factory=list)


@dataclass
class Level:
    after: int  # minutes from the opening
    notify: list[str]  # targets: person:ID, team:ID, schedule:ID
    unless: str = "acknowledged"
    name: str = ""


@dataclass
class Matrix:
    id: str
    name: str
    source: str
    levels: list[Level] = field(default_factory=list)
    repeat: tuple[int, int] | None = None  # (every minutes, times)


@dataclass
class Integration:
    id: str
    name: str
    source: str
    format: str
    matrix: str | None
    endpoint: str

    @property
    def key_env(self) -> str:
        return "RUNGS_" + self.id.upper().replace("-", "_").replace(".", "_") + "_KEY"


@dataclass
class Untranslated:
    kind: str
    name: str
    why: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}: {self.why}"


@dataclass
class Final:
    """The vendor's own answer for one of its schedules: (start, end, person id) pieces over
    [start, end), and the Rungs schedules that together stand for it."""

    name: str
    schedule_ids: list[str]
    shifts: list[tuple[int, int, str]]
    start: int
    end: int


@dataclass
class Draft:
    vendor: str
    people: list[Person] = field(default_factory=list)
    teams: list[Team] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    matrices: list[Matrix] = field(default_factory=list)
    integrations: list[Integration] = field(default_factory=list)
    untranslated: list[Untranslated] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)

    def cannot(self, kind: str, name: str, why: str) -> None:
        """Record what cannot be translated (nothing is dropped silently)."""
        self.untranslated.append(Untranslated(kind, name, why))

    def usable(self) -> bool:
        """Whether anything at all was read (else the import fails)."""
        return bool(self.people or self.schedules or self.matrices)

    def created(self) -> list[str]:
        """One line per section: what will be created, by id."""
        out = []
        for what, items in (
            ("people", self.people),
            ("teams", self.teams),
            ("schedules", self.schedules),
            ("matrices", self.matrices),
            ("integrations", self.integrations),
        ):
            if items:
                out.append(f"{what} ({len(items)}): {', '.join(i.id for i in items)}")
        return out

    def repoint(self) -> list[str]:
        """The senders to re-point: vendors do not export routing keys."""
        return [
            f"{i.name} ({self.vendor} {i.source}): send to {i.endpoint} "
            f"with the key in ${i.key_env}"
            for i in self.integrations
        ]

    def report(self, differences: list[str]) -> list[str]:
        """The plan as lines: created, cannot be translated, re-point, the shift check."""
        lines = ["will create:"]
        lines += [f"  {c}" for c in self.created()] or ["  nothing"]
        lines.append(f"cannot be translated ({len(self.untranslated)}):")
        lines += [f"  - {u}" for u in self.untranslated] or ["  nothing"]
        if self.integrations:
            lines.append("integrations to re-point (routing keys are not exported):")
            lines += [f"  - {r}" for r in self.repoint()]
        if self.finals:
            if differences:
                lines.append("shift check FAILED (first differences):")
                lines += [f"  - {d}" for d in differences]
            else:
                names = ", ".join(f.name for f in self.finals)
                lines.append(f"shift check passed: {names}")
        return lines
