"""How messages leave Rungs: the compiled `channels` section of a policy.

```yaml
channels:
  email: {host: 127.0.0.1, port: 2525, sender: rungs@acme.test, security: none,  # starttls, tls
          username_env: RUNGS_SMTP_USER, password_env: RUNGS_SMTP_PASSWORD}      # both optional
  webhook: {secret_env: RUNGS_WEBHOOK_SECRET}
  sms: {url: "https://provider.example/2010-04-01/Accounts/{account}/Messages.json",
        account_env: RUNGS_SMS_ACCOUNT, token_env: RUNGS_SMS_TOKEN, sender: "+4930000000"}
  voice: {url: ".../Accounts/{account}/Calls.json", account_env: ..., token_env: ..., sender: ...}
  slack: {}            # a person's `slack` contact is an incoming-webhook URL
  apprise: {}          # a person's `apprise` contact is an Apprise URL
  log: {}              # trying Rungs out: email, sms and voice without a section above are
                       # written to the server's log, rendered, instead of being sent
  retry: {attempts: 5, backoff: 5s, max_backoff: 10m, lease: 1m}
  bundle: 30s          # one message per person and channel within this window (default 0)
  rate_limits: {person: 20/1h, channel: {sms: 100/1m}}   # P1 goes past them
  handled_notice: true # "handled by X" to everyone paged, on acknowledge and resolve
```

Secrets come only from the environment: a field ending in `_env` names the variable, read
when a message is sent; only names with the deployment's prefix (`rungs.policy.secrets`).
The section is validated by `rungs.policy.sections.channels`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from rungs.time.instant import format_duration

__all__ = [
    "Channels",
    "ChannelConfig",
    "EmailConfig",
    "WebhookConfig",
    "TwilioConfig",
    "SlackConfig",
    "AppriseConfig",
    "LogConfig",
    "Retry",
    "RateLimit",
    "NO_CHANNELS",
    "channels_of",
]


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
class LogConfig:
    """`channels.log`: messages for channels the policy does not configure are written to the
    server's log instead (for a first try of Rungs; nothing leaves the machine)."""


ChannelConfig = EmailConfig | WebhookConfig | TwilioConfig | SlackConfig | AppriseConfig | LogConfig


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
        return f"{self.count}/{format_duration(self.per)}"


LOG = "log"
_LOGGED = ("email", "sms", "voice")  # the channels `log` stands in for when not configured
_DEFAULTS: Mapping[str, ChannelConfig] = {
    "webhook": WebhookConfig(),
    "slack": SlackConfig(),
    "apprise": AppriseConfig(),
}  # the channels that need nothing but the person's URL


@dataclass(frozen=True, eq=False)
class Channels(Mapping[str, ChannelConfig]):
    """The configured channels by name (`email` -> EmailConfig, ...) and delivery settings.

    With `log` configured, a channel configured neither itself nor by default (webhook, Slack
    and Apprise need nothing) maps to the `LogConfig`: its messages go to the log.
    """

    configs: Mapping[str, ChannelConfig] = field(default_factory=dict)
    retry: Retry = Retry()
    bundle: int = 0
    person_limit: RateLimit | None = None
    channel_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    handled_notice: bool = True
    declared: bool = False  # the policy has a `channels` section

    def __getitem__(self, name: str) -> ChannelConfig:
        configs = self.configs
        if name in configs:
            return configs[name]
        if name in _DEFAULTS:
            return _DEFAULTS[name]
        if LOG in configs and name in _LOGGED:
            return configs[LOG]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.configs)

    def __len__(self) -> int:
        return len(self.configs)

    def __contains__(self, name: object) -> bool:
        configs = self.configs
        return name in configs or name in _DEFAULTS or (LOG in configs and name in _LOGGED)


NO_CHANNELS = Channels()  # a policy without a `channels` section: nothing is sent


class _HasChannels(Protocol):
    @property
    def channels(self) -> Channels: ...


def channels_of(policy: _HasChannels | None) -> Channels:
    """The compiled channels of a policy; `NO_CHANNELS` when there is no policy yet."""
    return NO_CHANNELS if policy is None else policy.channels
