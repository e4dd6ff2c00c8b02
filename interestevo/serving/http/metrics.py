"""The service's Prometheus metrics, and the middleware that counts every request."""
from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from starlette.routing import Match


class Metrics:
    """Under ``serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set) every process writes its
    counts to files there and a scrape adds up all of them, as prometheus-client's multiprocess
    mode does: whichever process answers, the totals are the service's."""

    def __init__(self, store):
        self.registry = CollectorRegistry()
        self.requests = Counter("interestevo_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("interestevo_http_request_duration_seconds", "HTTP request latency by route",
                                 ["route"], registry=self.registry,
                                 buckets=(.0005, .001, .0025, .005, .01, .015, .02, .025, .05, .1, .25, .5, 1, 2.5, 10))
        self.events = Counter("interestevo_events_applied", "events applied to users' states",
                              registry=self.registry)
        self.duplicates = Counter("interestevo_events_duplicate", "retried events recognised by their id",
                                  registry=self.registry)
        self.batch_size = Histogram("interestevo_recommendation_batch_size", "requests per model call",
                                    registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.reloads = Counter("interestevo_reloads", "model reloads", registry=self.registry)
        self._store = StoreGauges(store)
        self.registry.register(self._store)

    def exposition(self) -> bytes:
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_process)
        every_process.register(self._store)
        return generate_latest(every_process)


class StoreGauges:
    """Users and the store's size, read from the store when scraped (NaN while it is unavailable:
    the other metrics still get scraped)."""

    def __init__(self, store):
        self.store = store

    def collect(self):
        store = self.store
        for name, help, measure in (("interestevo_users", "users with state in the store", store.count_users),
                                    ("interestevo_store_bytes", "size of the store (file bytes, or Redis "
                                                                "used_memory)", store.size_bytes)):
            try:
                value = measure()
            except store.unavailable_errors:
                value = float("nan")
            yield GaugeMetricFamily(name, help, value=value)


class RequestMetrics:
    """ASGI middleware, outermost: counts every request by route, method and status, and times it,
    refusals before routing (401, 404, 413) and 500s included."""

    def __init__(self, app, metrics: Metrics, routes: list):
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def observed_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._count(scope, status, start)

    def _count(self, scope, status: int, start: float) -> None:
        route = scope.get("route")
        if route is None:  # refused before routing: the route it was for
            route = next((r for r in self.routes if r.matches(scope)[0] is Match.FULL), None)
        # "/v1/users/{user}/recommendations", not the template's "{user:path}" (ids may hold a "/")
        name = getattr(route, "path", "unmatched").replace(":path}", "}")
        self.metrics.requests.labels(name, scope["method"], str(status)).inc()
        self.metrics.latency.labels(name).observe(time.perf_counter() - start)
