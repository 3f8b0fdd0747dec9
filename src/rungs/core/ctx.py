"""The working state of one `decide` call: the case being changed and the effects so far."""

from __future__ import annotations

from typing import Any

from rungs.core.model import CallWebhook, Case, Effect, Metric, Notify, Record
from rungs.core.plan import Plan, plan_of
from rungs.core.targets import people_of
from rungs.core.timers import StepTimer
from rungs.policy.model import CHANNELS, Policy, SlaPolicy, Target

__all__ = ["Ctx", "NO_CHANNELS_WHY"]

NO_CHANNELS_WHY = "the policy has no channels section"  # a `not_sent` entry's `why`


class Ctx:
    """Collects effects for one decision; every change goes through here so none is lost.

    `sla` is the case's SLA policy (None when it has none), looked up once per decision.
    """

    __slots__ = ("case", "effects", "now", "owned", "plan", "policy", "sla")

    def __init__(self, case: Case, now: int, policy: Policy) -> None:
        self.case = case
        self.now = now
        self.policy = policy
        plan = plan_of(policy)
        self.plan: Plan = plan
        slas, customer = plan.slas, case.customer  # `Plan.sla_of`, without its call mostly
        self.sla: SlaPolicy | None = (
            slas[customer] if customer in slas else plan.sla_of(policy, customer)
        )
        self.effects: list[Effect] = []
        self.owned: set[str] | None = None  # metrics copied so far; None: not even the dict

    def metric(self, name: str) -> Metric | None:
        """The case's metric, copied before its first change in this decision.

        `Case.copy` shares the metrics dict with the caller's case: the first write copies it.
        """
        case = self.case
        m = case.metrics.get(name)
        if m is None:
            return None
        owned = self.owned
        if owned is None:
            owned = self._own_metrics()
        elif name in owned:
            return m
        mine = case.metrics[name] = m.copy()
        owned.add(name)
        return mine

    def new_metric(self, name: str) -> Metric:
        owned = self._own_metrics() if self.owned is None else self.owned
        m = self.case.metrics[name] = Metric()
        owned.add(name)
        return m

    def _own_metrics(self) -> set[str]:
        self.case.metrics = self.case.metrics.copy()
        owned: set[str] = set()
        self.owned = owned
        return owned

    def record(self, kind: str, **fields: Any) -> None:
        fields["at"] = self.now  # the kwargs dict is ours: no second dict per entry
        fields["case"] = self.case.id
        fields["kind"] = kind
        self.effects.append(Record(fields))

    def webhook(self, url: str, body: dict[str, Any]) -> None:
        self.case.seq += 1
        self.effects.append(
            CallWebhook(self.case.id, url, body, f"{self.case.id}:w{self.case.seq}")
        )

    def send(self, person: str, channel: str, level: int, reason: str) -> None:
        """One message now: a `notified` timeline entry and its outbox row.

        A page that cannot go out says so at once with a `not_sent` entry after `notified`:
        without a `channels` section (its outbox row is still written, and skipped, so the
        outbox keeps what was planned), or for a person without a contact for the channel
        (no row: the next contact method is tried at once, as after a permanent failure).
        The person joins the round's `paged` (for "handled by" notices): the latest channel,
        except that a voice call never replaces an earlier page's channel.
        """
        case = self.case
        case.seq = seq = case.seq + 1
        self.record("notified", to=person, channel=channel, level=level, reason=reason)
        if not self.plan.sends:
            self.record("not_sent", to=person, channel=channel, why=NO_CHANNELS_WHY)
        else:
            p = self.policy.people.get(person)
            if p is None or channel not in p.contacts:
                why = f"no person '{person}' in the policy" if p is None else (
                    f"{person} has no {channel} contact"
                )  # fmt: skip
                self.record("not_sent", to=person, channel=channel, why=why)
                self.next_method(person, channel, level)
                return
        self.effects.append(Notify(case.id, person, channel, level, reason, f"{case.id}:n{seq}"))
        paged = case.paged
        if (channel != "voice" or person not in paged) and paged.get(person) != channel:
            case.paged = {**paged, person: channel}  # replaced, never changed: shared

    def next_method(self, person: str, channel: str, level: int) -> None:
        """`channel` is dead for `person` in this case: page them by their next contact
        method now (their notify steps' order, then the others'), or record them
        `unreachable` when none is left."""
        case = self.case
        failed = {**case.failed, person: sorted({*case.failed.get(person, ()), channel})}
        case.failed = failed
        p = self.policy.people.get(person)
        if p is None:
            return
        order = [s.via for s in p.notify] + [c for c in CHANNELS if c in p.contacts]
        nxt = next(
            (c for c in dict.fromkeys(order) if c in p.contacts and c not in failed[person]), None
        )
        if nxt is None:
            self.record("unreachable", to=person, tried=failed[person])
        else:
            self.send(person, nxt, level, f"fallback from {channel}")

    def notify_person(self, person: str, level: int, reason: str) -> None:
        """Start a person's own notification rules: `0m` steps now, later ones as timers.
        A person the policy does not know (an on-call override naming nobody in it) gets a
        `not_sent` entry, so the page is not lost silently."""
        p = self.policy.people.get(person)
        if p is None:
            self.record("not_sent", to=person, why=f"no person '{person}' in the policy")
            return
        case = self.case
        for step in p.notify:
            if step.after == 0:
                self.send(person, step.via, level, reason)
            else:
                case.seq = seq = case.seq + 1
                self.effects.append(
                    StepTimer.schedule(
                        case.id, self.now + step.after, seq, person, step.via, level,
                        case.epoch, reason,
                    )
                )  # fmt: skip

    def notify_targets(
        self, targets: tuple[Target, ...], level: int, reason: str, fallback: Target | None = None
    ) -> None:
        """Notify each person the targets name now, once; an override used or nobody on call
        is recorded."""
        seen: set[str] = set()
        for t in targets:
            people = [t.id] if t.kind == "person" else people_of(
                self.policy, t, self.now, fallback, self.record
            )  # fmt: skip
            for person in people:
                if person not in seen:
                    seen.add(person)
                    self.notify_person(person, level, reason)
