"""Operations routes: `/healthz` and Prometheus `/metrics` (latency, engine lateness,
cases by status, timers pending).

`/healthz` answers 200 while this process can page: the database answers and none of its
workers (the writer, the engine loop, the dispatcher) is stuck, each judged on real time
(the monotonic clock, also under `--virtual-clock`); 503 otherwise, with `stuck` naming them.
It also lists the integrations whose `key_env` is unset (they take no events; the status
stays 200, since paging works). A load balancer checks the status code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from rungs.engine import Engine
from rungs.store.views import Views
from rungs.time.instant import format_utc

__all__ = ["Metrics", "health_router"]


class Metrics:
    """The process's registry: request latency, timer lateness, and counts read at scrape."""

    def __init__(self, views: Views) -> None:
        self.views = views
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "rungs_api_latency_seconds", "API request latency", ["route"], registry=self.registry
        )
        self.lateness = Gauge(
            "rungs_engine_lateness_seconds",
            "Due-to-fired delay of the last timer",
            registry=self.registry,
        )
        self.lateness_h = Histogram(
            "rungs_engine_lateness_hist_seconds",
            "Due-to-fired delay of timers",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.registry.register(self)  # type: ignore[arg-type]

    def observe(self, late_us: int) -> None:
        """A timer fired `late_us` after it was due."""
        self.lateness.set(late_us / 1e6)
        self.lateness_h.observe(late_us / 1e6)

    def collect(self) -> Iterator[Metric]:
        by_status, pending = self.views.counts()
        g = GaugeMetricFamily("rungs_cases", "Cases by status", labels=["status"])
        for status, n in by_status:
            g.add_metric([status], n)
        yield g
        yield GaugeMetricFamily("rungs_timers_pending", "Timers waiting to come due", value=pending)


def health_router(views: Views, metrics: Metrics, engine: Engine, *, role: str) -> APIRouter:
    router = APIRouter(tags=["ops"])
    engine.timers.on_fired = metrics.observe

    @router.get("/healthz", responses={503: {"description": "a worker is stuck, or no database"}})
    def healthz() -> JSONResponse:
        workers = engine.health()
        stuck = [name for name, h in workers.items() if h["stuck"]]
        try:
            views.health()
            database: str | None = None
        except Exception as exc:  # a health check answers, whatever the database does
            database = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            stuck.append("database")
        try:
            unset: list[dict[str, str]] | None = engine.keys_unset()
        except Exception:  # the policy could not be read: the database line says why
            unset = None
        body: dict[str, Any] = {
            "status": "stuck" if stuck else "ok",
            "stuck": stuck,
            "role": role,
            "pid": os.getpid(),  # which process answered, with `rungs serve --workers N`
            "now": format_utc(views.clock.now()),
            "virtual_clock": views.clock.virtual,
            "policy_file_error": views.policy_file_error(),  # paging goes on: still 200
            "database_error": database,
            **workers,
            "integrations_without_key": unset,
        }
        return JSONResponse(body, status_code=503 if stuck else 200)

    @router.get("/metrics", response_class=PlainTextResponse)
    def metrics_text() -> Response:
        return Response(generate_latest(metrics.registry), media_type="text/plain; version=0.0.4")

    return router
