"""Which environment variables a policy may name (`*_env`): those with the deploy-time prefix.

A policy names its secrets (`key_env`, `channels.sms.account_env`, ...) by environment
variable. Whoever may PUT a policy could otherwise name any variable of the server's
environment and have it sent out (an SMS account goes into the provider URL, a webhook secret
signs what the receiver sees): `DATABASE_URL`, cloud keys. So a policy may only name variables
that start with a prefix fixed where Rungs is deployed: `RUNGS_SECRET_PREFIX`, by default
`RUNGS_`. The compiler refuses other names (a located error), and every place that reads one
checks again (a policy stored before, or a prefix changed since). Pure: the environment is
passed in, never read here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "DEFAULT_PREFIX",
    "PREFIX_VARIABLE",
    "SecretRefused",
    "prefix_problem",
    "read_secret",
    "secret_prefix",
]

DEFAULT_PREFIX = "RUNGS_"
PREFIX_VARIABLE = "RUNGS_SECRET_PREFIX"
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretRefused(ValueError):
    """A policy named a variable outside the deploy-time prefix."""


def secret_prefix(environ: Mapping[str, str]) -> str:
    """The prefix of this deployment: `RUNGS_SECRET_PREFIX` when it is a usable prefix (an
    empty or malformed one would let a policy read anything, so it counts as unset)."""
    given = environ.get(PREFIX_VARIABLE, "").strip()
    return given if _PREFIX.match(given) else DEFAULT_PREFIX


def prefix_problem(name: str, prefix: str) -> str | None:
    """Why a policy may not name `name` (None when it may)."""
    if name.startswith(prefix) and name != PREFIX_VARIABLE and len(name) > len(prefix):
        return None
    return (
        f"{name} is not a variable a policy may name: use one starting with {prefix} "
        f"(the prefix is set where Rungs is deployed, by {PREFIX_VARIABLE})"
    )


def read_secret(name: str, environ: Mapping[str, str]) -> str | None:
    """The value of a variable a policy names (None when unset or empty); `SecretRefused`
    when the name lacks the deployment's prefix, whatever the policy was compiled with."""
    problem = prefix_problem(name, secret_prefix(environ))
    if problem is not None:
        raise SecretRefused(problem)
    return environ.get(name) or None
