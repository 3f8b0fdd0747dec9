"""The located reader every policy section reads through.

`Reader` gives typed access to the plain data of `rungs.policy.loader.Located`: a value of the
wrong shape becomes a located problem (never an exception), so one run reports every mistake.
`hint` is the one "did you mean" of the policy compiler. Values are plain YAML data (mappings,
lists, strings, numbers, booleans, dates or None), hence `Any` for them here and in sections.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from rungs.policy.loader import Located, Path
from rungs.policy.secrets import DEFAULT_PREFIX, prefix_problem
from rungs.time.instant import DurationError, parse_duration

__all__ = ["Entry", "Reader", "hint", "kind_of", "ID"]

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

Entry = tuple[str, dict[str, Any], Path]  # (id, mapping, where it stands)


def hint(name: object, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for a near miss, else nothing."""
    close = difflib.get_close_matches(str(name), sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def kind_of(v: object) -> str:
    """What a value is, in an author's words: `a mapping`, `a list`, `nothing`..."""
    if v is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(v), f"a {type(v).__name__}"
    )


class Reader:
    """Typed access to located data that records a problem instead of raising."""

    def __init__(self, loc: Located, *, secret_prefix: str | None = DEFAULT_PREFIX) -> None:
        self.loc = loc
        self.secret_prefix = secret_prefix  # what `*_env` names must start with (None: any)
        self._entries: dict[str, list[Entry]] = {}

    @property
    def data(self) -> Any:
        """The whole policy's plain data."""
        return self.loc.data

    def err(self, path: Path, message: str, *, key: bool = False) -> None:
        self.loc.problem(path, message, key=key)

    def warn(self, path: Path, message: str) -> None:
        self.loc.problem(path, message, warning=True)

    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.loc.problems)

    def env_name(self, path: Path, field: str, name: str) -> bool:
        """Whether `name` (the value of a `*_env` field) is a variable this policy may name;
        a located error otherwise (see `rungs.policy.secrets`)."""
        problem = None if self.secret_prefix is None else prefix_problem(name, self.secret_prefix)
        if problem is not None:
            self.err(path, f"'{field}': {problem}")
        return problem is None

    def mapping(self, value: Any, path: Path, what: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.err(path, f"{what} must be a mapping, not {kind_of(value)}")
        return None

    def fields(
        self, value: Any, path: Path, what: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """A mapping whose keys are all `allowed` and hold every one of `required`."""
        m = self.mapping(value, path, what)
        if m is None:
            return None
        for k in m:
            if k not in allowed:
                self.err((*path, k), f"unknown field '{k}' in {what}{hint(k, allowed)}", key=True)
        for k in required:
            if k not in m:
                self.err(path, f"{what} is missing '{k}'")
        return m

    def string(self, m: dict[str, Any], key: str, path: Path) -> str | None:
        """`m[key]` as a string (a number is taken as its text), None when absent or wrong."""
        v = m.get(key)
        if key in m and not isinstance(v, str):
            if isinstance(v, int | float) and not isinstance(v, bool):
                return str(v)
            self.err((*path, key), f"'{key}' must be a string, not {kind_of(v)}")
            return None
        return v

    def duration(
        self, m: dict[str, Any], key: str, path: Path, *, default: int | None = None
    ) -> int | None:
        """`m[key]` as a duration in µs (`5m`, `1h30m`, ...), `default` when absent or wrong."""
        if key not in m:
            return default
        try:
            return parse_duration(m[key])
        except DurationError as exc:
            self.err((*path, key), str(exc))
            return default

    def strings(self, value: Any, path: Path, what: str) -> list[str]:
        """A list of strings (numbers taken as text); one string is a list of one."""
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            self.err(path, f"{what} must be a list, not {kind_of(value)}")
            return []
        out = []
        for i, v in enumerate(value):
            if isinstance(v, str | int) and not isinstance(v, bool):
                out.append(str(v))
            else:
                self.err((*path, i), f"{what} entries must be strings, not {kind_of(v)}")
        return out

    def entries(self, section: str) -> list[Entry]:
        """A section given as a list of `{id: ...}` or as a mapping `id -> {...}` (read once,
        so its problems are reported once however many sections look at its ids)."""
        if section not in self._entries:
            self._entries[section] = self._read_entries(section)
        return self._entries[section]

    def ids(self, section: str) -> set[str]:
        """The ids a section declares (valid or not), for references from other sections."""
        return {ident for ident, _, _ in self.entries(section)}

    def _read_entries(self, section: str) -> list[Entry]:
        value = self.data.get(section)
        path: Path = (section,)
        if value is None:
            return []
        out: list[Entry] = []
        seen: dict[str, Path] = {}  # id -> where it first stood
        if isinstance(value, dict):
            items = [(k, v, (*path, k), True) for k, v in value.items()]
        elif isinstance(value, list):
            items = [(None, v, (*path, i), False) for i, v in enumerate(value)]
        else:
            self.err(path, f"'{section}' must be a list or a mapping, not {kind_of(value)}")
            return []
        for key, v, p, keyed in items:
            if not isinstance(v, dict):
                self.err(p, f"each entry of '{section}' must be a mapping, not {kind_of(v)}")
                continue
            if keyed:
                ident = str(key)
                if "id" in v and str(v["id"]) != ident:
                    self.err((*p, "id"), f"id '{v['id']}' differs from its key '{ident}'")
                id_path = p
            else:
                if "id" not in v:
                    self.err(p, f"an entry of '{section}' is missing 'id'")
                    continue
                ident = str(v["id"])
                id_path = (*p, "id")
            if not ID.match(ident):
                self.err(id_path, f"id '{ident}' may hold only letters, digits, '_', '-', '.'")
            if ident in seen:
                first = self.loc.where(seen[ident], key=keyed)[0]
                self.err(
                    id_path,
                    f"duplicate id '{ident}' in '{section}' (first at line {first})",
                    key=keyed,
                )
                continue
            seen[ident] = id_path
            out.append((ident, v, p))
        return out
