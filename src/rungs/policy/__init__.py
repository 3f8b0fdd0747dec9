"""Escalation as code: load, validate and compile a policy file.

`loader` turns YAML into plain data with positions; `compile` runs one module of `sections`
per top-level key, each reading through `reader.Reader` (and `values` for what several
sections share) into the immutable objects of `model` and `channels`. Every problem is
collected and located; nothing here reads the environment, a clock or a database.
"""

from __future__ import annotations

from pathlib import Path

from rungs.policy.compile import compile_policy
from rungs.policy.loader import Located, Problem, load_yaml
from rungs.policy.model import Policy
from rungs.policy.secrets import DEFAULT_PREFIX

__all__ = ["Policy", "PolicyError", "Problem", "load_policy", "load_policy_text", "validate_file"]


class PolicyError(ValueError):
    """A policy with errors; `problems` lists every one, located."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems if p.severity == "error"))


def load_policy_text(
    text: str,
    file: str = "<policy>",
    folder: str = ".",
    *,
    secret_prefix: str | None = DEFAULT_PREFIX,
) -> tuple[Policy | None, list[Problem]]:
    """Compile policy text; returns the policy (None on any error) and every problem.
    `secret_prefix`: what `*_env` names must start with (`rungs.policy.secrets`)."""
    loc: Located = load_yaml(text, file)
    policy = (
        compile_policy(loc, folder, secret_prefix=secret_prefix) if loc.data is not None else None
    )
    if loc.data is None and not loc.problems:
        loc.problem((), "the policy is empty")
    return policy, sorted(loc.problems, key=lambda p: (p.line, p.col))


def validate_file(
    path: str | Path, *, secret_prefix: str | None = DEFAULT_PREFIX
) -> tuple[Policy | None, list[Problem]]:
    """Read and compile a policy file; an unreadable file is a problem, not an exception."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), 1, 1, f"cannot read file: {exc}")]
    return load_policy_text(text, str(path), str(p.parent), secret_prefix=secret_prefix)


def load_policy(path: str | Path, *, secret_prefix: str | None = DEFAULT_PREFIX) -> Policy:
    """Compile a policy file or raise `PolicyError` with every problem."""
    policy, problems = validate_file(path, secret_prefix=secret_prefix)
    if policy is None:
        raise PolicyError(problems)
    return policy
