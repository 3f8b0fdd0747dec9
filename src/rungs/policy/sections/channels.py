"""The `channels` section: validated into `rungs.policy.channels.Channels`.

Each channel's fields are checked against `_FIELDS`; secrets only by `*_env` names, and only
names with the deployment's prefix (`rungs.policy.secrets`). With a `channels` section every
person's contacts must be deliverable by a configured channel.
"""

from __future__ import annotations

import re
from typing import Any

from rungs.policy.channels import (
    LOG,
    NO_CHANNELS,
    AppriseConfig,
    ChannelConfig,
    Channels,
    EmailConfig,
    LogConfig,
    RateLimit,
    Retry,
    SlackConfig,
    TwilioConfig,
    WebhookConfig,
)
from rungs.policy.loader import Path
from rungs.policy.reader import Reader, hint
from rungs.time.instant import DurationError, parse_duration

__all__ = ["compile_channels"]

SECURITY = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
SECRET_WORDS = ("password", "token", "secret", "username", "account", "key")
SETTINGS = ("retry", "bundle", "rate_limits", "handled_notice")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{4,}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "email": (
        ("host", "port", "sender", "security", "username_env", "password_env", "timeout"),
        ("host", "sender"),
    ),
    "webhook": (("secret_env", "timeout"), ()),
    "sms": (
        ("url", "account_env", "token_env", "sender", "timeout", "inbound_verify"),
        ("url", "account_env", "token_env", "sender"),
    ),
    "voice": (
        ("url", "account_env", "token_env", "sender", "timeout"),
        ("url", "account_env", "token_env", "sender"),
    ),
    "slack": (("timeout",), ()),
    "apprise": (("timeout",), ()),
    "log": ((), ()),
}


def compile_channels(r: Reader) -> Channels:
    """The `channels` section; without one, `NO_CHANNELS` (nothing is sent)."""
    data = r.data
    if "channels" not in data:
        return NO_CHANNELS
    path: Path = ("channels",)
    raw = data["channels"]
    if raw is None:
        return Channels(declared=True)
    m = r.mapping(raw, path, "channels")
    if m is None:
        return NO_CHANNELS
    configs: dict[str, ChannelConfig] = {}
    retry, bundle, handled_notice = Retry(), 0, True
    person_limit: RateLimit | None = None
    channel_limits: dict[str, RateLimit] = {}
    for name, value in m.items():
        p = (*path, name)
        if name in _FIELDS:
            cfg = _channel(r, str(name), {} if value is None else value, p)
            if cfg is not None:
                configs[name] = cfg
        elif name == "retry":
            retry = _retry(r, value, p)
        elif name == "bundle":
            bundle = _duration(r, value, p, "bundle") or 0
        elif name == "rate_limits":
            person_limit, channel_limits = _limits(r, value, p)
        elif name == "handled_notice":
            if isinstance(value, bool):
                handled_notice = value
            else:
                r.err(p, f"handled_notice must be true or false, not {value!r}")
        else:
            known = (*_FIELDS, *SETTINGS)
            r.err(p, f"unknown channel or setting '{name}'{_or_use(name, known)}", key=True)
    _check_contacts(r, data, configs)
    return Channels(
        configs=configs,
        retry=retry,
        bundle=bundle,
        person_limit=person_limit,
        channel_limits=channel_limits,
        handled_notice=handled_notice,
        declared=True,
    )


def _or_use(name: object, choices: tuple[str, ...]) -> str:
    """The near miss, else the list to choose from."""
    return hint(name, choices) or f" (use {', '.join(choices)})"


def _channel(r: Reader, name: str, value: Any, p: Path) -> ChannelConfig | None:
    """One channel's fields: shared checks here, then those of its kind."""
    allowed, required = _FIELDS[name]
    m = r.mapping(value, p, f"channels.{name}")
    if m is None:
        return None
    ok = True
    for k in m:
        if k in allowed:
            continue
        ok = False
        if any(w in str(k).lower() for w in SECRET_WORDS) and not str(k).endswith("_env"):
            r.err(
                (*p, k),
                f"secrets come only from the environment: write '{k}_env: VARIABLE' "
                f"instead of '{k}' in channels.{name}",
                key=True,
            )
        else:
            r.err((*p, k), f"unknown field '{k}' in channels.{name}{_or_use(k, allowed)}", key=True)
    for k in required:
        if k not in m:
            r.err(p, f"channels.{name} is missing '{k}'")
            ok = False
    strings: dict[str, str] = {}
    for k in allowed:
        if k in m and k not in ("port", "timeout", "inbound_verify"):
            v = m[k]
            if not isinstance(v, str) or not v.strip():
                r.err((*p, k), f"'{k}' must be a non-empty string, not {v!r}")
                ok = False
            elif k.endswith("_env") and not _ENV.match(v):
                r.err((*p, k), f"'{k}' names an environment variable; '{v}' is not a valid name")
                ok = False
            elif k.endswith("_env") and not r.env_name((*p, k), k, v.strip()):
                ok = False
            else:
                strings[k] = v.strip()
    timeout = 10.0
    if "timeout" in m:
        t = _duration(r, m["timeout"], (*p, "timeout"), "timeout")
        if t is not None and t <= 0:
            r.err((*p, "timeout"), "timeout must be more than 0")
            ok = False
        elif t is not None:
            timeout = t / 1e6
    if name == "email":
        return _email(r, m, p, strings, timeout, ok)
    if name in ("sms", "voice"):
        return _twilio(r, m, p, strings, timeout, ok)
    if not ok:
        return None
    if name == LOG:
        return LogConfig()
    if name == "webhook":
        return WebhookConfig(strings.get("secret_env"), timeout)
    if name == "slack":
        return SlackConfig(timeout)
    return AppriseConfig(timeout)


def _email(
    r: Reader, m: dict[str, Any], p: Path, strings: dict[str, str], timeout: float, ok: bool
) -> EmailConfig | None:
    security = strings.get("security", "none")
    if security not in SECURITY:
        r.err((*p, "security"), f"security must be one of {', '.join(SECURITY)}, not {security!r}")
        ok, security = False, "none"
    port = m.get("port", DEFAULT_PORTS[security])
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        r.err((*p, "port"), f"port must be a number from 1 to 65535, not {port!r}")
        ok = False
    if "sender" in strings and "@" not in strings["sender"]:
        r.err((*p, "sender"), f"sender must be an email address, not {strings['sender']!r}")
        ok = False
    if ("username_env" in strings) != ("password_env" in strings):
        r.err(p, "channels.email needs both 'username_env' and 'password_env', or neither")
        ok = False
    if not ok:
        return None
    return EmailConfig(
        strings["host"],
        strings["sender"],
        port,
        security,
        strings.get("username_env"),
        strings.get("password_env"),
        timeout,
    )


def _twilio(
    r: Reader, m: dict[str, Any], p: Path, strings: dict[str, str], timeout: float, ok: bool
) -> TwilioConfig | None:
    """`sms` or `voice`: a provider URL with at most an `{account}` placeholder."""
    url = strings.get("url", "")
    if url and not url.startswith(("http://", "https://")):
        r.err((*p, "url"), f"url must start with http:// or https://, not {url!r}")
        ok = False
    try:
        url.format(account="x")
    except (KeyError, IndexError, ValueError):
        r.err((*p, "url"), "url may hold only the placeholder {account}")
        ok = False
    verify = m.get("inbound_verify", True)
    if not isinstance(verify, bool):
        r.err((*p, "inbound_verify"), "inbound_verify must be true or false")
        ok = False
    if not ok:
        return None
    return TwilioConfig(
        url, strings["account_env"], strings["token_env"], strings["sender"], timeout, verify
    )


def _duration(r: Reader, value: Any, p: Path, what: str) -> int | None:
    try:
        d = parse_duration(value)
    except DurationError as exc:
        r.err(p, f"{what}: {exc}")
        return None
    if d < 0:
        r.err(p, f"{what} must not be negative")
        return None
    return d


def _retry(r: Reader, value: Any, p: Path) -> Retry:
    allowed = ("attempts", "backoff", "max_backoff", "lease")
    m = r.fields(value, p, "channels.retry", allowed, ())
    if m is None:
        return Retry()
    base = Retry()
    attempts = m.get("attempts", base.attempts)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        r.err((*p, "attempts"), f"attempts must be a whole number from 1 to 100, not {attempts!r}")
        attempts = base.attempts
    got: dict[str, int] = {}
    for k in ("backoff", "max_backoff", "lease"):
        if k in m:
            d = _duration(r, m[k], (*p, k), k)
            if d is not None:
                got[k] = d
    lease = got.get("lease", base.lease)
    if lease < 1_000_000:
        r.err((*p, "lease"), "lease must be at least 1s")
        lease = base.lease
    backoff = got.get("backoff", base.backoff)
    max_backoff = got.get("max_backoff", max(base.max_backoff, backoff))
    if max_backoff < backoff:
        r.err((*p, "max_backoff"), "max_backoff must not be shorter than backoff")
    return Retry(attempts, backoff, max(max_backoff, backoff), lease)


def _rate(r: Reader, value: Any, p: Path) -> RateLimit | None:
    if isinstance(value, dict):
        m = r.fields(value, p, "rate limit", ("count", "per"), ("count", "per"))
        if m is None or "count" not in m or "per" not in m:
            return None
        count, per_text = m["count"], m["per"]
    else:
        found = _RATE.match(str(value)) if isinstance(value, str) else None
        if found is None:
            r.err(p, f"a rate limit is written COUNT/DURATION such as '20/1h', not {value!r}")
            return None
        count, per_text = int(found.group(1)), found.group(2)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        r.err(p, f"a rate limit's count must be a whole number of at least 1, not {count!r}")
        return None
    per = _duration(r, per_text, p, "rate limit")
    if per is None:
        return None
    if per <= 0:
        r.err(p, "a rate limit's duration must be more than 0")
        return None
    return RateLimit(count, per)


def _limits(r: Reader, value: Any, p: Path) -> tuple[RateLimit | None, dict[str, RateLimit]]:
    """(person limit, limit per channel) of `rate_limits`."""
    m = r.fields(value, p, "channels.rate_limits", ("person", "channel"), ())
    if m is None:
        return None, {}
    person = _rate(r, m["person"], (*p, "person")) if "person" in m else None
    limits: dict[str, RateLimit] = {}
    if "channel" in m:
        cm = r.mapping(m["channel"], (*p, "channel"), "rate_limits.channel") or {}
        for name, v in cm.items():
            if name not in _FIELDS:
                hint_ = _or_use(name, tuple(_FIELDS))
                r.err((*p, "channel", name), f"unknown channel '{name}'{hint_}", key=True)
                continue
            found = _rate(r, v, (*p, "channel", name))
            if found is not None:
                limits[name] = found
    return person, limits


def _check_contacts(r: Reader, data: dict[str, Any], configs: dict[str, ChannelConfig]) -> None:
    """With a `channels` section: each contact must be deliverable by a configured channel."""
    people = data.get("people")
    if isinstance(people, dict):
        items = [(k, v, ("people", k)) for k, v in people.items()]
    elif isinstance(people, list):
        items = [(v.get("id") if isinstance(v, dict) else None, v, ("people", i))
                 for i, v in enumerate(people)]  # fmt: skip
    else:
        return
    for ident, person, p in items:
        if not isinstance(person, dict) or not isinstance(person.get("contacts"), dict):
            continue
        for method, address in person["contacts"].items():
            cp = (*p, "contacts", method)
            if not isinstance(address, str) or not address:
                continue  # reported by the people section
            if method in ("email", "sms", "voice") and method not in configs and LOG not in configs:
                r.warn(
                    cp,
                    f"person '{ident}' has {'an' if method == 'email' else 'a'} {method} contact "
                    f"but channels.{method} is not configured: {method} messages to them will fail",
                )
            if method in ("sms", "voice") and not _PHONE.match(address):
                r.err(cp, f"{method} contact must be a phone number such as +4930123456")
            elif method in ("slack", "webhook") and not address.startswith(("http://", "https://")):
                r.err(cp, f"{method} contact must be an http:// or https:// URL")
            elif method == "email" and ("@" not in address or not address.isprintable()):
                # a line break would be a mail header of its own
                r.err(cp, f"email contact must be an email address, not {address!r}")
            elif method == "apprise" and "://" not in address:
                r.err(cp, "apprise contact must be an Apprise URL such as 'tgram://TOKEN/CHAT'")
