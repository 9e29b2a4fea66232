"""The HTML report of a model bundle: one self-contained file (inline CSS and SVG, no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = ["render_report", "write_report"]

_TEMPLATES = Path(__file__).parent / "templates"


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["num"] = _num
    return env


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    return str(v)


def render_report(model: Any, data: pd.DataFrame | None = None) -> str:
    """The report's HTML for ``model``; with labelled ``data`` it adds metrics on those rows."""
    from ..evaluation.evaluate import evaluate
    from .plots import importance_svg

    meta = model.metadata
    evaluation = evaluate(model, data) if data is not None else None
    importance = meta.get("feature_importance") or {}
    context = {
        "model": model, "meta": meta, "evaluation": evaluation,
        "importance_plot": importance_svg(importance) if importance else None,
        "findings": meta.get("findings", []),
        "leaderboard": meta.get("leaderboard", []),
        "columns": model.schema.columns,
    }
    return _env().get_template("report.html.j2").render(**context)


def write_report(model: Any, out: str | Path, data: pd.DataFrame | None = None) -> Path:
    from .._io import atomic_path

    html = render_report(model, data)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(out)
