"""Turning measurements into figures: percentiles and printing (text or JSON)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

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


#: Above this share of one core, a process counts as saturated.
SATURATED = 0.85


def sum_counts(dicts: Sequence[dict[str, int]]) -> dict[str, int]:
    """Counts by key, added up over the load processes."""
    total: dict[str, int] = {}
    for counts in dicts:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return total


def who_saturated(cores: dict[str, float], machine: float, others: float) -> str:
    """Which single-threaded processes ran at ~one full core, else whether the whole
    machine was busy (so the load was bounded by CPU that others took)."""
    saturated = [name for name, share in cores.items() if share >= SATURATED]
    if saturated:
        return " and ".join(saturated)
    if machine >= SATURATED * (os.cpu_count() or 1):
        return f"the machine (other processes took {others:.2f} cores)"
    return "neither (waiting, not computing)"


def cost_figures(
    args: Any, span: Any, harness_cpu: Sequence[float], count: int, unit: str
) -> dict[str, Value]:
    """Who spent what on ``count`` events (``unit``: "delivered", "deliveries"): server,
    database and harness CPU, RSS, and who saturated. ``span`` is a procstat ``Span``;
    ``args`` has ``server_pid`` and ``db_pid``."""
    server_cores = span.server_cpu / span.wall
    database_cores = span.database_cpu / span.wall
    harness_busiest = max(harness_cpu) / span.wall
    others = span.machine_cores - server_cores - database_cores - sum(harness_cpu) / span.wall
    no_db = "(no --db-pid)"
    figures: dict[str, Value] = {
        "server cpu s": round(span.server_cpu, 3),
        f"server cpu s per 1k {unit}": per_thousand(span.server_cpu, count),
        "server cores busy": round(server_cores, 2),
        "server cpu s by pid": span.server_cpu_by_pid,
        f"database cpu s per 1k {unit}": per_thousand(span.database_cpu, count)
        if args.db_pid
        else no_db,
        "database cores busy": round(database_cores, 2) if args.db_pid else no_db,
        "server rss kb": {str(s.pid): s.rss_kb for s in span.after.servers},
        "server rss growth kb": span.rss_growth_kb,
        "harness cpu s": round(sum(harness_cpu), 3),
        f"harness cpu s per 1k {unit}": per_thousand(sum(harness_cpu), count),
        "harness cores busy (busiest process)": round(harness_busiest, 2),
        "machine cores busy (all processes)": round(span.machine_cores, 2),
        "other processes' cores busy": round(others, 2),
        "saturated": who_saturated(
            {"server": server_cores, "database": database_cores, "harness": harness_busiest},
            span.machine_cores,
            others,
        ),
    }
    if not args.server_pid:
        for key in [k for k in figures if k.startswith("server")]:
            figures[key] = "(no --server-pid)"
    return figures
