"""Prometheus metrics of one app, in its own registry.

Labels are drawn from small fixed sets (route templates, status codes, rejection reasons),
never from file names, UIDs or anything in an image.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

__all__ = ["ServeMetrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServeMetrics:
    """The service's counters, histograms and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "medlens_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.request_latency = Histogram(
            "medlens_request_latency_seconds",
            "Time from request to response start, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_latency = Histogram(
            "medlens_inference_latency_seconds",
            "Time to read, preprocess and classify one upload (model engine included).",
            ["engine"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "medlens_requests_in_flight", "Requests being handled right now.", registry=r
        )
        self.queued = Gauge(
            "medlens_inference_queued", "Requests waiting for an inference slot.", registry=r
        )
        self.rejected = Counter(
            "medlens_rejected_requests", "Requests refused, by reason.", ["reason"], registry=r
        )
        self.model_info = Info("medlens_model", "The model being served.", registry=r)
        self.ready = Gauge(
            "medlens_ready", "1 when the model is loaded and its weights verified.", registry=r
        )

    def set_model(self, name: str, version: str, engine: str) -> None:
        self.model_info.info({"name": name, "version": version, "engine": engine})

    def render(self) -> bytes:
        return generate_latest(self.registry)
