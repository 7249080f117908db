"""``metrics_hot``: the lock-free families export what prometheus_client's own would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from hubbub.metrics_hot import HotMetrics

BOUNDS = (0.001, 0.01, 0.1, 1.0)
# Values on a bound belong to it ("le"), values past the last to +Inf.
VALUES = (0.0, 0.001, 0.0011, 0.01, 0.05, 0.1, 1.0, 3.0, 0.0005)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_a_hot_histogram_exports_the_same_samples_as_prometheus_clients() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("h_seconds", "doc", ["kind"], buckets=BOUNDS, registry=theirs)
    hot = HotMetrics(ours).histogram("h_seconds", "doc", ["kind"], BOUNDS)
    for value in VALUES:
        reference.labels("direct").observe(value)
        hot.labels("direct").observe(value)
    reference.labels("group").observe(0.5)
    hot.labels("group").observe(0.5)
    assert _samples(ours) == _samples(theirs)
    assert ours.get_sample_value("h_seconds_bucket", {"kind": "direct", "le": "0.001"}) == 3


def test_hot_counters_export_the_same_samples_as_prometheus_clients() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    plain = Counter("frames", "doc", registry=theirs)
    labelled = Counter("stored", "doc", ["kind"], registry=theirs)
    hot = HotMetrics(ours)
    hot_plain = hot.counter("frames", "doc")
    hot_labelled = hot.counter("stored", "doc", ["kind"])
    for counter in (plain, hot_plain):
        counter.inc()
        counter.inc(4)
    for family in (labelled, hot_labelled):
        family.labels("direct").inc(2)
        family.labels("group").inc()
    assert _samples(ours) == _samples(theirs)
    assert ours.get_sample_value("frames_total") == 5


def test_a_hot_counter_refuses_to_go_down_and_wrong_labels() -> None:
    hot = HotMetrics(CollectorRegistry())
    counter = hot.counter("frames", "doc")
    with pytest.raises(ValueError, match="only go up"):
        counter.inc(-1)
    labelled = hot.counter("stored", "doc", ["kind"])
    with pytest.raises(ValueError, match="takes labels"):
        labelled.labels("direct", "extra")
    histogram = hot.histogram("h", "doc", ["kind"], BOUNDS)
    with pytest.raises(ValueError, match="takes labels"):
        histogram.labels()
