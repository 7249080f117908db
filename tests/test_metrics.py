"""``Metrics.quantiles``: what the operator page shows of a histogram, estimated from its
buckets as Prometheus's ``histogram_quantile`` does."""

from __future__ import annotations

import pytest

from hubbub.metrics import Metrics


def test_no_observation_has_no_quantile_and_an_unknown_name_is_none() -> None:
    metrics = Metrics()
    assert metrics.quantiles("hubbub_storage_commit_seconds", (0.5,)) == {
        "count": 0.0,
        "mean": None,
        "p50": None,
    }
    assert metrics.quantiles("hubbub_no_such_histogram", (0.5,)) is None
    assert metrics.quantiles("hubbub_ws_frames_in", (0.5,)) is None  # a counter


def test_quantiles_interpolate_within_the_bucket() -> None:
    metrics = Metrics()
    # Batch-size buckets: ..., 8, 16, 32, ...; ten writes of 10 and ten of 20.
    for size in [10] * 10 + [20] * 10:
        metrics.commit_batch_size.observe(size)
    found = metrics.quantiles("hubbub_storage_commit_batch_size", (0.25, 0.5, 0.99))
    assert found is not None
    assert found["count"] == 20
    assert found["mean"] == 15
    # The 5th of 20 is a quarter into (8, 16]; the 10th is its upper bound; the 19.8th
    # is 9.8 / 10 into (16, 32].
    assert found["p25"] == pytest.approx(8 + 8 * 5 / 10)
    assert found["p50"] == pytest.approx(16)
    assert found["p99"] == pytest.approx(16 + 16 * 9.8 / 10)


def test_a_quantile_past_the_last_bound_is_that_bound_and_labels_are_summed() -> None:
    metrics = Metrics()
    metrics.delivery["direct"].observe(0.002)
    metrics.delivery["group"].observe(60.0)  # past the last finite bucket, 10 s
    found = metrics.quantiles("hubbub_delivery_seconds", (0.99,))
    assert found is not None
    assert found["count"] == 2
    assert found["p99"] == 10.0
