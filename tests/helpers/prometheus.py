"""Reading ``/metrics`` as numbers: every sample by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from hubbub.client import HubbubHTTP


class Samples:
    """One scrape of ``/metrics``: ``samples["name", {"label": "value"}]`` is a value."""

    def __init__(self, text: str) -> None:
        self._values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self._values[sample.name, frozenset(sample.labels.items())] = sample.value

    def get(self, name: str, **labels: str) -> float | None:
        """The sample with exactly these labels, or None."""
        return self._values.get((name, frozenset(labels.items())))

    def __getitem__(self, key: str) -> float:
        found = self.get(key)
        if found is None:
            raise KeyError(f"{key} is not in /metrics")
        return found

    def value(self, name: str, **labels: str) -> float:
        found = self.get(name, **labels)
        if found is None:
            raise AssertionError(f"{name}{labels} is not in /metrics")
        return found

    def labels_of(self, name: str) -> list[dict[str, str]]:
        """The label sets of every sample called ``name``."""
        return [dict(labels) for (found, labels) in self._values if found == name]

    def total(self, name: str) -> float:
        """The sum over every label set of ``name``."""
        return sum(v for (found, _), v in self._values.items() if found == name)


async def scrape(http: HubbubHTTP) -> Samples:
    response = await http.get("/metrics")
    response.raise_for_status()
    return Samples(response.text)
