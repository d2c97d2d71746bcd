"""The one registry of metrics: name (the key in metrics.json and the results store), display name, the
values it can take and its direction. Training validates and selects by it, the analysis bounds its
intervals by it, the report names metrics by it. No heavy imports: the spec and the CLI read it."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A metric's name (the key in metrics.json and the results store), the values it can take, whether
    larger is better, and the name a person reads."""

    name: str
    display: str
    low: float = 0.0
    high: float = 1.0
    higher_is_better: bool = True

    @property
    def range(self) -> tuple[float, float]:
        return self.low, self.high

    def better(self, value: float, than: float) -> bool:
        """Whether `value` beats `than`: any number beats NaN, and NaN only NaN (a first epoch is kept)."""
        if math.isnan(value) or math.isnan(than):
            return math.isnan(than)
        return value > than if self.higher_is_better else value < than


# The one registry of metrics: training selects epochs by them, the results store records them, the
# analysis bounds their intervals by their range, the report names them.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("mAP", "mAP (macro average precision)"),
        Metric("auc", "ROC AUC"),
        Metric("d_prime", "d-prime", -math.inf, math.inf),
        Metric("micro_f1", "micro F1"),
        Metric("macro_f1", "macro F1"),
        Metric("accuracy", "accuracy"),
        Metric("uar", "UAR (unweighted average recall)"),
    )
}
# the report's choice, in order, when the metric asked for was not recorded
REPORT_FALLBACK = ("uar", "accuracy", "macro_f1", "auc")
