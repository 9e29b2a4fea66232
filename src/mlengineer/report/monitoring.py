"""The HTML monitoring report: a monitoring result (``monitoring.monitor``) as one self-contained file in the
model report's style (inline CSS and SVG, no script, no network), plain words first.

    >>> write_monitoring_report(result, "monitor.html", model=model)   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from .html import _env
from .plots import BLUE, GREY, ORANGE, _fig, _ticks, svg

__all__ = ["distributions_svg", "render_monitoring_report", "windows_svg", "write_monitoring_report"]

_NAMES = {"accuracy": "accuracy", "roc_auc": "ROC AUC", "log_loss": "log loss", "brier": "Brier score", "f1": "F1",
          "balanced_accuracy": "balanced accuracy", "f1_macro": "macro F1", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}


def _number(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _short(text: str, n: int = 16) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def distributions_svg(columns: list[dict[str, Any]], *, max_panels: int = 8) -> str | None:
    """Reference against live values, one small panel per column: shares on shared bins, or per category."""
    panels = [c for c in columns if c.get("plot")][:max_panels]
    if not panels:
        return None
    cols = min(len(panels), 2)
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = _fig(rows, cols, figsize=(4.5 * cols, 2.7 * rows), squeeze=False)
    for ax, c in zip(axes.ravel(), panels, strict=False):
        plot = c["plot"]
        if plot["kind"] == "hist":
            edges = np.asarray(plot["edges"])
            mids = (edges[:-1] + edges[1:]) / 2
            width = edges[1] - edges[0]
            ax.bar(mids, plot["reference"], width=width, color=GREY, alpha=0.55, label="training (reference)")
            ax.step(mids, plot["current"], where="mid", color=ORANGE if c["drifted"] else BLUE, lw=2, label="live")
            ax.xaxis.set_major_locator(MaxNLocator(5))
            _ticks(ax, _number, x=True)
        else:
            y = np.arange(len(plot["labels"]))
            ax.barh(y - 0.2, plot["reference"], height=0.4, color=GREY, label="training (reference)")
            ax.barh(y + 0.2, plot["current"], height=0.4, color=ORANGE if c["drifted"] else BLUE, label="live")
            ax.set_yticks(y, [_short(str(v)) for v in plot["labels"]], fontsize=8)
            ax.invert_yaxis()
        verdict = "drifted" if c["drifted"] else "no drift"
        ax.set_title(f"{_short(c['column'], 28)}: {verdict}", loc="left", fontsize=10,
                     color=ORANGE if c["drifted"] else "#1d2430")
        ax.tick_params(labelsize=8)
    axes.ravel()[0].legend(loc="upper right", fontsize=7, frameon=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return svg(fig)


def windows_svg(windows: list[dict[str, Any]], metric: str, reference: dict[str, Any] | None) -> str | None:
    """The headline metric window by window: the estimate with its interval, realised values as dots, the
    reference value as a dashed line."""
    tested = [w for w in windows if w.get("tested")]
    if len(tested) < 2:
        return None
    x = np.arange(len(tested))
    est = [w["performance"]["metrics"][metric]["estimated"] for w in tested]
    # beside the estimate, which weighs no rows, the realised value of every row once (like for like)
    real = [(m := w["performance"]["metrics"][metric]).get("realised_every_row") or m["realised"] for w in tested]
    fig, ax = _fig(figsize=(8.8, 3.4))
    if all(e is not None for e in est):
        ax.fill_between(x, [e["low"] for e in est], [e["high"] for e in est], color=BLUE, alpha=0.18, lw=0,
                        label="95% interval of the estimate")
        ax.plot(x, [e["value"] for e in est], color=BLUE, lw=2, marker="o", ms=4, label="estimated (no outcomes)")
    known = [i for i, r in enumerate(real) if r is not None]
    if known:
        ax.scatter(x[known], [real[i]["value"] for i in known], color=ORANGE, zorder=3, s=28, label="realised")
    if reference is not None:
        ax.axhline(reference["value"], ls="--", color=GREY, lw=1, label="on the reference rows")
    step = max(1, len(tested) // 12)
    ax.set_xticks(x[::step], [_short(w["label"], 18) for w in tested][::step], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(_NAMES.get(metric, metric))
    ax.set_title(f"{_NAMES.get(metric, metric)} by window", loc="left")
    ax.legend(loc="best", fontsize=8, frameon=False)
    return svg(fig)


def _ordered(result: dict[str, Any], importance: dict[str, float]) -> list[dict[str, Any]]:
    """Columns to show: drifted first, then by the model's attention."""
    cols = result["drift"]["columns"]
    return sorted(cols, key=lambda c: (not c["drifted"], -float(importance.get(c["column"], 0.0))))


def render_monitoring_report(result: dict[str, Any], *, model: Any = None, title: str | None = None) -> str:
    """The report's HTML for a monitoring ``result``."""
    importance = (model.metadata.get("feature_importance") if model is not None else None) or {}
    ordered = _ordered(result, importance)
    perf = result["performance"]
    headline = perf["headline"]
    pred = {**result["drift"]["prediction"], "column": "the prediction"}
    figures = []
    dist = distributions_svg([pred, *ordered])
    if dist:
        figures.append({"id": "distributions", "title": "Training rows against live rows",
                        "caption": "Grey: the bundle's reference sample of training rows; line or coloured bars: the "
                                   "live rows (orange where the column drifted). Shares of rows.", "svg": dist})
    trend = windows_svg(result["windows"], headline, perf["metrics"][headline]["reference_estimated"])
    if trend:
        figures.append({"id": "trend", "title": "Performance window by window",
                        "caption": "The estimate needs no outcomes; realised values appear where outcomes are "
                                   "known.", "svg": trend})
    from ..monitoring.words import model_title

    named = model_title(result["model"])
    return _env().get_template("monitoring.html.j2").render(
        title=title or f"{named}: monitoring report", model_title=named, r=result, columns=ordered,
        importance=importance, figures=figures, names=_NAMES, headline=headline,
        version=(model.metadata.get("versions") or {}).get("mlengineer", "") if model is not None else "")


def write_monitoring_report(result: dict[str, Any], out: str | Path, *, model: Any = None,
                            title: str | None = None) -> Path:
    """Write the report to ``out`` atomically and return its path."""
    from ..data.files import atomic_path

    html = render_monitoring_report(result, model=model, title=title)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(out)
