"""The daemon's figures for people and for Prometheus.

``snapshot`` gathers what the daemon counts about itself (reads per reader and antenna, frames
rejected, events by type, the pipeline's stage time per run, publish latency to the PUBACK) into
the ``counters`` of the retained status. ``MetricsServer``, off by default (``[metrics]``),
serves the same figures in Prometheus' text format on 127.0.0.1: a plain asyncio server in the
daemon's own loop, so no thread reads the counters while they change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Final, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway.telemetry import Histogram, Telemetry

# Named, not __name__: the journal shows this name on every line, wherever the module lives.
log = logging.getLogger("gateway.metrics")

MAX_REQUEST_BYTES: Final = 8192
UP_STATES: Final = ("ok",)


@runtime_checkable
class FrameCounters(Protocol):
    """A session that can say how many frames its decoder rejected, by reason."""

    def frame_counters(self) -> Mapping[str, int]: ...


def snapshot(daemon: Telemetry) -> dict[str, object]:
    """The counters of the retained status."""
    pipeline, uplink = daemon.pipeline, daemon.uplink
    figures: dict[str, object] = {
        "reads": {c.name: c.reads for c in daemon.contexts},
        "events": dict(pipeline.events_by_type),
        "published": uplink.published,
        "stage_ms_p99": _ms(pipeline.stage_seconds.quantile(0.99)),
        "publish_ms_p99": _ms(uplink.publish_seconds.quantile(0.99)),
    }
    by_antenna = {c.name: dict(c.reads_by_antenna) for c in daemon.contexts if c.reads_by_antenna}
    if by_antenna:
        figures["reads_by_antenna"] = by_antenna
    rejected = {name: dict(c) for name, c in _frame_counters(daemon) if any(c.values())}
    if rejected:
        figures["frames_rejected"] = rejected
    return figures


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _frame_counters(daemon: Telemetry) -> Iterator[tuple[str, Mapping[str, int]]]:
    for ctx, session in zip(daemon.contexts, daemon.sessions, strict=True):
        if isinstance(session, FrameCounters):
            yield ctx.name, session.frame_counters()


class GatewayCollector(Collector):
    def __init__(self, daemon: Telemetry) -> None:
        self._daemon = daemon

    def collect(self) -> Iterator[Metric]:
        d = self._daemon
        reads = CounterMetricFamily(
            "silentgate_reads", "Tag and card reads", labels=["device", "antenna"]
        )
        for ctx in d.contexts:
            for antenna, n in (ctx.reads_by_antenna or {0: ctx.reads}).items():
                reads.add_metric([ctx.name, str(antenna)], n)
        yield reads
        unmapped = CounterMetricFamily(
            "silentgate_reads_unmapped", "Reads on antennas no zone is mapped to", labels=["device"]
        )
        for ctx in d.contexts:
            unmapped.add_metric([ctx.name], ctx.unmapped_reads)
        yield unmapped
        rejected = CounterMetricFamily(
            "silentgate_frames_rejected", "Frames rejected by decoders", labels=["device", "reason"]
        )
        for name, counters in _frame_counters(d):
            for reason, n in counters.items():
                rejected.add_metric([name, reason], n)
        yield rejected
        up = GaugeMetricFamily("silentgate_device_up", "1 when the device is ok", labels=["device"])
        for device, state in d.status.devices.items():
            up.add_metric([device], 1.0 if state in UP_STATES else 0.0)
        yield up
        events = CounterMetricFamily("silentgate_events", "Events stored", labels=["type"])
        for kind, n in d.pipeline.events_by_type.items():
            events.add_metric([kind], n)
        yield events
        yield from self._outbox()
        yield _histogram(
            "silentgate_pipeline_stage_seconds", "Stage time per pipeline run",
            d.pipeline.stage_seconds,
        )  # fmt: skip
        yield _histogram(
            "silentgate_publish_seconds", "Publish to PUBACK", d.uplink.publish_seconds
        )
        yield CounterMetricFamily(
            "silentgate_published_events", "Events acknowledged by the broker",
            value=d.uplink.published,
        )  # fmt: skip
        rejected = CounterMetricFamily(
            "silentgate_inbound_rejected", "MQTT messages refused, dropped or failed",
            labels=["kind", "reason"],
        )  # fmt: skip
        for kind, reasons in d.uplink.inbound.rejections().items():
            for reason, n in reasons.items():
                rejected.add_metric([kind, reason], n)
        yield rejected

    def _outbox(self) -> Iterator[Metric]:
        backlog = self._daemon.outbox.backlog()
        yield GaugeMetricFamily(
            "silentgate_outbox_backlog", "Events not yet acknowledged", value=backlog.count
        )
        yield GaugeMetricFamily(
            "silentgate_outbox_oldest_age_seconds", "Age of the oldest undelivered event",
            value=backlog.oldest_age_s(_now()),
        )  # fmt: skip
        yield GaugeMetricFamily("silentgate_outbox_bytes", "Outbox file size", value=backlog.bytes)
        lost = CounterMetricFamily(
            "silentgate_outbox_lost_events", "Events dropped or lost", labels=["why"]
        )
        lost.add_metric(["dropped"], sum(backlog.dropped.values()))
        lost.add_metric(["overflow"], backlog.lost)
        yield lost
        state = GaugeMetricFamily(
            "silentgate_storage_state", "1 for the outbox storage's state", labels=["state"]
        )
        for name in ("ok", "full", "failed"):
            state.add_metric([name], float(backlog.storage.state == name))
        yield state


def _histogram(name: str, doc: str, hist: Histogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc)
    family.add_metric([], hist.buckets(), sum_value=hist.total)
    return family


def _now() -> float:
    import time  # noqa: PLC0415

    return time.time()


class MetricsServer:
    """``GET /metrics`` on the configured address; anything else is a 404. The collector is the
    daemon's (``GatewayCollector``) or the central consumer's."""

    def __init__(self, collector: Collector, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.host, self.port = host, port

    async def run(self) -> None:
        server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        async with server:
            await server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.closing(writer):
            try:
                async with asyncio.timeout(5):
                    head = await reader.readuntil(b"\r\n\r\n")
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            if head.startswith(b"GET /metrics ") and len(head) < MAX_REQUEST_BYTES:
                body = generate_latest(self.registry)
                status = b"200 OK"
            else:
                body, status = b"not found\n", b"404 Not Found"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; version=0.0.4\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
                + body
            )  # fmt: skip
            with contextlib.suppress(ConnectionError):
                await writer.drain()
