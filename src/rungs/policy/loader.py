"""YAML to plain data, remembering where every value stood in the file.

PyYAML's composer gives nodes with marks; we build plain dicts/lists from them and keep a
`path -> (line, col)` table so every later error can point at the offending value.
Duplicate keys, which PyYAML would silently overwrite, are reported. So is a document nested
deeper than `MAX_DEPTH` or whose aliases expand to more than `MAX_VALUES` values: a policy is a
few levels deep, and anything beyond is an accident or an attack on the parser (PyYAML composes
recursively, and aliases can expand exponentially).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["Located", "Problem", "load_yaml", "Path", "MAX_DEPTH", "MAX_VALUES"]

Path = tuple[str | int, ...]

MAX_DEPTH = 64  # mappings and lists inside each other
MAX_VALUES = 250_000  # values in the document once aliases are expanded


class _TooDeep(yaml.MarkedYAMLError):
    """Raised by the composer past MAX_DEPTH, before Python's recursion limit is near."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to compose past MAX_DEPTH."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _TooDeep(problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


@dataclass(frozen=True, slots=True)
class Problem:
    """One error or warning, located in a file."""

    file: str
    line: int
    col: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {prefix}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "message": self.message,
            "severity": self.severity,
        }


@dataclass
class Located:
    """Plain data plus the position of every value (and of every mapping key)."""

    file: str
    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Position of the value at `path` (or its key), else of the nearest ancestor."""
        table = self.keys if key else self.values
        p = path
        while p:
            if p in table:
                return table[p]
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def problem(
        self, path: Path, message: str, *, key: bool = False, warning: bool = False
    ) -> None:
        line, col = self.where(path, key=key)
        self.problems.append(
            Problem(self.file, line, col, message, "warning" if warning else "error")
        )


def load_yaml(text: str, file: str) -> Located:
    """Parse one YAML document; syntax errors become located problems, never exceptions."""
    loc = Located(file=file, data=None)
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                builder = _Builder(loader, loc)
                loc.data = builder.build(node, ())
                if builder.stopped:  # what was built is cut short: nothing to check further
                    loc.data = None
        finally:
            loader.dispose()
    except _TooDeep as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        loc.problems.append(Problem(file, line, col, f"YAML document {exc.problem}"))
        loc.data = None
    except RecursionError:  # a backstop: merge keys (`<<: *a`) that merge themselves
        loc.problems.append(Problem(file, 1, 1, "YAML document nested too deeply to read"))
        loc.data = None
    except yaml.MarkedYAMLError as exc:
        line, col, message = _syntax_problem(exc)
        loc.problems.append(Problem(file, line, col, f"YAML syntax error: {message}"))
        loc.data = None
    except yaml.YAMLError as exc:
        loc.problems.append(Problem(file, 1, 1, f"YAML syntax error: {exc}"))
        loc.data = None
    return loc


# PyYAML's token names, in words a policy author knows.
_TOKENS = {
    "'?'": "a mapping key",
    "'<block mapping start>'": "a mapping",
    "'<block sequence start>'": "a list",
    "'<block end>'": "the end of the block",
    "'<scalar>'": "a value",
    "'-'": "a list item '-'",
    "<block end>": "the end of the block",
}


def _syntax_problem(exc: yaml.MarkedYAMLError) -> tuple[int, int, str]:
    """Where and what: an unclosed flow collection or quote is shown where it opens."""
    problem = exc.problem or "YAML syntax error"
    for token, words in _TOKENS.items():
        problem = problem.replace(token, words)
    if problem.startswith("expected the end of the block"):
        problem += " (check the indentation)"
    mark = exc.problem_mark or exc.context_mark
    context = exc.context or ""
    opener = context.startswith(("while parsing a flow", "while scanning a quoted"))
    if opener and exc.context_mark is not None and exc.problem_mark is not None:
        what = context.removeprefix("while parsing a ").removeprefix("while scanning a ")
        pm = exc.problem_mark
        problem = (
            f"this {what} is not closed: {problem} at line {pm.line + 1}, column {pm.column + 1}"
        )
        mark = exc.context_mark
    elif context.startswith("found duplicate anchor") and exc.context_mark is not None:
        cm = exc.context_mark
        problem = f"{context.split(';')[0]} (first at line {cm.line + 1})"
    if mark is None:
        return 1, 1, problem
    return mark.line + 1, mark.column + 1, problem


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _scalar(node: yaml.Node, loader: yaml.SafeLoader, loc: Located) -> Any:
    """The node's value; one that YAML cannot construct is reported, or kept as its text.

    An impossible date such as `2026-13-01` stays a string, so whoever reads it reports it with
    their own words; an unsupported tag (`!!python/object`) is reported here.
    """
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        line, col = _pos(node)
        loc.problems.append(Problem(loc.file, line, col, f"unsupported YAML value: {exc.problem}"))
    except (ValueError, TypeError, OverflowError):
        pass
    return node.value if isinstance(node.value, str) else None


class _Builder:
    """Plain data from composed nodes, with every position noted; aliases are expanded, within
    MAX_DEPTH levels and MAX_VALUES values (a recursive alias reaches the first)."""

    def __init__(self, loader: yaml.SafeLoader, loc: Located) -> None:
        self.loader, self.loc = loader, loc
        self.values = 0
        self.stopped = False

    def build(self, node: yaml.Node, path: Path, depth: int = 0) -> Any:
        loc = self.loc
        self.values += 1
        if depth > MAX_DEPTH or self.values > MAX_VALUES:
            if not self.stopped:  # report once, where it happened
                self.stopped = True
                line, col = _pos(node)
                what = (
                    f"nested more than {MAX_DEPTH} levels deep (through aliases)"
                    if depth > MAX_DEPTH
                    else f"more than {MAX_VALUES} values once aliases are expanded"
                )
                loc.problems.append(Problem(loc.file, line, col, f"YAML document {what}"))
            return None
        loc.values[path] = _pos(node)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                if not isinstance(knode, yaml.ScalarNode):  # `? [a, b]`: never a policy key
                    line, col = _pos(knode)
                    what = "a list" if isinstance(knode, yaml.SequenceNode) else "a mapping"
                    loc.problems.append(
                        Problem(loc.file, line, col, f"a key must be a plain value, not {what}")
                    )
                    continue
                key = _scalar(knode, self.loader, loc)
                if not isinstance(key, str | int) or isinstance(key, bool):
                    key = str(key)
                child = (*path, key)
                if key in out:
                    line, col = _pos(knode)
                    first = loc.keys[child][0]
                    loc.problems.append(
                        Problem(
                            loc.file, line, col, f"duplicate key '{key}' (first at line {first})"
                        )
                    )
                    continue
                loc.keys[child] = _pos(knode)
                out[key] = self.build(vnode, child, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return _scalar(node, self.loader, loc)
