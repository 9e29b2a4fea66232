"""A monitoring result in plain words: what changed in the inputs, how good the model probably is now, what
the outcomes say, and what is wrong with the data; the first lines of the report and of the terminal."""

from __future__ import annotations

from typing import Any

from .quality import mostly_missing_phrase

__all__ = ["change_phrase", "metric_change", "model_title", "number", "summary_sentences"]

_NAMES = {"accuracy": "accuracy", "roc_auc": "ROC AUC", "log_loss": "log loss", "brier": "Brier score", "f1": "F1",
          "balanced_accuracy": "balanced accuracy", "f1_macro": "macro F1", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}
_BOUNDED = {"accuracy", "roc_auc", "f1", "balanced_accuracy", "f1_macro", "r2"}


def model_title(model: dict[str, Any]) -> str:
    """The monitored model as its operators know it: ``bank (version 3)`` for a registered version (what the
    server's start line, ``/metrics`` and the log say), the bundle's name otherwise."""
    return f"{model['name']} (version {model['version']})" if model.get("version") else str(model["name"])


def number(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _date(days: float) -> str:
    import pandas as pd

    return f"{pd.Timestamp(days * 86_400, unit='s'):%Y-%m-%d}"


def change_phrase(col: dict[str, Any], *, subject: bool = True) -> str:
    """How a drifted column differs from training, in a few words (``subject``: starting with its name)."""
    text = _change(col)
    return text if subject else text.removeprefix(f"{col['column']} ").removeprefix("is ")


def _change(col: dict[str, Any]) -> str:
    name = col["column"]
    if col["missing_drifted"] and not col["value_drifted"]:
        return (f"{name} is missing in {col['missing_current']:.0%} of rows (against {col['missing_reference']:.0%} "
                "in training)")
    s = col.get("summary") or {}
    if "reference" in s and "current" in s:
        r, c = s["reference"], s["current"]
        date = col.get("role") == "datetime"  # days since 1970: said as dates, spreads in days
        at, days = (_date, " days") if date else (number, "")
        if r["median"] != c["median"] and abs(c["median"] - r["median"]) >= 0.1 * max(r["sd"], 1e-12):
            word = ("later" if date else "higher") if c["median"] > r["median"] else ("earlier" if date else "lower")
            return f"{name} is {word} than in training (median {at(c['median'])} against {at(r['median'])})"
        if r["sd"] > 0 and abs(c["sd"] / r["sd"] - 1) >= 0.2:
            word = "more spread out" if c["sd"] > r["sd"] else "less spread out"
            return f"{name} is {word} than in training (SD {number(c['sd'])}{days} against {number(r['sd'])}{days})"
        return f"{name} is distributed differently from training (mean {at(c['mean'])} against {at(r['mean'])})"
    cats = s.get("categories") or []
    if cats:
        top = cats[0]
        word = "more" if top["current"] > top["reference"] else "fewer"
        return (f"{name} has {word} {top['value']!r} ({top['current']:.0%} of rows against {top['reference']:.0%} "
                "in training)")
    if col["kind"] == "text":
        return f"the texts of {name} differ from training (a classifier tells them apart, ROC AUC {col['statistic']:.2f})"
    return f"{name} changed"


def metric_change(name: str, now: float, before: float) -> str:
    """``about 3 points less accurate`` / ``errors about 12% larger``: a metric's change in words."""
    label = _NAMES.get(name, name)
    if now != now or before != before:  # not measurable on these rows (one class only, say)
        return f"not comparable ({label} cannot be computed on one side)"
    if name in _BOUNDED:
        points = 100 * (now - before)
        if abs(points) < 0.5:
            return f"about as good ({label} within half a point)"
        if name == "accuracy":
            return f"about {abs(points):.0f} point{'s' if round(abs(points)) != 1 else ''} {'less' if points < 0 else 'more'} accurate"
        return f"about {abs(points):.0f} point{'s' if round(abs(points)) != 1 else ''} {'lower' if points < 0 else 'higher'} in {label}"
    rel = (now - before) / before if before else 0.0
    if abs(rel) < 0.02:
        return f"about as good ({label} within 2%)"
    what = "its errors are" if name in ("rmse", "mae") else f"its {label} is"
    return f"{what} about {abs(rel):.0%} {'larger' if rel > 0 else 'smaller'}"


def _gone(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The quality checks' columns that have (nearly) gone missing: a data problem, said as one."""
    return [c for c in result.get("quality", {}).get("columns", []) if c.get("mostly_missing")]


def _drift_sentence(result: dict[str, Any], importance: dict[str, float]) -> str:
    drift = result["drift"]
    gone = {c["column"] for c in _gone(result)}
    cols = [c for c in drift["columns"] if c["drifted"] and c["column"] not in gone]
    tested = drift["verdict"]["tested"] - len(gone & {c["column"] for c in drift["columns"]})
    if not cols:
        sizes = f"({result['rows']:,} live rows against {result['reference']['rows']:,} reference rows)"
        if gone:
            return (f"The other {tested} input column{'s look' if tested != 1 else ' looks'} like training: none "
                    f"changed beyond chance {sizes}.")
        return f"Inputs look like training: none of the {tested} input columns changed beyond chance {sizes}."
    cols.sort(key=lambda c: (-float(importance.get(c["column"], 0.0)), -(c["statistic"] or 0.0)))
    phrases = [change_phrase(c) for c in cols[:3]]
    more = f"; and {len(cols) - 3} more column{'s' if len(cols) > 4 else ''}" if len(cols) > 3 else ""
    return f"{'Other inputs' if gone else 'Inputs'} changed: {'; '.join(phrases)}{more}."


def _performance_sentences(result: dict[str, Any]) -> list[str]:
    perf = result["performance"]
    name = perf["headline"]
    entry = perf["metrics"][name]
    label = _NAMES.get(name, name)
    out = []
    est, before = entry["estimated"], entry["reference_estimated"] or entry["reference"]  # like with like
    if est is not None and before is not None:
        out.append(f"Estimated {label} on these rows, before any outcome is known: {number(est['value'])} (95% "
                   f"{number(est['low'])} to {number(est['high'])}), {_against_reference(entry)}: probably "
                   f"{metric_change(name, est['value'], before['value'])}.")
    real = entry["realised"]
    if real is not None:
        line = (f"Measured on the {perf['labelled']:,} rows whose outcomes are known: {label} {number(real['value'])} "
                f"(95% {number(real['low'])} to {number(real['high'])})")
        weighted, plain = perf.get("weighted_by"), entry.get("realised_every_row")
        if weighted and plain is not None:  # as evaluate counts them; the estimate counts every row once
            line += (f", each row counted by its weight in {weighted!r} (--no-weights: every row once, "
                     f"{label} {number(plain['value'])})")
        if entry["error"] is not None:
            same = entry.get("estimated_on_labelled")
            rows = "these rows" if perf["labelled"] == result["rows"] else f"these {perf['labelled']:,} rows"
            said = f" for {rows}, {number(same['value'])}," if same else ""
            line += (f"; the estimate{said}{' counting every row once,' if weighted else ''} was "
                     f"{number(abs(entry['error']))} too {'high' if entry['error'] > 0 else 'low'}")
        out.append(line + ".")
        real = entry.get("realised_every_row") or real  # the alarms compare like with like
    promised = entry.get("estimated_on_labelled")
    worse = (f"The outcomes are worse than the inputs promised ({label} {number(real['value'])}, against "
             f"{number(promised['value'])} expected from the inputs alone, 95% {number(promised['low'])} to "
             f"{number(promised['high'])})") if real and promised else ""
    p = perf.get("concept_p_value")
    said = "" if p is None else f", {f'p = {p:.2g}' if p >= 0.005 else 'p < 0.005'}"
    if perf.get("concept_drift"):
        out.append(f"{worse}: the relation between inputs and outcome changed (worse by more than the tolerance, "
                   f"beyond chance{said}), which no check of the inputs can see.")
    elif perf.get("missing_inputs"):
        names = ", ".join(map(repr, perf["missing_inputs"][:3]))
        out.append(f"{worse}, but that is a data problem, not concept drift: {names} "
                   f"{'is' if len(perf['missing_inputs']) == 1 else 'are'} missing more often than in training "
                   "(beyond chance), and where present the outcomes keep what the inputs promised (or those rows are too "
                   "few to tell). Fix the data first.")
    if perf.get("against_reference"):
        p = perf["p_value"]  # the test's p-value, said to two figures down to 0.005
        out.append(f"Alarm: the {perf['basis']} {label} is worse than on the reference rows by more than the "
                   f"tolerance, and beyond chance (a one-sided 97.5% test of the change, "
                   f"{f'p = {p:.2g}' if p >= 0.005 else 'p < 0.005'}).")
    elif perf.get("concept_drift") or perf.get("missing_inputs"):
        out.append(f"Alarm: the {label} the outcomes show is worse than the estimate for the same rows by more than "
                   f"the tolerance, beyond chance (a one-sided 97.5% test of the gap on the same rows, allowing "
                   f"for the estimate's own error from the reference rows{said}).")
    for other in perf.get("also_worse") or []:  # the headline's change held (within chance or the tolerance)
        e = perf["metrics"][other]
        now = e.get("realised_every_row") or e["realised"]
        now, before = (now, e["reference"]) if now else (e["estimated"], e["reference_estimated"] or e["reference"])
        held = "within the tolerance" if perf.get("beyond_chance") else "within chance"
        out.append(f"The {label}'s change is {held}, but the {_NAMES.get(other, other)} is worse than on the "
                   f"reference rows beyond chance and the tolerance ({number(now['value'])} against "
                   f"{number(before['value'])}); the alarm follows the {label} alone.")
    return out


def _against_reference(entry: dict[str, Any]) -> str:
    """What a live estimate is compared with: the same estimator on the rows the model was validated on (its
    own bias cancels), with what was measured there; the measured value alone where nothing was estimated."""
    before, measured = entry["reference_estimated"], entry["reference"]
    if before is None:
        return f"against {number(measured['value'])} measured on the rows it was validated on"
    there = f" (measured there: {number(measured['value'])})" if measured is not None else ""
    return f"against {number(before['value'])} estimated the same way on the rows it was validated on{there}"


def _relation_sentences(relation: dict[str, Any]) -> list[str]:
    changed = [c for c in relation.get("columns", []) if c["changed"]]
    if not changed:
        return []
    changed.sort(key=lambda c: c["p_value"])
    parts = [f"{c['column']} told {c['information_reference']:.2f} bits about the outcome in training, "
             f"{c['information_current']:.2f} now" for c in changed[:3]]
    more = f"; and {len(changed) - 3} more" if len(changed) > 3 else ""
    return [f"Relation alarm: the outcome depends on these inputs differently than in training (same values, other "
            f"outcomes): {'; '.join(parts)}{more}. Check how they are collected; retrain if the change is real."]


def summary_sentences(result: dict[str, Any], *, importance: dict[str, float], min_rows: int = 30) -> list[str]:
    """The summary of a monitoring result, most important first (``min_rows``: the fewest rows a window is
    tested on)."""
    gone = _gone(result)
    out = [f"Data problem: {'; '.join(mostly_missing_phrase(c) for c in gone)}."] if gone else []
    out.append(_drift_sentence(result, importance))
    pred = result["drift"]["prediction"]
    if pred["drifted"]:
        out.append(f"The predictions changed too: {change_phrase(pred, subject=False)}.")
    out += _performance_sentences(result)
    out += _relation_sentences(result.get("relation") or {})
    said = {mostly_missing_phrase(c) for c in gone}
    problems = [p for p in result.get("quality", {}).get("problems", []) if p not in said]
    if problems:
        out.append(f"Data quality: {problems[0]}" + (f"; and {len(problems) - 1} more finding"
                                                     f"{'s' if len(problems) > 2 else ''}." if len(problems) > 1
                                                     else "."))
    if result.get("unmonitored"):
        out.append(f"Not compared: {', '.join(result['unmonitored'])} (pictures: each one is its own value, and "
                   "comparing their contents would need an image model).")
    out += result["current"].get("notes", [])
    skipped = result["current"].get("untimed", 0)
    if skipped:
        out.append(f"{skipped:,} row{'s have' if skipped > 1 else ' has'} no readable time (empty or unreadable) and "
                   f"{'are' if skipped > 1 else 'is'} left out of the windows; the overall figures include "
                   f"{'them' if skipped > 1 else 'it'}.")
    windows = result.get("windows") or []
    small = sum(not w["tested"] for w in windows)
    if small:
        out.append(f"{small:,} of the {len(windows):,} windows {'hold' if small > 1 else 'holds'} too few rows to "
                   f"test (fewer than {min_rows}) and {'are' if small > 1 else 'is'} listed only"
                   f"{'; a longer --window gives each more' if small > 1 else ''}.")
    if result["alarms"]["drift"]:
        gone_drifted = [c["column"] for c in gone if c["column"] in result["drift"]["verdict"]["drifted"]]
        why = f" ({', '.join(map(repr, gone_drifted))}: missing values count as drift)" if gone_drifted else ""
        out.append(f"Drift alarm: {'; '.join(result['drift']['verdict']['reasons'])}{why}.")
    return out
