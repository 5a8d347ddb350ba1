"""Prometheus figures of a relay process, read at scrape time from the relay itself.

Per partition ``relay-<i>of<N>`` (``relay`` when there is one): the tracking position,
the lag behind the event log in events and in seconds (the age of the oldest event not
yet relayed), whether this process holds the partition's lease, the signals sent and
the failed batches. Every relay of a leased set reports the lag of all N partitions
(it is one figure in the database, the same from each), so the lag of a partition
nobody holds still shows; ``closeloop_relay_partition_held`` says who works on it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from domain.log_age import EventAges
from workflows.relay import LeasedRelay, Relay


class RelayCollector(Collector):
    def __init__(self, relay: Relay | LeasedRelay) -> None:
        self.relay = relay
        self._ages: dict[int, EventAges] = {}  # per application (one per partition)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # read at scrape time only

    def _relays(self) -> dict[str, tuple[Relay, bool]]:
        if isinstance(self.relay, LeasedRelay):
            return {
                r.partition.name: (r, i in self.relay.held) for i, r in self.relay.relays.items()
            }
        return {self.relay.partition.name: (self.relay, True)}

    def _lag_seconds(self, app: Any, position: int, newest: int, now: float) -> float:
        ages = self._ages.get(id(app))
        if ages is None:
            ages = self._ages[id(app)] = EventAges(app.recorder, app.mapper)
        return ages.lag_seconds(position, newest, now)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        relays = self._relays()
        labels = ["partition"]
        up = GaugeMetricFamily("closeloop_relay_up", "1 when the relay's positions could be read")
        held = GaugeMetricFamily(
            "closeloop_relay_partition_held",
            "1 when this process holds the partition (leases), else 0",
            labels=labels,
        )
        sent = CounterMetricFamily(
            "closeloop_relay_signals",
            "signal_with_start calls Temporal accepted, by partition",
            labels=labels,
        )
        failed = CounterMetricFamily(
            "closeloop_relay_failed_batches",
            "Batches that failed and were retried (Temporal or the store down), by partition",
            labels=labels,
        )
        for name, (relay, holds) in relays.items():
            held.add_metric([name], 1 if holds else 0)
            sent.add_metric([name], relay.signals_sent)
            failed.add_metric([name], relay.failures)
        yield from (held, sent, failed)
        position = GaugeMetricFamily(
            "closeloop_relay_position", "Last notification id relayed, by partition", labels=labels
        )
        lag = GaugeMetricFamily(
            "closeloop_relay_lag_events",
            "Events recorded but not yet relayed, by partition",
            labels=labels,
        )
        lag_seconds = GaugeMetricFamily(
            "closeloop_relay_lag_seconds",
            "Age of the oldest event not yet relayed (0 when caught up), by partition",
            labels=labels,
        )
        newest_family = GaugeMetricFamily(
            "closeloop_event_log_max_notification_id", "Newest notification id in the event log"
        )
        try:
            first_relay = next(iter(relays.values()))[0]
            app = first_relay.app
            newest = int(app.recorder.max_notification_id() or 0)
            now = time.time()
            for name, (relay, _) in relays.items():
                at = relay.position()
                position.add_metric([name], at)
                lag.add_metric([name], max(0, newest - at))
                lag_seconds.add_metric([name], round(self._lag_seconds(app, at, newest, now), 3))
        except Exception:  # the store is down: say so, never fail the scrape
            up.add_metric([], 0)
            yield up
            return
        newest_family.add_metric([], newest)
        up.add_metric([], 1)
        yield from (up, newest_family, position, lag, lag_seconds)
