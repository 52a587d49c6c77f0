"""Prometheus metrics of one app: in its own registry, or shared by several workers.

Labels are drawn from small fixed sets (route templates, status codes, rejection reasons),
never from file names, UIDs or anything in an image.

With several worker processes (``multiprocess=True``) prometheus_client's multiprocess mode
is used: every worker writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (which
``medlens serve`` creates, empty, before the workers start) and ``/metrics`` on any worker
adds up all of them. Gauges then combine as their ``multiprocess_mode`` says: in-flight and
queued requests are summed over live workers, readiness is reported per worker (``pid``
label).
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from medlens.errors import ServiceError

__all__ = ["MULTIPROC_ENV", "ServeMetrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServeMetrics:
    """The service's counters, histograms and gauges."""

    def __init__(self, multiprocess: bool = False) -> None:
        self.multiprocess = multiprocess
        if multiprocess:
            _check_multiprocess_dir()
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
            "medlens_requests_in_flight",
            "Requests being handled right now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queued = Gauge(
            "medlens_inference_queued",
            "Requests waiting for an inference slot.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.rejected = Counter(
            "medlens_rejected_requests", "Requests refused, by reason.", ["reason"], registry=r
        )
        # a gauge set to 1, not an Info: the same exposition, and it works with several workers
        self.model_info = Gauge(
            "medlens_model_info",
            "The model being served.",
            ["name", "version", "engine"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.ready = Gauge(
            "medlens_ready",
            "1 when the model is loaded and its weights verified.",
            registry=r,
            multiprocess_mode="liveall",
        )

    def model_loaded(self, name: str, version: str, engine: str) -> None:
        """Publish the model that this process now serves, and that it is ready."""
        self.model_info.labels(name=name, version=version, engine=engine).set(1)
        self.ready.set(1)

    def render(self) -> bytes:
        """The exposition text: this app's registry, or every worker's values added up."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """At worker exit: drop this process's live gauges (in-flight, queued, ready)."""
        if self.multiprocess:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid())


def _check_multiprocess_dir() -> None:
    """prometheus_client reads the variable when it is first imported; refuse to run without."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder or not Path(folder).is_dir():
        raise ServiceError(
            f"several workers need {MULTIPROC_ENV} set to an existing folder "
            "(medlens serve --workers N sets it)"
        )
