"""The HTML report of a model bundle: one self-contained file (inline CSS and SVG, no script, no network).

It reads the bundle and, when given, labelled rows the model did not learn from; it never trains. Without
rows it reports on the validation rows the trainer kept.

    >>> write_report(model, "report.html", test_frame, unit="$", noun="jobs")   # doctest: +SKIP
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .summary import CALIBRATION_MIN_ROWS, candidate_label, decimal, share

__all__ = ["attach_to_run", "build_context", "render_report", "unattached_why", "write_report"]

_TEMPLATES = Path(__file__).parent / "templates"


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    env.filters["num"] = _num
    env.filters["pct"] = lambda v: share(v, 1)
    env.filters["pct0"] = share
    env.filters["dec3"] = lambda v: decimal(v, 3)
    env.filters["candidate"] = candidate_label  # a leaderboard row's model, with its target_transform
    return env


def _num(v: Any) -> str:
    """A table's number as a reader writes it: 1,234 and 0.8312, never 5.9e-05 (that is "<0.0001")."""
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if 0 < abs(v) < 1e-4:
            return "<0.0001" if v > 0 else ">-0.0001"
        text = np.format_float_positional(v, precision=4, fractional=False, trim="-")
        return decimal(v, 4) if float(text) in (0.0, 1.0, -1.0) and float(text) != v else text
    return str(v)


def _validation_evaluation(model: Any) -> dict[str, Any] | None:
    """Metrics on the trainer's validation rows (out of sample), when no labelled rows are given."""
    from ..evaluation.baseline import training_prior
    from ..evaluation.decision import decision_threshold
    from ..evaluation.evaluate import evaluate_predictions

    if "y" not in model.validation:
        return None
    y, raw = model.validation["y"], model.validation["pred"]
    calibrator = model.extras.get("calibrator")
    if calibrator is not None and model.task.is_classification:
        raw = calibrator.transform(raw)
    ev = evaluate_predictions(model.task, y, raw, metric=model.metadata.get("metric"),
                              conformal=model.extras.get("conformal"), weights=model.validation.get("weight"),
                              threshold=decision_threshold(model), prior=training_prior(model))
    if "uncertainty" in ev:
        ev["uncertainty"]["calibrated_here"] = True  # the conformal scores were fitted on these very rows
    return ev


def build_context(model: Any, data: pd.DataFrame | None = None, *, title: str | None = None, unit: str = "",
                  noun: str = "rows", story_html: str | None = None, n_boot: int = 200,
                  seed: int = 0) -> dict[str, Any]:
    """Everything the template shows, computed from the bundle and the optional labelled ``data``."""
    from . import plots
    from .explained import importance_caption, left_out_members, panel_ranking
    from .media import media_figures
    from .rows import validation_words
    from .summary import model_card, number_formatter, summary_sentences

    meta = model.metadata
    fmt = number_formatter(unit)
    plan = _plan_work(model, data, seed=seed)
    warning: str | None = None
    warnings: list[str] = []
    ev: dict[str, Any] | None
    if data is not None:
        data, ev, rows_on, warning, warnings = _measure(model, data, plan["evaluation_rows"], noun=noun,
                                                        n_boot=n_boot, seed=seed)
    else:
        ev = _validation_evaluation(model)
        rows_on = validation_words(model, noun)
    weighted = ev.get("weighted_by") if data is not None and ev is not None else meta.get("weight_column")
    if weighted:  # the metrics count each row by its weight, as training did
        rows_on += f", each counted by its weight in {html.escape(repr(str(weighted)), quote=False)}"
    importance = meta.get("feature_importance") or {}
    figures: list[dict[str, str]] = []
    if importance:
        explained = "the explained members'" if left_out_members(model) else "the model's"
        figures.append({"id": "importance", "title": "What the model looks at", "caption": importance_caption(model),
                        "svg": plots.importance_svg(importance, xlabel=f"share of {explained} attention (%)")})
    figures += media_figures(model, model.extras.get("background"))  # words of text, occlusion maps of pictures
    permutation, permutation_metric = None, None
    reference = model.extras.get("background")
    if data is not None and ev is not None:
        from ..explain.importance import permutation_importance

        labelled = data.loc[data[model.target].notna()]
        # the chosen metric where these rows can give it (ROC AUC needs both classes), else the first that they can
        permutation_metric = ev["primary_metric"] if ev["primary_metric"] in ev["metrics"] else next(iter(ev["metrics"]))
        permutation = permutation_importance(model, labelled, max_rows=plan["permutation_rows"], seed=seed,
                                             metric=permutation_metric, threshold=_label_threshold(model, permutation_metric))
        sample = labelled.sample(min(len(labelled), plan["reference_rows"]), random_state=seed)
        reference = model.encode(sample.drop(columns=[model.target]))
    if ev is not None:
        figures += _evaluation_figures(model, ev, data, fmt, seed)
    if reference is not None and importance:
        ranking = panel_ranking(model, importance, permutation)
        figures += _dependence_figures(model, np.asarray(reference, dtype=np.float32), ranking, fmt,
                                       by_permutation=ranking is not importance)
    key_findings, other_findings = _split_findings(meta.get("findings", []), importance)
    slices, small_slices = [], 0
    if ev is not None and ev.get("slices"):
        # groups of a few rows swing by chance: list only those large enough to have been tested
        tested = [s for s in ev["slices"] if "p_value" in s]
        small_slices = len(ev["slices"]) - len(tested)
        slices = sorted(tested, key=lambda s: (not s["flagged"], -s["loss_vs_overall"]))[:25]
    return {
        "title": title or f"{meta.get('name', 'model')}: model report", "model": model, "meta": meta,
        "evaluation": ev, "rows_on": rows_on, "noun": noun, "unit": unit, "fmt": fmt,
        "positive": str(model.classes[1]) if model.task.kind == "binary" else None,
        "summary": [*warnings, *(summary_sentences(
            model, ev, rows_on=rows_on, unit=unit, noun=noun, importance=importance, permutation=permutation,
            permutation_metric=permutation_metric) if ev is not None else [])],
        "story_html": story_html, "figures": figures, "permutation": permutation,
        "permutation_metric": permutation_metric, "slices": slices, "small_slices": small_slices,
        "findings": meta.get("findings", []), "leaderboard": meta.get("leaderboard", []),
        "key_findings": key_findings, "other_findings": other_findings, "calibration_min_rows": CALIBRATION_MIN_ROWS,
        "columns": model.schema.columns, "feature_names": set(model.feature_names),
        "card": model_card(model, ev, rows_on=rows_on, unit=unit, seen=warning is not None),
    }


def _measure(model: Any, data: pd.DataFrame, most: int, *, noun: str, n_boot: int, seed: int
             ) -> tuple[pd.DataFrame, dict[str, Any], str, str | None, list[str]]:
    """The labelled rows of ``data`` (a sample of ``most`` of them where there are more), the evaluation on them,
    what they are in words, and the warnings for the summary's top (rows it trained or was calibrated on)."""
    from ..evaluation.evaluate import evaluate
    from ..evaluation.seen import calibration_rows
    from .rows import calibrated_words, rows_words, trained_rows

    data = data.loc[data[model.target].notna()] if model.target in data.columns else data
    given = len(data)
    if given > most:
        data = data.sample(most, random_state=seed)
    measured = evaluate(model, data, n_boot=n_boot, seed=seed)
    rows_on, warning = rows_words(noun, trained_rows(model, data), given if given > len(data) else None)
    also, calibrated = calibrated_words(model, noun, calibration_rows(model, data))
    if also and measured.get("uncertainty"):  # the conformal scores were fitted on (most of) these very rows
        measured["uncertainty"]["calibrated_here"] = True
    return data, measured, rows_on + also, warning, [w for w in (warning, calibrated) if w]


def _label_threshold(model: Any, metric: str | None) -> float | None:
    """The model's decision threshold where ``metric`` scores labels (the permutation importance then scores the
    labels it answers), else None."""
    from ..evaluation.decision import decision_threshold, scores_labels

    threshold = decision_threshold(model)
    return threshold if threshold is not None and metric and scores_labels(metric, model.task.kind) else None


def _split_findings(findings: list[dict[str, Any]], importance: dict[str, float]
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The findings a reader needs (errors, and warnings about the whole table or a column the model leans
    on), most severe and most important first; and the rest, shown folded away at the end."""
    rank = {"error": 0, "warning": 1, "info": 2}

    def matters(f: dict[str, Any]) -> bool:
        col = f.get("column")
        return f["severity"] == "error" or (f["severity"] == "warning" and (
            col is None or importance.get(col, 0.0) >= 0.05 or not importance))

    ordered = sorted(findings, key=lambda f: (rank.get(f["severity"], 3), -importance.get(f.get("column") or "", 0.0)))
    return [f for f in ordered if matters(f)], [f for f in ordered if not matters(f)]


def _plan_work(model: Any, data: pd.DataFrame | None, *, seed: int, budget_s: float = 30.0) -> dict[str, int]:
    """How many rows each part of the report may predict on, from the time this model takes per row, so a
    slow model (k-NN over a large table) gets a report in about ``budget_s`` seconds, not an hour."""
    import time

    reference = model.extras.get("background")
    if data is not None and model.target in data.columns:
        reference = model.encode(data.drop(columns=[model.target]).head(300))
    if reference is None or len(reference) == 0:
        return {"evaluation_rows": 10**9, "permutation_rows": 1000, "reference_rows": 300}
    start = time.perf_counter()
    model.predictor.predict_raw(np.asarray(reference))
    per_row = max((time.perf_counter() - start) / len(reference), 1e-7)
    rows = budget_s / per_row
    columns = max(len(model.feature_names), 1)
    return {"evaluation_rows": int(max(2000, rows * 0.4)),
            "permutation_rows": int(np.clip(rows * 0.3 / (3 * columns), 100, 1000)),
            "reference_rows": int(np.clip(rows * 0.3 / 80, 30, 300))}


def _dependence_figures(model: Any, reference: np.ndarray, importance: dict[str, float], fmt: Any, *,
                        by_permutation: bool = False) -> list[dict[str, str]]:
    """The partial dependence panels of the (at most four) most important columns that have one (by the
    permutation importance on the given rows where ``by_permutation``)."""
    from ..explain.partial_dependence import likely_classes, partial_dependence
    from . import plots

    several = model.task.is_classification and len(model.classes) > 2
    top = likely_classes(model, reference) if several else None  # the same classes in every panel, found once
    curves = [c for c in (partial_dependence(model, reference, col, classes=top) for col in list(importance)[:6])
              if c is not None][:4]
    if not curves:
        return []
    caption = ("Each panel changes one column alone across its usual values, the other columns kept as they are "
               "in real rows, and shows the average prediction.")
    shown = len(curves[0]["series"])
    if model.task.is_classification and len(model.classes) > shown > 1:
        caption += (f" Lines: the probabilities of the {shown} classes the model finds most likely on these rows, of "
                    f"its {len(model.classes)}.")
    if by_permutation:
        caption += (" The columns are the ones whose shuffling costs the whole model most on the given rows (the "
                    "importance plot above speaks for only some of its members).")
    label = (f"average probability of {model.classes[1]}" if model.task.kind == "binary" else
             "average probability" if model.task.is_classification else f"average {model.target}")
    return [{"id": "partial-dependence", "title": "How the top columns move the prediction", "caption": caption,
             "svg": plots.partial_dependence_svg(curves, ylabel=label, fmt=fmt,
                                                 percent=model.task.is_classification)}]


def _evaluation_figures(model: Any, ev: dict[str, Any], data: pd.DataFrame | None, fmt: Any,
                        seed: int) -> list[dict[str, str]]:
    from ..evaluation.decision import answering_words
    from . import plots

    out: list[dict[str, str]] = []
    if model.task.is_classification:
        cal = ev["calibration"]
        label = f"probability of {model.classes[1]}" if ev["task"] == "binary" else "probability of the top class"
        out.append({"id": "calibration", "title": "Can its probabilities be taken at their word?",
                    "caption": "Dots on the diagonal mean that of the cases given 70%, about 70% came true. The grey "
                               "band is where the dots of a perfectly calibrated model would fall 95% of the time, "
                               "by chance alone, with this many rows in each bin: a dot inside it is as close as "
                               "these rows can tell.",
                    "svg": plots.calibration_svg(cal["curve"], ece=cal["ece"], label=label,
                                                 min_rows=CALIBRATION_MIN_ROWS)})
        at = ev.get("decision")
        out.append({"id": "confusion", "title": "Which answers it mixes up",
                    "caption": "Rows are the true answers, columns the model's; the diagonal is where it is right."
                               + (f" The model's answers are taken at its decision threshold: "
                                  f"{answering_words(model)}." if at else ""),
                    "svg": plots.confusion_svg(ev["confusion"]["labels"], ev["confusion"]["matrix"])})
        if ev.get("curves", {}).get("roc"):
            positive, negative = (str(c) for c in model.classes[::-1])
            out.append({"id": "roc-pr", "title": f"Catching {positive} cases against false alarms",
                        "caption": f"{positive} is the positive class here. Left: the share of {positive} rows "
                                   f"answered {positive} (caught) against the share of {negative} rows answered "
                                   f"{positive} (false alarms), at every threshold. Right: how many of the rows "
                                   f"answered {positive} are {positive} (precision) as more {positive} rows are "
                                   "caught (recall).",
                        "svg": plots.roc_pr_svg(ev["curves"], auc=ev["metrics"].get("roc_auc"), positive=positive)})
    else:
        res = ev["curves"]["residuals"]
        out.append({"id": "residuals", "title": "Where its estimates miss",
                    "caption": "Each dot is one row; on the dashed line the estimate is exact. Right: the estimate "
                               "minus the actual value, above the line where the model over-estimates, below where "
                               "it under-estimates (the sign of the slices' bias too).",
                    "svg": plots.residuals_svg(res["predicted"], res["actual"], fmt=fmt)})
        conformal = model.extras.get("conformal")
        if conformal is not None and data is not None:
            labelled = data.loc[data[model.target].notna()]
            sample = labelled.sample(min(len(labelled), 150), random_state=seed)
            pred = model.predict_raw(sample.drop(columns=[model.target]))
            lower, upper = conformal.bounds(pred, 0.9)
            actual = model.task.encode(sample[model.target])
            from scipy.stats import binom

            lo_in, hi_in = (int(v) for v in binom.interval(0.95, len(sample), 0.9))
            out.append({"id": "intervals", "title": "Its ranges, row by row",
                        "caption": f"The shaded band is the model's 90% range for each row; orange dots fell "
                                   f"outside. Of {len(sample)} rows, anything from {lo_in} to {hi_in} inside is what "
                                   "ranges that hold 90% of the time give by chance.",
                        "svg": plots.interval_svg(pred.tolist(), lower.tolist(), upper.tolist(), actual.tolist(),
                                                  fmt=fmt, coverage=0.9)})
    return out


def render_report(model: Any, data: pd.DataFrame | None = None, **options: Any) -> str:
    """The report's HTML for ``model``; with labelled ``data`` it evaluates on those rows (see
    ``build_context`` for the options: title, unit, noun, story_html)."""
    return _env().get_template("report.html.j2").render(**build_context(model, data, **options))


def write_report(model: Any, out: str | Path, data: pd.DataFrame | None = None, **options: Any) -> Path:
    """Write the report to ``out`` atomically and return its path."""
    from ..data.files import atomic_path

    html = render_report(model, data, **options)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return Path(out)


def unattached_why(model: Any) -> str | None:
    """Why a report of ``model`` is not attached to the training run its bundle names: 'mlengineer calibrate'
    changed the model after that run (its probabilities, sets or decision threshold), so the run's model is not
    the one reported on; None where the bundle is the run's own model."""
    meta = model.metadata
    calibration = str((meta.get("calibration") or {}).get("source") or "")
    trained = calibration in ("", "rows kept apart from every fit", "out-of-fold predictions of the validation rows")
    if not meta.get("recalibrated") and meta.get("threshold") is None and trained:
        return None
    return ("'mlengineer calibrate' changed this model after that run, so the run's model is not the one "
            "reported on")


def attach_to_run(model: Any, report: Path, *, tracking_uri: str | None = None) -> str | None:
    """Log ``report`` as an artifact (``report/NAME.html``) of the training run that made ``model``, so the
    MLflow UI shows it beside the run's metrics and leaderboard; return the run id, or None when the model
    has no run in that store (trained with --no-track, or in another store), or is no longer the run's model
    (``unattached_why``). Never creates a store."""
    from ..tracking.store import default_tracking_uri, mlflow_client

    run_id = model.metadata.get("run_id")
    uri = tracking_uri or default_tracking_uri()
    if not run_id or unattached_why(model) is not None:
        return None
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///").split("?")[0]).exists():
        return None
    try:
        client = mlflow_client(uri)
        client.get_run(run_id)
    except Exception:  # not this store's run, or no store to speak of: the report file stands on its own
        return None
    client.log_artifact(run_id, str(report), artifact_path="report")
    return str(run_id)
