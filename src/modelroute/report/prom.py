"""Read a Prometheus text exposition (the sidecar's ``/metrics``) into samples that can be summed.

:meth:`Samples.sum` adds up every sample of a name whose labels match; :meth:`Samples.group`
does the same per value of some labels (``sum by (route) (...)``); :meth:`Samples.quantile`
estimates a quantile from histogram buckets the way PromQL's ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


class Samples:
    def __init__(self, samples: Iterable[Sample]) -> None:
        self._by_name: dict[str, list[Sample]] = defaultdict(list)
        for s in samples:
            self._by_name[s.name].append(s)

    @classmethod
    def parse(cls, text: str) -> Samples:
        out: list[Sample] = []
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.append(Sample(s.name, dict(s.labels), float(s.value)))
        return cls(out)

    def names(self) -> set[str]:
        return set(self._by_name)

    def select(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self._by_name.get(name, []) if all(s.labels.get(k, "") == v for k, v in labels.items())]

    def sum(self, name: str, **labels: str) -> float:
        return math.fsum(s.value for s in self.select(name, **labels))

    def group(self, name: str, by: tuple[str, ...], **labels: str) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = defaultdict(float)
        for s in self.select(name, **labels):
            out[tuple(s.labels.get(k, "") for k in by)] += s.value
        return dict(out)

    def label_values(self, name: str, label: str, **labels: str) -> list[str]:
        return sorted({s.labels.get(label, "") for s in self.select(name, **labels)})

    def quantile(self, q: float, histogram: str, **labels: str) -> float | None:
        """``histogram_quantile(q, sum by (le) (histogram_bucket{labels}))``; None without observations."""
        buckets: dict[float, float] = defaultdict(float)
        for s in self.select(histogram + "_bucket", **labels):
            buckets[float(s.labels["le"])] += s.value
        return bucket_quantile(q, sorted(buckets.items()))


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Linear interpolation inside the bucket holding rank q*count, as Prometheus does."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # the highest finite bound, as histogram_quantile returns
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound
