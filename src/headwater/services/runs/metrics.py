"""Prometheus metrics of the service (`/metrics`), per workspace.

A scrape answers the figures of the caller's workspace alone (DESIGN.md §8: a token of
one workspace sees nothing of another): from the store, read at each scrape (the same
answer from every serve process), its runs by status, queue depth and lease losses
(runs closed as "worker lost"); from this process's run workers, the durations of its
runs and the customers they read and wrote.  prometheus-client metrics are
thread-safe: run threads observe them as their runs end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from headwater.adapters.store import queue
from headwater.kernel.entities import Run, RunStatus
from headwater.services.app import App


class _StoreCollector(Collector):
    def __init__(self, app: App, workspace_id: str) -> None:
        self.app = app
        self.workspace_id = workspace_id

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counts = queue.count_by_status(self.app.engine, self.workspace_id)
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
            value=queue.lease_losses(self.app.engine, self.workspace_id),
        )


class _Observed:
    """One workspace's metrics in their own registry."""

    def __init__(self, app: App, workspace_id: str) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(app, workspace_id))
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


class Metrics:
    """The service's metrics, a registry per workspace (see the module docstring)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._workspaces: dict[str, _Observed] = {}

    def _of(self, workspace_id: str) -> _Observed:
        with self._lock:
            observed = self._workspaces.get(workspace_id)
            if observed is None:
                observed = self._workspaces[workspace_id] = _Observed(self.app, workspace_id)
            return observed

    def registry(self, workspace_id: str) -> CollectorRegistry:
        """What a scrape by a caller of `workspace_id` answers."""
        return self._of(workspace_id).registry

    def run_ended(self, run: Run, seconds: float, workspace_id: str) -> None:
        observed = self._of(workspace_id)
        observed.duration.labels(run.status.value).observe(seconds)
        observed.read.inc(int(run.counters.get("read", 0)))
        observed.written.inc(int(run.counters.get("written", 0)))
