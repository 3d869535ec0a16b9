"""Prometheus metrics of one app (its own registry, so several apps in a process don't clash)."""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServeMetrics:
    """Requests, routes per model, latencies, batch sizes and upstream errors."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("routereval_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("routereval_request_latency_seconds", "Request latency by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.routes = Counter("routereval_routes", "Prompts routed to each model", ["model"], registry=self.registry)
        self.batch_size = Histogram("routereval_batch_size", "Prompts per encoder batch",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)
        self.batch_seconds = Histogram("routereval_batch_seconds", "Seconds to embed and route one batch",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.upstream_errors = Counter("routereval_upstream_errors", "Failed upstream calls by model and kind",
                                       ["model", "kind"], registry=self.registry)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def count_routes(self, names: Any) -> None:
        for name in names:
            self.routes.labels(model=name).inc()
