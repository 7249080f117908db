"""PNG charts of a load run, beside its printed figures: throughput over time and the
latency distribution, in one image (``bench.direct``, ``bench.group``).

matplotlib (the ``test`` extra) is imported only when a chart is drawn, with the Agg
backend: no display is needed, and a run with ``--plots ''`` never imports it.
"""

from __future__ import annotations

import argparse
import array
import math
import re
from collections.abc import Sequence
from pathlib import Path

from bench.harness.report import percentile

#: Throughput bins: about this many over the run, but none shorter than MIN_BIN seconds.
BINS = 40
MIN_BIN = 0.1
#: Colours of the operator page (hubbub/web/ops/ops.css), so the charts read alike.
IN, OUT, MUTED = "#5ad1b3", "#7c9cff", "#8a94a7"


def throughput(
    arrivals: Sequence[float], start_at: float, end_at: float
) -> tuple[list[float], list[float]]:
    """Deliveries per second over ``[start_at, end_at]``: bin midpoints (seconds since
    the start) and rates. ``arrivals``: flat (time, count) pairs."""
    span = max(end_at - start_at, MIN_BIN)
    width = max(span / BINS, MIN_BIN)
    bins = max(1, math.ceil(span / width))
    counts = [0.0] * bins
    for i in range(0, len(arrivals), 2):
        slot = min(bins - 1, max(0, int((arrivals[i] - start_at) / width)))
        counts[slot] += arrivals[i + 1]
    return [(k + 0.5) * width for k in range(bins)], [c / width for c in counts]


def chart(
    path: Path,
    title: str,
    subtitle: str,
    arrivals: Sequence[float],
    latencies: Sequence[float],
    start_at: float,
    end_at: float,
) -> Path:
    """Draw the run's two panels into ``path`` (PNG); returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times, rates = throughput(arrivals, start_at, end_at)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    figure.suptitle(title, fontsize=13, fontweight="bold", x=0.01, y=0.985, ha="left")
    figure.text(0.01, 0.915, subtitle, fontsize=9, color=MUTED, ha="left")

    left.fill_between(times, rates, color=IN, alpha=0.25, linewidth=0)
    left.plot(times, rates, color=IN, linewidth=1.8)
    left.set_title("throughput over time", fontsize=10, loc="left")
    left.set_xlabel("seconds since start")
    left.set_ylabel("deliveries / s")
    left.set_ylim(bottom=0)

    ordered = sorted(1000 * v for v in latencies)
    if ordered:
        low = max(min(ordered), 0.01)
        high = max(max(ordered), low * 1.01)
        edges = [low * (high / low) ** (k / 50) for k in range(51)]
        right.hist(ordered, bins=edges, color=OUT, alpha=0.85)
        right.set_xscale("log")
        for q, style in ((0.5, "-"), (0.99, "--")):
            value = percentile(ordered, q)
            right.axvline(value, color="#333333", linestyle=style, linewidth=1)
            right.annotate(
                f"p{round(q * 100)} {value:.1f} ms",
                (value, 1),
                xycoords=("data", "axes fraction"),
                xytext=(4, -14),
                textcoords="offset points",
                fontsize=8,
            )
    right.set_title("latency distribution (send to receipt)", fontsize=10, loc="left")
    right.set_xlabel("ms (log scale)")
    right.set_ylabel("deliveries")
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout(rect=(0, 0, 1, 0.92))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def run_chart(args: argparse.Namespace, title: str, subtitle: str, run: object) -> Path | None:
    """The chart of a ``cli.Run`` in ``args.plots`` (None if ``--plots ''``), named after
    the benchmark (``direct-messages.png``): a new run replaces the last one's."""
    if not args.plots:
        return None
    outcome = run.outcome  # type: ignore[attr-defined]
    arrivals = array.array("d")
    latencies = array.array("d")
    for result in outcome.results:
        arrivals.frombytes(result.arrivals)
        latencies.frombytes(result.latencies)
    last = max((r.last_receive for r in outcome.results), default=outcome.start_at)
    stem = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    path = Path(args.plots) / f"{stem}.png"
    return chart(path, title, subtitle, arrivals, latencies, outcome.start_at, last)


def report(
    args: argparse.Namespace, title: str, figures: dict, run: object, shown: Sequence[str]
) -> None:
    """Draw the run's chart, subtitled with the ``shown`` figures, and print its path
    under the printed figures."""
    subtitle = " · ".join(f"{name} {_short(figures.get(name))}" for name in shown)
    path = run_chart(args, title, subtitle, run)
    if path is not None:
        print(f"  chart  {path}")


def _short(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)
