"""The policy's `channels` section: how messages leave Rungs, validated and compiled.

```yaml
channels:
  email: {host: 127.0.0.1, port: 2525, sender: rungs@acme.test, security: none,  # starttls, tls
          username_env: SMTP_USER, password_env: SMTP_PASSWORD}                  # both optional
  webhook: {secret_env: RUNGS_WEBHOOK_SECRET}
  sms: {url: "https://provider.example/2010-04-01/Accounts/{account}/Messages.json",
        account_env: SMS_ACCOUNT, token_env: SMS_TOKEN, sender: "+4930000000"}
  voice: {url: ".../Accounts/{account}/Calls.json", account_env: ..., token_env: ..., sender: ...}
  slack: {}            # a person's `slack` contact is an incoming-webhook URL
  apprise: {}          # a person's `apprise` contact is an Apprise URL
  retry: {attempts: 5, backoff: 5s, max_backoff: 10m, lease: 1m}
  bundle: 30s          # one message per person and channel within this window (default 0)
  rate_limits: {person: 20/1h, channel: {sms: 100/1m}}   # P1 goes past them
  handled_notice: true # "handled by X" to everyone paged, on acknowledge and resolve
```

Secrets come only from the environment: a field ending in `_env` names the variable, read
when a message is sent. `compile_channels` is called by the policy compiler with its reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rungs.time.instant import DurationError, parse_duration

__all__ = [
    "Channels",
    "EmailConfig",
    "WebhookConfig",
    "TwilioConfig",
    "SlackConfig",
    "AppriseConfig",
    "Retry",
    "RateLimit",
    "compile_channels",
    "channels_of",
]

SECURITY = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
SECRET_WORDS = ("password", "token", "secret", "username", "account", "key")
SETTINGS = ("retry", "bundle", "rate_limits", "handled_notice")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{4,}$")


@dataclass(frozen=True, slots=True)
class EmailConfig:
    host: str
    sender: str
    port: int = 25
    security: str = "none"
    username_env: str | None = None
    password_env: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    secret_env: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    """SMS or voice in Twilio's request format (any compatible provider)."""

    url: str
    account_env: str
    token_env: str
    sender: str
    timeout: float = 10.0
    inbound_verify: bool = True  # SMS replies must carry a valid X-Twilio-Signature


@dataclass(frozen=True, slots=True)
class SlackConfig:
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class AppriseConfig:
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int = 5  # deliveries tried before the message is dead
    backoff: int = 5_000_000  # µs before the second attempt; doubled each time, with jitter
    max_backoff: int = 600_000_000
    lease: int = 60_000_000  # a claimed message not reported by then is tried again


@dataclass(frozen=True, slots=True)
class RateLimit:
    count: int
    per: int  # µs

    def __str__(self) -> str:
        from rungs.time.instant import format_duration

        return f"{self.count}/{format_duration(self.per)}"


@dataclass(frozen=True, eq=False)
class Channels(Mapping[str, Any]):
    """The configured channels by name (`email` -> EmailConfig, ...) and delivery settings."""

    configs: Mapping[str, Any] = field(default_factory=dict)
    retry: Retry = Retry()
    bundle: int = 0
    person_limit: RateLimit | None = None
    channel_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    handled_notice: bool = True
    declared: bool = False  # the policy has a `channels` section

    def __getitem__(self, name: str) -> Any:
        if name in ("webhook", "slack", "apprise") and name not in self.configs:
            return _DEFAULTS[name]  # need nothing but the person's URL
        return self.configs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.configs)

    def __len__(self) -> int:
        return len(self.configs)

    def __contains__(self, name: object) -> bool:
        return name in self.configs or name in ("webhook", "slack", "apprise")


_DEFAULTS = {"webhook": WebhookConfig(), "slack": SlackConfig(), "apprise": AppriseConfig()}
NO_CHANNELS = Channels()


def channels_of(policy: Any) -> Channels:
    """The compiled channels of a policy (a policy built by hand may hold a plain mapping)."""
    found = getattr(policy, "channels", None)
    return found if isinstance(found, Channels) else NO_CHANNELS


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
}


def compile_channels(r: Any, data: dict[str, Any]) -> Channels:
    """Validate `data["channels"]` with the compiler's reader `r` (errors are located there)."""
    if "channels" not in data:
        return NO_CHANNELS
    path = ("channels",)
    raw = data["channels"]
    if raw is None:
        return Channels(declared=True)
    m = r.mapping(raw, path, "channels")
    if m is None:
        return NO_CHANNELS
    configs: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for name, value in m.items():
        p = (*path, name)
        if name in _FIELDS:
            cfg = _channel(r, str(name), {} if value is None else value, p)
            if cfg is not None:
                configs[name] = cfg
        elif name == "retry":
            out["retry"] = _retry(r, value, p)
        elif name == "bundle":
            out["bundle"] = _duration(r, value, p, "bundle")
        elif name == "rate_limits":
            out.update(_limits(r, value, p))
        elif name == "handled_notice":
            if isinstance(value, bool):
                out["handled_notice"] = value
            else:
                r.err(p, f"handled_notice must be true or false, not {value!r}")
        else:
            known = (*_FIELDS, *SETTINGS)
            r.err(p, f"unknown channel or setting '{name}'{_hint(name, known)}", key=True)
    _check_contacts(r, data, configs)
    return Channels(configs=configs, declared=True, **out)


def _hint(name: Any, choices: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f" (use {', '.join(choices)})"


def _channel(r: Any, name: str, value: Any, p: tuple[Any, ...]) -> Any:
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
            r.err((*p, k), f"unknown field '{k}' in channels.{name}{_hint(k, allowed)}", key=True)
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
            elif k.endswith("_env") and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", v):
                r.err((*p, k), f"'{k}' names an environment variable; '{v}' is not a valid name")
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
        security = strings.get("security", "none")
        if security not in SECURITY:
            r.err(
                (*p, "security"), f"security must be one of {', '.join(SECURITY)}, not {security!r}"
            )
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
    if name in ("sms", "voice"):
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
    if not ok:
        return None
    if name == "webhook":
        return WebhookConfig(strings.get("secret_env"), timeout)
    if name == "slack":
        return SlackConfig(timeout)
    return AppriseConfig(timeout)


def _duration(r: Any, value: Any, p: tuple[Any, ...], what: str) -> int | None:
    try:
        d = parse_duration(value)
    except DurationError as exc:
        r.err(p, f"{what}: {exc}")
        return None
    if d < 0:
        r.err(p, f"{what} must not be negative")
        return None
    return d


def _retry(r: Any, value: Any, p: tuple[Any, ...]) -> Retry:
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


def _rate(r: Any, value: Any, p: tuple[Any, ...]) -> RateLimit | None:
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


def _limits(r: Any, value: Any, p: tuple[Any, ...]) -> dict[str, Any]:
    m = r.fields(value, p, "channels.rate_limits", ("person", "channel"), ())
    if m is None:
        return {}
    out: dict[str, Any] = {}
    if "person" in m:
        out["person_limit"] = _rate(r, m["person"], (*p, "person"))
    if "channel" in m:
        cm = r.mapping(m["channel"], (*p, "channel"), "rate_limits.channel") or {}
        limits = {}
        for name, v in cm.items():
            if name not in _FIELDS:
                hint = _hint(name, tuple(_FIELDS))
                r.err((*p, "channel", name), f"unknown channel '{name}'{hint}", key=True)
                continue
            found = _rate(r, v, (*p, "channel", name))
            if found is not None:
                limits[name] = found
        out["channel_limits"] = limits
    return out


def _check_contacts(r: Any, data: dict[str, Any], configs: dict[str, Any]) -> None:
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
            if method in ("email", "sms", "voice") and method not in configs:
                r.warn(
                    cp,
                    f"person '{ident}' has {'an' if method == 'email' else 'a'} {method} contact "
                    f"but channels.{method} is not configured: {method} messages to them will fail",
                )
            if method in ("sms", "voice") and not _PHONE.match(address):
                r.err(cp, f"{method} contact must be a phone number such as +4930123456")
            elif method in ("slack", "webhook") and not address.startswith(("http://", "https://")):
                r.err(cp, f"{method} contact must be an http:// or https:// URL")
            elif method == "email" and "@" not in address:
                r.err(cp, f"email contact must be an email address, not {address!r}")
            elif method == "apprise" and "://" not in address:
                r.err(cp, "apprise contact must be an Apprise URL such as 'tgram://TOKEN/CHAT'")
