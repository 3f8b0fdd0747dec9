"""The policy as a non-admin may read it: every secret removed, whatever way the YAML wrote it.

The compiled policy says which values are secrets: integration keys, the webhook, Slack and
Apprise contact URLs of people, and rule webhook URLs. The parsed YAML is then written out
again with the `channels` section replaced and every occurrence of a secret replaced, in
values and in keys, so an anchor, an escape sequence, a quoted or folded form or a copy in a
name leaks nothing. Comments are not carried over (they may hold anything).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from rungs.policy.loader import load_yaml
from rungs.policy.model import Policy

__all__ = ["REDACTED", "SECRET_CONTACTS", "public_yaml", "secrets_of", "stand_ins"]

REDACTED = "<redacted>"
STAND_IN = "https://redacted.invalid/"  # what a removed secret compiles as (`stand_ins`)
_CHANNELS = re.compile(r"^channels: " + re.escape(REDACTED) + r"[ \t]*$", re.M)
SECRET_CONTACTS = ("webhook", "slack", "apprise")  # contacts that are URLs holding a credential

_HEADER = (
    "# Redacted for non-admin tokens: integration keys, webhook, Slack and Apprise URLs and\n"
    "# the channels section are removed; comments are not shown.\n"
)


def secrets_of(policy: Policy) -> set[str]:
    """Every secret value the policy holds (see the module's docstring)."""
    found = {i.key for i in policy.integrations.values() if i.key}
    for person in policy.people.values():
        found.update(v for k, v in person.contacts.items() if k in SECRET_CONTACTS and v)
    for rule in policy.rules:
        found.update(a.url for a in rule.then if a.kind == "webhook" and a.url)
    return found


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):  # a key written as a number
        return REDACTED if str(value) in secrets else value
    if isinstance(value, str):
        for s in secrets:  # longest first, so a secret inside another goes with it
            if s in value:
                value = value.replace(s, REDACTED)
        return value
    return value  # dates and times


def public_yaml(text: str, policy: Policy, file: str = "<policy>") -> str:
    """`text` (the YAML `policy` was compiled from) with every secret replaced."""
    data = load_yaml(text, file).data
    if not isinstance(data, dict):
        return _HEADER
    if "channels" in data:
        data = {**data, "channels": REDACTED}
    secrets = sorted(secrets_of(policy), key=len, reverse=True)
    clean = _scrub(data, secrets)
    body = yaml.safe_dump(clean, sort_keys=False, allow_unicode=True, width=100)
    return _HEADER + body


def stand_ins(text: str) -> str:
    """A text `public_yaml` wrote (and someone may have edited since), with every removed
    secret replaced by a stand-in that compiles, so that it can be checked and simulated: the
    removed `channels` section becomes a comment, each other secret a URL of the reserved
    `.invalid` domain. Lines and columns of everything else stay where they were."""
    text = _CHANNELS.sub("# channels: removed (secrets)", text)
    return text.replace(REDACTED, STAND_IN)
