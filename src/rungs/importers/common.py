"""What every importer reads the same way: JSON paths, list responses, slugs, durations,
instants and weekly windows.

A dump is plain JSON data. `Node` walks it keeping the JSON path (`$.schedules[0].name`), so a
value of the wrong shape is a `DumpError` that names where it stands. Pure: no file is read
here (the command reads the file and hands the data over).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rungs.time.hours import DAYS
from rungs.time.instant import SECOND, from_us, parse_instant, to_us

__all__ = [
    "DumpError",
    "Node",
    "Slugs",
    "duration_text",
    "instant_text",
    "listing",
    "person_zone",
    "positive",
    "local_instant",
    "restrict_of",
    "slug",
    "unwrap",
    "zone_of",
]

_MINUTES_PER_WEEK = 7 * 24 * 60


class DumpError(ValueError):
    """A dump value of the wrong shape, with the JSON path where it stands."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(v), "a number"
    )


class Node:
    """A JSON value and its path; typed accessors raise `DumpError` naming the path."""

    __slots__ = ("path", "value")

    def __init__(self, value: Any, path: str = "$") -> None:
        self.value = value
        self.path = path

    def _obj(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise DumpError(self.path, f"expected an object, found {_kind(self.value)}")
        return self.value

    def has(self, key: str) -> bool:
        return self._obj().get(key) is not None

    def __getitem__(self, key: str) -> Node:
        obj = self._obj()
        if obj.get(key) is None:
            raise DumpError(self.path, f"missing '{key}'")
        return Node(obj[key], f"{self.path}.{key}")

    def get(self, key: str) -> Node | None:
        """The value at `key`, or None when it is absent or null."""
        obj = self._obj()
        return None if obj.get(key) is None else Node(obj[key], f"{self.path}.{key}")

    def items(self) -> list[Node]:
        if not isinstance(self.value, list):
            raise DumpError(self.path, f"expected a list, found {_kind(self.value)}")
        return [Node(v, f"{self.path}[{i}]") for i, v in enumerate(self.value)]

    def entries(self) -> list[tuple[str, Node]]:
        """An object's members, each with its path."""
        return [(k, Node(v, f"{self.path}.{k}")) for k, v in self._obj().items()]

    def text(self, key: str | None = None, default: str | None = None) -> str:
        node = self if key is None else self.get(key)
        if node is None:
            if default is not None:
                return default
            raise DumpError(self.path, f"missing '{key}'")
        if isinstance(node.value, bool) or not isinstance(node.value, str | int):
            raise DumpError(node.path, f"expected a string, found {_kind(node.value)}")
        return str(node.value)

    def number(self, key: str, default: int | None = None) -> int:
        node = self.get(key)
        if node is None:
            if default is not None:
                return default
            raise DumpError(self.path, f"missing '{key}'")
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
            raise DumpError(node.path, f"expected a whole number, found {_kind(v)}")
        return int(v)

    def flag(self, key: str, default: bool = False) -> bool:
        node = self.get(key)
        if node is None:
            return default
        if not isinstance(node.value, bool):
            raise DumpError(node.path, f"expected true or false, found {_kind(node.value)}")
        return node.value

    def instant(self, key: str) -> int:
        """An ISO 8601 instant with an offset, in µs."""
        node = self[key]
        try:
            return parse_instant(node.text())
        except ValueError as exc:
            raise DumpError(node.path, str(exc)) from None


def listing(dump: Node, key: str) -> list[Node]:
    """The list a dump holds under `key` (see `unwrap`); an absent key is an empty list."""
    node = dump.get(key)
    return [] if node is None else unwrap(node, key)


def unwrap(node: Node, key: str) -> list[Node]:
    """A list, or a vendor's list response around it (`{"users": [...]}`, `{"data": [...]}`,
    `{"results": [...]}`, GraphQL's `{"nodes": [...]}`, nested up to four deep)."""
    seen = 0
    while isinstance(node.value, dict) and seen < 4:
        seen += 1
        for inner in (key, "data", "results", "nodes"):
            found = node.get(inner)
            if found is not None:
                node = found
                break
        else:
            raise DumpError(node.path, f"expected a list of {key} or a list response holding one")
    return node.items()


def positive(node: Node, key: str, default: int | None = None) -> int:
    """A whole number above zero (a turn length, an interval)."""
    n = node.number(key, default)
    if n <= 0:
        raise DumpError(f"{node.path}.{key}", f"expected a number above zero, found {n}")
    return n


def person_zone(node: Node, key: str) -> str | None:
    """A person's time zone when it is an IANA name, else None (the caller reports it)."""
    try:
        return zone_of(node, key) if node.has(key) else None
    except DumpError:
        return None


def slug(name: str, fallback: str = "item") -> str:
    """`"Primary On-call"` -> `primary-on-call`: ASCII letters and digits joined by '-'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return s or fallback


class Slugs:
    """Unique slugs per section: a second `primary` becomes `primary-2`."""

    def __init__(self) -> None:
        self._taken: dict[str, set[str]] = {}

    def new(self, section: str, name: str, fallback: str) -> str:
        taken = self._taken.setdefault(section, set())
        base = slug(name, fallback)
        found, n = base, 1
        while found in taken:
            n += 1
            found = f"{base}-{n}"
        taken.add(found)
        return found


def duration_text(seconds: int) -> str:
    """Seconds as a Rungs duration in its largest whole unit (`1w`, `2d`, `12h`, `90m`)."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def zone_of(node: Node, key: str, default: str | None = None) -> str:
    """An IANA time zone name from the dump."""
    name = node.text(key, default)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        where = node.get(key)
        raise DumpError(where.path if where else node.path, f"unknown time zone '{name}'") from None
    return name


def instant_text(us: int, zone: str) -> str:
    """An instant as ISO 8601 with the zone's offset (what a reader of the policy expects)."""
    return from_us(us, ZoneInfo(zone)).isoformat()


def local_instant(node: Node, key: str, zone: str) -> int:
    """An instant written as local time without an offset (Grafana's `start`), in `zone`."""
    where = node[key]
    text = where.text()
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise DumpError(where.path, str(exc)) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(zone))
    return to_us(dt)


def restrict_of(windows: list[tuple[int, int]]) -> dict[str, str] | None:
    """Weekly windows (start minute of the week from Monday 00:00, length in minutes) as a Rungs
    `restrict` (weekday to spans, split at midnight); None when they cover the whole week, {}
    when they cover nothing."""
    mask = bytearray(_MINUTES_PER_WEEK)
    for start, length in windows:
        for m in range(start, start + min(length, _MINUTES_PER_WEEK)):
            mask[m % _MINUTES_PER_WEEK] = 1
    if all(mask):
        return None
    out: dict[str, str] = {}
    for day in range(7):
        spans, m0 = [], day * 1440
        m = 0
        while m < 1440:
            if mask[m0 + m]:
                s = m
                while m < 1440 and mask[m0 + m]:
                    m += 1
                spans.append(f"{s // 60:02d}:{s % 60:02d}-{m // 60:02d}:{m % 60:02d}")
            m += 1
        if spans:
            out[DAYS[day]] = ",".join(spans)
    return out


def whole_minutes(seconds: int) -> bool:
    return seconds % 60 == 0


def seconds_to_us(seconds: int) -> int:
    return seconds * SECOND
