"""Turning measurements into figures: percentiles and printing (text or JSON)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import orjson

Value = int | float | str | None | dict[str, object] | list[object]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-quantile (0 < q <= 1) of an ascending, non-empty sequence."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def latency_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max of latencies given in seconds, in milliseconds (None if empty)."""
    ordered = sorted(seconds)
    keys = {"p50": 0.50, "p95": 0.95, "p99": 0.99, "max": 1.0}
    if not ordered:
        return dict.fromkeys(keys)
    return {name: round(percentile(ordered, q) * 1000, 2) for name, q in keys.items()}


def per_thousand(cpu_seconds: float, count: int) -> float | None:
    """CPU seconds per 1,000 events (None if there were none)."""
    return round(cpu_seconds * 1000 / count, 4) if count else None


def emit(title: str, figures: dict[str, Value], *, as_json: bool) -> None:
    """Print ``figures`` as aligned ``name: value`` lines under ``title``; with
    ``as_json``, also one JSON line (``{"bench": title, ...}``) at the end."""
    print(title)
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
        elif isinstance(value, float):
            shown = f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
        else:
            shown = str(value)
        print(f"  {name:<{width}}  {shown}")
    if as_json:
        print(orjson.dumps({"bench": title, **figures}).decode())
