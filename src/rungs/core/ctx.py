"""The working state of one `decide` call: the case being changed and the effects so far."""

from __future__ import annotations

from typing import Any

from rungs.core.model import (
    CallWebhook,
    CancelTimers,
    Case,
    Effect,
    Metric,
    Notify,
    Record,
    ScheduleTimer,
)
from rungs.core.plan import Plan, plan_of
from rungs.policy.model import Policy, Target
from rungs.schedules.oncall import on_call

__all__ = ["Ctx"]


class Ctx:
    """Collects effects for one decision; every change goes through here so none is lost."""

    __slots__ = ("_sla", "case", "effects", "now", "owned", "plan", "policy")

    def __init__(self, case: Case, now: int, policy: Policy) -> None:
        self.case = case
        self.now = now
        self.policy = policy
        self.plan: Plan = plan_of(policy)
        self.effects: list[Effect] = []
        self.owned: set[str] | None = None  # metrics copied so far; None: not even the dict
        self._sla: Any = False  # the case's SLA policy, looked up once per decision

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

    def schedule(self, key: str, due: int, payload: tuple[Any, ...] = ()) -> None:
        self.effects.append(ScheduleTimer(self.case.id, key, due, payload))

    def cancel(self, prefix: str) -> None:
        self.effects.append(CancelTimers(self.case.id, prefix))

    def webhook(self, url: str, body: dict[str, Any]) -> None:
        self.case.seq += 1
        self.effects.append(
            CallWebhook(self.case.id, url, body, f"{self.case.id}:w{self.case.seq}")
        )

    def send(self, person: str, channel: str, level: int, reason: str) -> None:
        """One message now: a `notified` timeline entry and its outbox row."""
        case = self.case
        case.seq = seq = case.seq + 1
        self.record("notified", to=person, channel=channel, level=level, reason=reason)
        self.effects.append(Notify(case.id, person, channel, level, reason, f"{case.id}:n{seq}"))

    def notify_person(self, person: str, level: int, reason: str) -> None:
        """Start a person's own notification rules: `0m` steps now, later ones as timers."""
        p = self.policy.people.get(person)
        if p is None:
            return
        case = self.case
        for step in p.notify:
            if step.after == 0:
                self.send(person, step.via, level, reason)
            else:
                case.seq = seq = case.seq + 1
                self.effects.append(
                    ScheduleTimer(
                        case.id,
                        f"step:{seq}",
                        self.now + step.after,
                        (person, step.via, level, case.epoch, reason),
                    )
                )

    def people_of(self, target: Target, fallback: Target | None = None) -> list[str]:
        """The people a target names now; a schedule with nobody on call uses a fallback."""
        policy = self.policy
        if target.kind == "person":
            return [target.id]
        schedule_id = target.id
        if target.kind == "team":
            team = policy.teams[target.id]
            if team.schedule is None:
                return list(team.members)
            schedule_id = team.schedule
        schedule = policy.schedules[schedule_id]
        found = on_call(schedule, self.now)
        if found.people:
            if found.source == "override":
                self.record("override_used", schedule=schedule_id, who=list(found.people))
            return list(found.people)
        chosen = fallback or (_parse(schedule.fallback) if schedule.fallback else None)
        self.record(
            "nobody_on_call",
            schedule=schedule_id,
            fallback=str(chosen) if chosen else None,
        )
        if chosen is None or (chosen.kind == "schedule" and chosen.id == schedule_id):
            return []
        return self.people_of(chosen)

    def notify_targets(
        self, targets: tuple[Target, ...], level: int, reason: str, fallback: Target | None = None
    ) -> None:
        seen: set[str] = set()
        for t in targets:
            for person in self.people_of(t, fallback):
                if person not in seen:
                    seen.add(person)
                    self.notify_person(person, level, reason)


def _parse(text: str) -> Target:
    kind, _, ident = text.partition(":")
    return Target(kind, ident)
