"""The consumer's figures (``consumer.Figures``) for Prometheus, on ``--metrics-port``.

Served by the gateway's own endpoint (``gateway.service.metrics.MetricsServer``: ``GET /metrics`` on
127.0.0.1, in the event loop). The database thread adds to the counters while a scrape reads
them; a scrape may see a batch half counted, never a count that goes backwards.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from central.consumer import Consumer


class CentralCollector(Collector):
    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def collect(self) -> Iterator[Metric]:
        f = self._consumer.figures
        for name, doc, value in [
            ("messages", "MQTT messages taken from the broker", f.messages),
            ("stored_events", "Events committed to the database", f.stored),
            ("repeat_events", "Events dropped as already stored (same id)", f.repeats),
            ("seq_conflicts", "Events whose seq another id holds", f.conflicts),
            ("status_changes", "Gateway online/offline changes recorded", f.statuses),
            ("gaps_reported", "seq gaps reported past the grace period", f.gaps_reported),
        ]:
            yield CounterMetricFamily(f"silentgate_central_{name}", doc, value=value)
        rejected = CounterMetricFamily(
            "silentgate_central_rejected", "Messages rejected, by reason", labels=["reason"]
        )
        for reason, n in sorted(f.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        yield GaugeMetricFamily(
            "silentgate_central_open_gaps", "seq gaps reported and not yet closed",
            value=f.open_gaps,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "silentgate_central_connected", "1 while connected to the broker",
            value=float(self._consumer.connected.is_set()),
        )  # fmt: skip
        commit = HistogramMetricFamily(
            "silentgate_central_commit_seconds",
            "From a batch handed to the database to its commit",
        )
        commit.add_metric([], f.commit_seconds.buckets(), sum_value=f.commit_seconds.total)
        yield commit
