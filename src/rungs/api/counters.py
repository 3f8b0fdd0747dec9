"""`/metrics` beyond latency: where messages go and what senders send.

- `rungs_deliveries_total{channel, result}`: each delivery attempt this process made, by
  channel (`email`, `sms`, `webhook`, ...) and result (`sent`, `retry`: failed and tried again
  later, `dead`: given up or refused for good);
- `rungs_ingest_requests_total{sender, status}`: each request to an ingest endpoint, by sender
  format (`pagerduty`, `pagerduty_change`, `alertmanager`, `opsgenie`, `events`, `heartbeat`)
  and HTTP status, so a sender refused with 4xx shows at once;
- `rungs_outbox_rows{status}`: the outbox read at scrape (`pending` is the queue depth, `dead`
  what was given up), for every process sharing the database.

The counters are per process (as Prometheus counters are: sum them over processes); the
outbox gauge is the database's.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from rungs.store.outbox import Outcome

__all__ = ["INGEST_ROUTES", "Counters", "OutboxDepth"]

INGEST_ROUTES: dict[str, str] = {  # route template -> sender
    "/v2/enqueue": "pagerduty",
    "/v2/change/enqueue": "pagerduty_change",
    "/v1/integrations/{key}/alertmanager": "alertmanager",
    "/v1/integrations/{key}/events": "events",
    "/v2/alerts": "opsgenie",
    "/v2/alerts/{identifier}/acknowledge": "opsgenie",
    "/v2/alerts/{identifier}/close": "opsgenie",
    "/v1/heartbeats/{key}": "heartbeat",
}
_RESULT = {"sent": "sent", "pending": "retry", "dead": "dead"}
T = TypeVar("T")


class OutboxDepth(Protocol):
    def outbox_depth(self) -> list[tuple[str, int]]: ...


class Counters:
    """A Prometheus collector of this process's counts (thread-safe: results are recorded
    from the dispatcher's loop, requests on the server's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.deliveries: Counter[tuple[str, str]] = Counter()
        self.ingest: Counter[tuple[str, str]] = Counter()
        self.depth: OutboxDepth | None = None  # set by the app: the views

    def delivered(self, outcomes: list[Outcome]) -> None:
        """Count a batch of delivery results (notices included, as the messages they are)."""
        with self._lock:
            for o in outcomes:
                p = o.row.payload
                channel = "webhook" if o.row.kind == "webhook" else str(p.get("channel", "?"))
                self.deliveries[(channel, _RESULT.get(o.mark["status"], o.mark["status"]))] += 1

    def request(self, route: str, status: int) -> None:
        """One request answered; counted when `route` is an ingest endpoint."""
        sender = INGEST_ROUTES.get(route)
        if sender is not None:
            with self._lock:
                self.ingest[(sender, str(status))] += 1

    def counting(self, record: Callable[[list[Outcome]], T]) -> Callable[[list[Outcome]], T]:
        """`record` (the engine's: results to the writer), counting each batch on its way."""

        def record_counted(outcomes: list[Outcome]) -> T:
            self.delivered(outcomes)
            return record(outcomes)

        return record_counted

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            deliveries, ingest = dict(self.deliveries), dict(self.ingest)
        d = CounterMetricFamily(
            "rungs_deliveries",
            "Delivery attempts by channel and result",
            labels=["channel", "result"],
        )
        for (channel, result), n in sorted(deliveries.items()):
            d.add_metric([channel, result], n)
        yield d
        i = CounterMetricFamily(
            "rungs_ingest_requests",
            "Ingest requests by sender and HTTP status",
            labels=["sender", "status"],
        )
        for (sender, status), n in sorted(ingest.items()):
            i.add_metric([sender, status], n)
        yield i
        if self.depth is not None:
            g = GaugeMetricFamily("rungs_outbox_rows", "Outbox rows by status", labels=["status"])
            for status, n in self.depth.outbox_depth():
                g.add_metric([status], n)
            yield g
