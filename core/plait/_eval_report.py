"""What an evaluation produces: cases in, a typed report out, JSON both ways.

Outputs in a report are JSON values already (the Runtime's converter unstructured them
before the metrics scored them), so a report serializes without a Runtime.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from ._money import Usage
from ._results import ErrorInfo
from ._serialize import from_json, to_json

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["CaseDiff", "CaseResult", "EvalCase", "EvalReport", "MetricContext",
           "VariantReport", "percentile", "wilson_interval"]

Z_95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


@attrs.frozen
class EvalCase:
    """One labelled example: the run's ``inputs`` and the ``expected`` answer."""

    inputs: Mapping[str, Any]
    expected: Any = None
    id: str | None = None


@attrs.frozen
class MetricContext:
    """What a three-parameter metric receives besides the output and the expectation."""

    inputs: Mapping[str, Any]
    runtime: Runtime


@attrs.frozen
class CaseResult:
    """One case run by one variant: its output, its scores and what it cost.

    ``score`` is the first metric's score (0 when the run or the metric failed);
    ``scores`` holds every metric's. ``error`` is set when the run failed (then
    ``output`` is ``None``) or a metric could not score.
    """

    id: str
    output: Any
    score: float
    scores: Mapping[str, float]
    latency_s: float
    usage: Usage = Usage()
    error: ErrorInfo | None = None


@attrs.frozen
class VariantReport:
    """One variant over every case: accuracy with its 95% Wilson interval, money, speed."""

    name: str
    settings: Mapping[str, Any]  # what this variant set: {"n": 3}, {"target": "app:route"}
    accuracy: float  # the mean first-metric score, failures counted as 0
    interval: tuple[float, float]
    metrics: Mapping[str, float]  # the mean score of each metric
    cases: int
    failures: int  # cases whose run failed (a metric that failed to score counts too)
    usage: Usage
    latency_p50: float
    latency_p95: float
    results: Sequence[CaseResult]

    @property
    def cost(self) -> Decimal:
        return self.usage.cost

    @property
    def calls(self) -> int:
        return self.usage.calls


@attrs.frozen
class CaseDiff:
    """A case on which the variants' outputs differed, each variant's output by name."""

    id: str
    expected: Any
    outputs: Mapping[str, Any]


@attrs.frozen
class EvalReport:
    """The report of ``plait.evaluate``: one ``VariantReport`` per variant, in the order
    they were given, and the cases whose outputs differed between them.

    ``stopped`` says why cases were left unrun (the eval's budget ran out), else ``None``.
    ``eval_id`` is what ``evaluate(..., resume=...)`` (``plait eval --resume``) continues;
    ``restored`` counts the cases restored from the run store rather than run.
    """

    metrics: tuple[str, ...]
    variants: Sequence[VariantReport]
    differing: Sequence[CaseDiff] = ()
    budget: Decimal | None = None
    stopped: str | None = None
    eval_id: str = ""
    restored: int = 0

    @property
    def usage(self) -> Usage:
        return sum((v.usage for v in self.variants), Usage())

    def variant(self, name: str) -> VariantReport:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"no variant {name!r}; variants: {', '.join(v.name for v in self.variants)}")

    def to_json(self, *, indent: int | None = None) -> str:
        return to_json(self, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> EvalReport:
        return from_json(text, cls)


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: honest at small ``n`` and at 0 or 1,
    where the normal approximation collapses to a point. Fractional successes (metrics
    that give partial credit) are taken as they are."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at p = 0 or 1 one end is exactly 0 or 1; float rounding must not move it
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return (low, high)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (``q`` from 0 to 100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
