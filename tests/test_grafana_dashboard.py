"""docs/grafana-dashboard.json stays true: valid JSON that Grafana imports (panels with
queries and places), querying only series a node exports, histograms by quantile."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hubbub.metrics import Metrics

DASHBOARD = Path(__file__).parent.parent / "docs" / "grafana-dashboard.json"
#: Series other parts add (the webhook outbox of the integrations work): placeholders.
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def exported() -> dict[str, str]:
    """Every series name a node exports, with its family's type."""
    names: dict[str, str] = {}
    for family in Metrics().registry.collect():
        for suffix in SUFFIXES[family.type]:
            names[family.name + suffix] = family.type
    return names


def expressions(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_dashboard_is_importable_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]


def test_every_query_names_a_series_the_node_exports() -> None:
    known = exported()
    used = {
        name
        for expr in expressions(json.loads(DASHBOARD.read_text()))
        for name in re.findall(r"\bhubbub_[a-z_]+", expr)
    }
    unknown = used - set(known)
    assert not unknown, unknown
    # Every histogram a node exports has a quantile panel, from its buckets.
    histograms = {n[: -len("_bucket")] for n, t in known.items() if n.endswith("_bucket")}
    text = "\n".join(expressions(json.loads(DASHBOARD.read_text())))
    for histogram in histograms:
        assert re.search(rf"histogram_quantile\(0\.99, .*{histogram}_bucket", text), histogram
