"""The accuracy-against-cost curve of an evaluation, drawn with matplotlib (the ``plot``
extra: ``pip install 'plait[plot]'``), imported only when a picture is asked for."""

from __future__ import annotations

import os
from typing import Any

from ._errors import EvalError
from ._eval_report import EvalReport

__all__ = ["EXTRA", "plot_curve"]

EXTRA = "pip install 'plait[plot]'"


def plot_curve(report: EvalReport, path: str | os.PathLike[str]) -> None:
    """Save accuracy (with its 95% interval) against cost per case, one point per
    variant. When nothing cost money (a local model), the x axis is model calls per case."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # a file, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise EvalError(f"drawing a plot needs matplotlib: {EXTRA}") from None
    variants = [v for v in report.variants if v.cases]
    priced = any(v.cost > 0 for v in variants)
    xs = [float(v.cost / v.cases) if priced else v.calls / v.cases for v in variants]
    ys = [v.accuracy for v in variants]
    below = [max(0.0, v.accuracy - v.interval[0]) for v in variants]  # 0 where they round
    above = [max(0.0, v.interval[1] - v.accuracy) for v in variants]
    fig: Any
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.errorbar(xs, ys, yerr=[below, above], fmt="o-", capsize=4)
    for x, y, v in zip(xs, ys, variants, strict=True):
        ax.annotate(v.name, (x, y), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel("cost per case (USD)" if priced else "model calls per case")
    ax.set_ylabel(f"accuracy ({report.metrics[0]}), 95% interval")
    ax.set_ylim(0, 1.05)
    ax.margins(x=0.15)  # room for the labels of the first and last points
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=120)
    plt.close(fig)
