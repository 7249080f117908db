"""Counters and histograms for the per-message paths, without prometheus_client's lock.

prometheus_client takes a ``threading.Lock`` for every ``inc`` (a histogram observation
takes two), which was about 4% of a node's CPU per direct message. A node's hot paths all
run on its one Trio thread, so these keep plain numbers instead and export them through a
collector of the node's registry: ``/metrics`` shows them as the library's own would
(``_total`` for a counter; ``_bucket``, ``_count`` and ``_sum`` for a histogram).

Only one thread may add to one of these: the node's. Reading from another (a scrape)
sees a consistent-enough snapshot: each number is read once.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString


class HotCounter:
    """A counter: ``inc`` adds, never decreases."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        self.value += amount


class HotHistogram:
    """A histogram of one label set: ``observe`` counts a value into its bucket."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = (*sorted(bounds), math.inf)
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": the first bound >= value.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        total = 0
        out = []
        for bound, count in zip(self.bounds, self.counts, strict=True):
            total += count
            out.append((floatToGoString(bound), float(total)))
        return out


class _Family:
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)


class HotCounterFamily(_Family):
    """Counters by label values (``labels(...)``), or one (``inc``) without labels."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, documentation, labelnames)
        self._children: dict[tuple[str, ...], HotCounter] = {}
        if not labelnames:
            self._children[()] = HotCounter()

    def labels(self, *values: str) -> HotCounter:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, not {values}")
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = HotCounter()
        return child

    def inc(self, amount: float = 1) -> None:
        self._children[()].inc(amount)

    def collect(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames or None)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.value)
        return family


class HotHistogramFamily(_Family):
    """Histograms by label values (``labels(...)``), each with the same bucket bounds."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.buckets = tuple(buckets)
        self._children: dict[tuple[str, ...], HotHistogram] = {}

    def labels(self, *values: str) -> HotHistogram:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, not {values}")
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = HotHistogram(self.buckets)
        return child

    def collect(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.cumulative(), child.sum)
        return family


class HotMetrics(Collector):
    """The hot families of one registry, exported by it like its own metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._families: list[HotCounterFamily | HotHistogramFamily] = []
        registry.register(self)

    def counter(
        self, name: str, documentation: str, labelnames: Sequence[str] = ()
    ) -> HotCounterFamily:
        family = HotCounterFamily(name, documentation, labelnames)
        self._families.append(family)
        return family

    def histogram(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> HotHistogramFamily:
        family = HotHistogramFamily(name, documentation, labelnames, buckets)
        self._families.append(family)
        return family

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            yield family.collect()
