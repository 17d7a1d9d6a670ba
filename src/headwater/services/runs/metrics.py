"""Prometheus metrics of the service (`/metrics`).

From the store, read at each scrape (the same answer from every serve process): runs
by status, queue depth, lease losses (runs closed as "worker lost").  From this
process's run workers: run durations and customers read and written.  prometheus-client
metrics are thread-safe: run threads observe them as their runs end.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from headwater.adapters.store import queue
from headwater.kernel.entities import Run, RunStatus
from headwater.services.app import App


class _StoreCollector(Collector):
    def __init__(self, app: App) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counts = queue.count_by_status(self.app.engine)
        by_status = GaugeMetricFamily(
            "headwater_runs", "Runs in the store by status.", labels=["status"]
        )
        for status in RunStatus:
            by_status.add_metric([status.value], counts.get(status.value, 0))
        yield by_status
        yield GaugeMetricFamily(
            "headwater_queue_depth",
            "Runs waiting in the queue.",
            value=counts.get(RunStatus.QUEUED.value, 0),
        )
        yield CounterMetricFamily(
            "headwater_lease_losses",
            "Runs closed as failed because their worker was lost (lease lapsed).",
            value=queue.lease_losses(self.app.engine),
        )


class Metrics:
    """The service's metrics in their own registry (see the module docstring)."""

    def __init__(self, app: App) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(app))
        self.duration = Histogram(
            "headwater_run_duration_seconds",
            "Wall time of runs executed by this process, by how they ended.",
            ["status"],
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600),
            registry=self.registry,
        )
        self.read = Counter(
            "headwater_customers_read",
            "Customers read from Stripe by runs of this process.",
            registry=self.registry,
        )
        self.written = Counter(
            "headwater_customers_written",
            "Customers written to the warehouse by runs of this process.",
            registry=self.registry,
        )

    def run_ended(self, run: Run, seconds: float) -> None:
        self.duration.labels(run.status.value).observe(seconds)
        self.read.inc(int(run.counters.get("read", 0)))
        self.written.inc(int(run.counters.get("written", 0)))
