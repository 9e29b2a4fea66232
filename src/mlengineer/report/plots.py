"""Plots as inline SVG text, so a report is one file that needs no network to view.

Text stays text in the SVG (smaller, selectable); point clouds are embedded as a raster image inside the
SVG (a data: URI), so a plot of thousands of points stays a few kilobytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["Percent", "calibration_svg", "compact", "confusion_svg", "importance_svg", "interval_svg",
           "partial_dependence_svg", "residuals_svg", "roc_pr_svg", "short", "svg"]

BLUE, ORANGE, GREY = "#3b6ea8", "#d9822b", "#8a94a6"
_STYLE: dict[str, Any] = {"svg.fonttype": "none", "font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
          "axes.titlesize": 11, "axes.titleweight": "bold", "figure.dpi": 100}


def svg(fig: plt.Figure) -> str:
    """The figure as an <svg> element (without the XML header), then closed."""
    buf = io.StringIO()
    with plt.rc_context(_STYLE):  # type: ignore[arg-type]
        fig.savefig(buf, format="svg", bbox_inches="tight",
                    metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _fig(*args: Any, **kwargs: Any) -> tuple[plt.Figure, Any]:
    with plt.rc_context(_STYLE):  # type: ignore[arg-type]
        return plt.subplots(*args, **kwargs)


def compact(fmt: Callable[[float], str]) -> Callable[[float], str]:
    """Axis ticks in few characters: 150,000 as 150k, 2,500,000 as 2.5M and 50.0 as 50 (keeping ``fmt``'s unit,
    before or after the number)."""
    prefix = getattr(fmt, "prefix", None)
    suffix = getattr(fmt, "suffix", "")
    if prefix is None:  # a plain function: the unit it puts before numbers, e.g. "$"
        prefix = fmt(1.0).rstrip("0123456789.,")

    def tick(v: float) -> str:
        a = abs(v)
        if a < 10_000:
            # a whole tick as a whole number: fmt writes 50 as "50.0", which reads as a measured value
            return f"{'-' if v < 0 else ''}{prefix}{round(a):,}{suffix}" if a >= 1 and a == round(a) else fmt(v)
        body = f"{a / 1e6:.3g}M" if a >= 1e6 else f"{a / 1e3:.3g}k"
        return f"{'-' if v < 0 else ''}{prefix}{body}{suffix}"

    return tick


def short(text: str, limit: int = 36) -> str:
    """A label cut in its middle to ``limit`` characters, so names that share a start stay apart."""
    if len(text) <= limit:
        return text
    head = limit // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head):]}"


class Percent(matplotlib.ticker.Formatter):
    """Probability ticks as percentages with the fewest decimals that tell them apart: 22.5%, 23%, 23.5%
    rather than 22%, 23%, 24% where the axis spans a few points."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x * 100:.0f}%"

    def format_ticks(self, values: Any) -> list[str]:
        labels: list[str] = []
        for places in range(5):
            labels = [f"{v * 100:.{places}f}%" for v in values]
            if len(set(labels)) == len(labels):
                break
        return labels


def _ticks(ax: Any, fmt: Callable[[float], str], *, x: bool = False, y: bool = False) -> None:
    f = matplotlib.ticker.FuncFormatter(lambda v, _: compact(fmt)(v))
    if x:
        ax.xaxis.set_major_formatter(f)
    if y:
        ax.yaxis.set_major_formatter(f)


def importance_svg(importance: dict[str, float], *, top: int = 15, title: str | None = None,
                   xlabel: str = "share of the model's attention (%)") -> str:
    from .summary import share

    items = list(importance.items())[:top][::-1]
    fig, ax = _fig(figsize=(7, 0.32 * len(items) + 1.1))
    ax.barh(range(len(items)), [v * 100 for _, v in items], color=BLUE)
    ax.set_yticks(range(len(items)), [short(k) for k, _ in items])  # a long name would squeeze the bars
    for i, (_, v) in enumerate(items):
        ax.text(v * 100, i, f" {share(v)}", va="center", fontsize=9)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, loc="left")
    return svg(fig)


def calibration_svg(curve: dict[str, list[float]], *, ece: float, label: str, min_rows: int = 300) -> str:
    """Reliability curve: predicted probability against how often it came true, one dot per bin (its size
    the rows in it), over the band where a perfectly calibrated model's dots would fall 95% of the time by
    chance alone, given those rows. Below ``min_rows`` rows the title says there are too few to judge."""
    p, o, c = (np.asarray(curve[k], dtype=float) for k in ("predicted", "observed", "count"))
    n = int(c.sum())
    fig, ax = _fig(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], ls="--", color=GREY, lw=1, label="perfectly calibrated")
    if len(p):
        order = np.argsort(p)
        half = 1.96 * np.sqrt(p * (1 - p) / np.maximum(c, 1))
        ax.fill_between(p[order], np.clip(p - half, 0, 1)[order], np.clip(p + half, 0, 1)[order], color=GREY,
                        alpha=0.22, lw=0, label="95% of dots by chance alone")
        sizes = 20 + 180 * c / max(c.max(), 1)
        ax.scatter(p, o, s=sizes, color=BLUE, zorder=3, label="this model (dot size = rows)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.03, 1.03)  # dots at 0 and 1 drawn whole
    ax.set_xlabel(f"predicted {label}")
    ax.set_ylabel("how often it came true")
    title = f"Calibration (ECE {ece:.3f}, {n:,} rows)" if n >= min_rows else f"Calibration: too few rows ({n:,}) to judge it"
    ax.set_title(title, loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)  # beside: the band fills the plot
    return svg(fig)


def confusion_svg(labels: list[str], matrix: list[list[int]]) -> str:
    m = np.asarray(matrix, dtype=float)
    k = len(labels)
    size = min(7.0 if k <= 15 else 8.5, 2.2 + 0.45 * k)  # room beside for the colour bar
    fig, ax = _fig(figsize=(size, size * 0.85))
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if k <= 15:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(m[i, j]):,}", ha="center", va="center", fontsize=8 if k > 6 else 10,
                        color="white" if share[i, j] > 0.6 else "#1d2430")
    else:  # too many cells to print counts in: the colour is all there is, so say what it means
        bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.03, format=Percent())
        bar.set_label("share of the true class's rows", fontsize=8)
    names = [short(str(lab), 16) for lab in labels]
    # beyond a dozen classes, slanted labels run into each other: stand them upright
    ax.set_xticks(range(k), names, rotation=0 if k <= 4 else 45 if k <= 12 else 90,
                  ha="center" if k <= 4 or k > 12 else "right", fontsize=10 if k <= 12 else 7)
    ax.set_yticks(range(k), names, fontsize=10 if k <= 12 else 7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (rows: true class)", loc="left")
    ax.spines[["left", "bottom"]].set_visible(False)
    return svg(fig)


def roc_pr_svg(curves: dict[str, Any], *, auc: float | None, positive: str | None = None) -> str:
    """The ROC curve and the precision-recall curve of a binary model, about its ``positive`` class (named on
    the axes where given)."""
    fig, (a, b) = _fig(1, 2, figsize=(8.4, 3.8))
    of = f" of {short(positive, 20)}" if positive else ""
    a.plot([0, 1], [0, 1], ls="--", color=GREY, lw=1)
    a.plot(curves["roc"]["fpr"], curves["roc"]["tpr"], color=BLUE, lw=2)
    a.set_xlabel("false positive rate (false alarms)")
    a.set_ylabel(f"true positive rate (recall{of})")
    a.set_title(f"ROC curve{f' (AUC {auc:.3f})' if auc is not None else ''}", loc="left")
    b.axhline(curves["positive_rate"], ls="--", color=GREY, lw=1)
    b.plot(curves["pr"]["recall"], curves["pr"]["precision"], color=ORANGE, lw=2)
    b.set_xlabel(f"recall{of}")
    b.set_ylabel(f"precision{of}")
    b.set_ylim(0, 1.02)
    b.set_title("Precision and recall", loc="left")
    return svg(fig)


def residuals_svg(predicted: list[float], actual: list[float], *, fmt: Callable[[float], str]) -> str:
    """Predicted against actual, and the error (predicted - actual: above 0 the estimate is too high, the sign of
    the slices' bias) against the prediction: where and how the model misses."""
    p, y = np.asarray(predicted), np.asarray(actual)
    fig, (a, b) = _fig(1, 2, figsize=(8.8, 3.9))
    lo, hi = float(min(p.min(), y.min())), float(max(p.max(), y.max()))
    a.scatter(p, y, s=6, alpha=0.35, color=BLUE, rasterized=True, lw=0)
    a.plot([lo, hi], [lo, hi], ls="--", color=GREY, lw=1)
    a.set_xlabel("predicted")
    a.set_ylabel("actual")
    a.set_title("Predicted against actual", loc="left")
    b.scatter(p, p - y, s=6, alpha=0.35, color=ORANGE, rasterized=True, lw=0)
    b.axhline(0, ls="--", color=GREY, lw=1)
    b.set_xlabel("predicted")
    b.set_ylabel("predicted - actual (above 0: too high)")
    b.set_title("Errors by predicted value", loc="left")
    for ax in (a, b):
        _ticks(ax, fmt, x=True, y=True)
    return svg(fig)


def interval_svg(predicted: list[float], lower: list[float], upper: list[float], actual: list[float], *,
                 fmt: Callable[[float], str], coverage: float) -> str:
    """A sample of rows sorted by prediction: the range, the prediction and the truth, misses in orange."""
    order = np.argsort(predicted)
    p, lo, hi, y = (np.asarray(v)[order] for v in (predicted, lower, upper, actual))
    x = np.arange(len(p))
    inside = (y >= lo) & (y <= hi)
    fig, ax = _fig(figsize=(8.8, 3.6))
    ax.fill_between(x, lo, hi, color=BLUE, alpha=0.18, lw=0, label=f"{coverage:.0%} range")
    ax.plot(x, p, color=BLUE, lw=1.2, label="prediction")
    ax.scatter(x[inside], y[inside], s=7, color="#1d2430", lw=0, label="actual, inside the range", rasterized=True)
    ax.scatter(x[~inside], y[~inside], s=12, color=ORANGE, lw=0, label="actual, outside", rasterized=True)
    ax.set_xticks([])
    ax.set_xlabel(f"{len(p)} rows, sorted by prediction")
    _ticks(ax, fmt, y=True)
    ax.set_title(f"{int(inside.sum())} of these {len(p)} rows fall inside their {coverage:.0%} range", loc="left")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return svg(fig)


def partial_dependence_svg(curves: list[dict[str, Any]], *, ylabel: str, fmt: Callable[[float], str],
                           percent: bool = False) -> str:
    """One small panel per column: the average prediction (a probability where ``percent``) as that column
    alone changes."""
    n = len(curves)
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = _fig(rows, cols, figsize=(4.4 * cols, 3.1 * rows), squeeze=False)
    for ax, c in zip(axes.ravel(), curves, strict=False):
        series = c["series"]
        if c["kind"] == "categorical":
            labels = [short(str(s), 18) for s in c["grid"]]
            width = 0.8 / len(series)
            for i, (name, vals) in enumerate(series.items()):
                ax.barh(np.arange(len(labels)) + i * width, vals, height=width, label=name,
                        color=[BLUE, ORANGE, GREY, "#6a9f58", "#b05f9e", "#c2b13a"][i % 6])
            ax.set_yticks(np.arange(len(labels)) + width * (len(series) - 1) / 2, labels, fontsize=8)
            ax.invert_yaxis()
            _value_ticks(ax.xaxis, fmt, percent)
            ax.set_xlabel(ylabel)
        else:
            for i, (name, vals) in enumerate(series.items()):
                ax.plot(c["grid"], vals, lw=2, label=name,
                        color=[BLUE, ORANGE, GREY, "#6a9f58", "#b05f9e", "#c2b13a"][i % 6])
            _value_ticks(ax.yaxis, fmt, percent)
            ax.set_ylabel(ylabel)
        ax.set_title(short(c["column"], 40), loc="left")
        if len(series) > 1:
            ax.legend(fontsize=7, frameon=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return svg(fig)


def _value_ticks(axis: Any, fmt: Callable[[float], str], percent: bool) -> None:
    axis.set_major_formatter(Percent() if percent else matplotlib.ticker.FuncFormatter(lambda v, _: compact(fmt)(v)))
