"""The words of the report: a summary a non-engineer can act on, and the model card.

Every sentence is built from measured numbers (an evaluation on rows the model did not learn from), and
says how sure it is: a range, an interval, or a caveat.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from ..evaluation.decision import answering_words

__all__ = ["IMPORTANCE_COVERS", "NumberFormat", "calibration_words", "candidate_label", "decimal", "importance_covers",
           "model_card", "number_formatter", "one_class", "sensitive_columns", "share", "summary_sentences",
           "unit_parts"]

# column names that often hold personal characteristics a model should be checked for fairness on
_SENSITIVE = re.compile(r"(^|_)(sex|gender|race|ethnic\w*|religio\w*|age|nationality|citizenship|marital\w*|"
                        r"disab\w*|pregnan\w*|foreign\w*|immigra\w*|personal_status|birth\w*|dob|caste|"
                        r"sexual\w*|zip|zipcode|postcode|postal_code)($|_)", re.IGNORECASE)
# names of places that stand for where a person is from only where they hold places (text), not a number of
# years at an address ("residence_since")
_PLACE = re.compile(r"(^|_)(residence|country|birthplace|origin)($|_)", re.IGNORECASE)
# category values that describe a person's sex, marital status, religion or ethnic group
_SENSITIVE_VALUES = re.compile(r"\b(male|female|man|woman|men|women|non-binary|transgender|married|divorced|"
                               r"widowed|muslim|christian|jewish|hindu|buddhist|catholic|protestant|hispanic|"
                               r"latino|latina|caucasian|african.american)\b", re.IGNORECASE)


def sensitive_columns(columns: list[Any], features: list[str]) -> list[str]:
    """The features (of the schema's ``columns``) that may describe people's personal characteristics: by
    their name (sex, age, nationality, foreign_worker, ...), a place's name where the column holds text, or
    category values that do (``personal_status`` holding 'male single'), each with the value that shows it."""
    by_name = {c.name: c for c in columns}
    found = []
    for name in features:
        column = by_name.get(name)
        values = [str(v) for v in (getattr(column, "categories", None) or [])]
        text = column is not None and not str(getattr(column, "dtype", "")).startswith(("float", "int", "uint"))
        if _SENSITIVE.search(name) or (_PLACE.search(name) and text):
            found.append(name)
        elif hit := next((v for v in values if _SENSITIVE_VALUES.search(v)), None):
            found.append(f"{name} (values such as '{hit}')")
    return found


class NumberFormat:
    """Numbers as a reader writes them: thousands separated, with the report's unit before or after them.

    The unit goes before the number where it starts with a currency symbol ("$": $1,200) or anything other than
    a letter, a space, "%" or "°"; after it where it starts with a space (" rings": 1.45 rings), a letter (a word:
    "kg" and "rings" read 3 kg and 1.45 rings), "%" or "°" ("°C": 21.5°C).

    >>> NumberFormat("$")(1234.5), NumberFormat("rings")(1.45), NumberFormat("%")(-18.1)
    ('$1,234', '1.45 rings', '-18.1%')
    """

    def __init__(self, unit: str = "") -> None:
        self.prefix, self.suffix = unit_parts(unit)

    def __call__(self, v: float | None) -> str:
        if v is None or v != v:
            return "-"
        sign = "-" if v < 0 else ""
        a = abs(v)
        if a >= 1000:
            body = f"{a:,.0f}"
        elif a >= 10:
            body = f"{a:.1f}"
        else:
            body = f"{a:.3g}"
        return f"{sign}{self.prefix}{body}{self.suffix}"


def unit_parts(unit: str) -> tuple[str, str]:
    """The report's ``unit`` (``--unit``) as (prefix, suffix): see ``NumberFormat``."""
    if not unit:
        return "", ""
    first = unit[0]
    if first.isspace():
        return "", unit.rstrip()
    if unicodedata.category(first) == "Sc":  # a currency symbol: $, €, £, ¥
        return unit, ""
    if first.isalpha():
        return "", " " + unit.strip()
    if first in "%°‰":
        return "", unit.strip()
    return unit, ""


def number_formatter(unit: str = "") -> Callable[[float], str]:
    """Numbers as a reader writes them, with ``unit`` before or after them (``NumberFormat``)."""
    return NumberFormat(unit)


def decimal(v: float | None, places: int = 2, *, bounds: tuple[float, ...] = (0.0, 1.0, -1.0)) -> str:
    """``v`` rounded to ``places`` decimals, except that a value short of a bound (0 or 1) is never rounded
    onto it: an AUC of 0.9996 reads 0.9996, not 1.000, and 0.0004 reads 0.0004, not 0.000.

    >>> decimal(0.987, 2), decimal(0.9996, 3), decimal(1.0, 3)
    ('0.99', '0.9996', '1.000')
    """
    if v is None or v != v:
        return "-"
    for p in range(places, places + 3):
        text = f"{v:.{p}f}"
        if float(text) not in bounds or float(text) == v:
            return text
    scale = 10 ** (places + 3)  # still on a bound: cut towards the value's side of it instead of rounding
    nearest = min(bounds, key=lambda b: abs(b - v))
    cut = math.floor(v * scale) if nearest > v else math.ceil(v * scale)
    return f"{cut / scale:.{places + 3}f}"


def share(v: float | None, places: int = 0) -> str:
    """``v`` as a percentage that stays true: 0.995 is "99.5%" (not "100%"), 0.003 is "0.3%" (not "0%").

    >>> share(0.995), share(0.42), share(1.0), share(0.0004)
    ('99.5%', '42%', '100%', '0.04%')
    """
    if v is None or v != v:
        return "-"
    return f"{decimal(v * 100, places, bounds=(0.0, 100.0))}%"


def _top_columns(importance: dict[str, float], n: int = 3) -> str:
    items = list(importance.items())[:n]
    if not items:
        return ""
    parts = [f"{k} ({share(v)})" for k, v in items]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


#: below this share of the ensemble's weight, the learners' importance does not speak for the model: the summary
#: takes the permutation importance on the given rows, which measures the whole model, where there is one
IMPORTANCE_COVERS = 0.5


def importance_covers(meta: dict[str, Any]) -> float:
    """The share of the ensemble's weight its stored importance speaks for (the members without an exact
    attribution are left out of it); read off the importance method's words for a bundle from before it was kept."""
    if meta.get("importance_covers") is not None:
        return float(meta["importance_covers"])
    found = re.search(r"\(without (.+): (?:too slow to explain|no exact attribution)\)",
                      str(meta.get("importance_method") or ""))
    weights = {m.get("model"): float(m.get("weight") or 0.0) for m in meta.get("ensemble") or []}
    if not found or not weights:
        return 1.0
    left_out = set(found.group(1).split(", "))
    return sum(w for n, w in weights.items() if n not in left_out) / (sum(weights.values()) or 1.0)


def _importance_sentence(importance: dict[str, float], covers: float, permutation: dict[str, dict[str, float]] | None,
                         metric: str | None, noun: str) -> str:
    """What matters most to the model: the stored importance where it speaks for (most of) the model, else
    the loss each column's shuffling causes on these rows, or the stored one with the share it speaks for."""
    gains = {k: v["mean"] for k, v in (permutation or {}).items() if v["mean"] > 0}
    if covers < IMPORTANCE_COVERS and gains:
        total = sum(gains.values())
        return (f"What matters most to its predictions: <b>{_top_columns({k: v / total for k, v in gains.items()})}"
                f"</b> (each column's share of how much worse its {metric} gets when the column is shuffled "
                f"across these {noun}).")
    if covers < 0.9995:
        return (f"What matters most to the members of the model that carry {share(covers)} of its weight: "
                f"<b>{_top_columns(importance)}</b> (the others have no exact explanation, and were left out of "
                "this ranking).")
    return f"What matters most to its predictions: <b>{_top_columns(importance)}</b>."


def summary_sentences(model: Any, ev: dict[str, Any], *, rows_on: str, unit: str = "", noun: str = "rows",
                      importance: dict[str, float] | None = None,
                      permutation: dict[str, dict[str, float]] | None = None,
                      permutation_metric: str | None = None) -> list[str]:
    """Plain sentences: what the model predicts, how well, how sure, what matters, what to watch.
    ``permutation`` (with ``permutation_metric``): the permutation importance on these rows, which the
    sentence on what matters takes where the stored ``importance`` leaves out most of the model."""
    fmt = number_formatter(unit)
    m, ci = ev["metrics"], ev["intervals"]
    target = model.target
    out: list[str] = []
    n = ev["n_rows"]
    if ev["task"] == "regression":
        mae = m.get("mae")
        errs = ev.get("errors", {})
        out.append(f"This model estimates <b>{target}</b>. On {n:,} {rows_on}, its estimates were off by "
                   f"<b>{fmt(mae)}</b> on average (half of them by less than {fmt(errs.get('median_absolute'))}); "
                   f"a constant guess would be off by {fmt(ev['baseline']['mae'])}.")
        if "r2" in m and m["r2"] == m["r2"]:
            out.append(f"It explains {share(max(m['r2'], 0))} of the differences in {target} between {noun} "
                       f"(R&sup2; {decimal(m['r2'])}{_interval_words(ci.get('r2'))}); the rest depends "
                       "on things the data does not record.")
        unc = ev.get("uncertainty")
        if unc:
            held = ("" if unc.get("calibrated_here") else
                    f", and it did for <b>{share(unc['coverage'])}</b> of these {noun}")
            out.append(f"Each estimate comes with a range: the model gives a {share(unc['coverage_target'])} range "
                       f"that should hold the true {target} for {_in_ten(unc['coverage_target'], noun)}{held}. "
                       "A typical range spans "
                       f"<b>{fmt(unc['median_width'])}</b> (about &plusmn;{fmt(unc['median_half_width'])}); it is "
                       "wider where the model is less sure.")
    else:
        acc = m.get("accuracy")
        base = ev["baseline"]
        classes = [str(c) for c in model.classes]
        if ev["task"] == "binary":
            out.append(f"This model predicts whether <b>{target}</b> is <b>{classes[1]}</b> (or {classes[0]}).")
            if "roc_auc" in m:
                out.append(f"On {n:,} {rows_on}, given one {classes[1]} and one {classes[0]} case, it gave the "
                           f"{classes[1]} case the higher probability <b>{share(m['roc_auc'])}</b> of the time "
                           f"(ROC AUC {decimal(m['roc_auc'], 3)}{_interval_words(ci.get('roc_auc'), 3)}; "
                           "50% is a coin toss).")
        else:
            out.append(f"This model predicts <b>{target}</b>, one of {len(classes)} classes, on {n:,} {rows_on}.")
        only = one_class(ev)
        if only is not None:
            # a constant answer is right every time on such rows: comparing with it would mislead
            out.append(f"On {n:,} {rows_on}, {target} is <b>{only}</b> every time, so these {noun} cannot show how "
                       f"well it tells the answers apart; give {noun} that hold every answer for that. It answered "
                       f"{only} for <b>{share(acc)}</b> of them.")
        elif acc is not None:
            decision = ev.get("decision")
            at = f", {answering_words(model)}" if decision else ""
            out.append(f"It is right <b>{share(acc)}</b> of the time{at}; always answering the class most common "
                       f"in the rows it was validated on would be right {share(base['accuracy'])} of the time.")
        cal = ev.get("calibration")
        if cal:
            out.append(calibration_words(cal, n))
        unc = ev.get("uncertainty")
        if unc and unc.get("calibrated_here"):  # the sets were fitted on these rows: they hold by construction
            out.append(f"When unsure it says so: it gives sets of likely answers that should hold the true answer "
                       f"for {_in_ten(unc['coverage_target'], noun)}; here they named a single answer for "
                       f"{share(unc['single_label_share'])} of the {noun}.")
        elif unc:
            out.append(f"When unsure it says so: its {share(unc['coverage_target'])} sets of likely answers held the "
                       f"true answer for <b>{share(unc['coverage'])}</b> of these {noun}, and named a single answer "
                       f"for {share(unc['single_label_share'])} of them.")
    if importance:
        out.append(_importance_sentence(importance, importance_covers(model.metadata), permutation,
                                        permutation_metric, noun))
    worst = ev.get("worst_slices") or []
    if worst:
        w = worst[0]
        out.append(f"Watch out: it does significantly worse on {len(worst)} group{'s' if len(worst) > 1 else ''} of "
                   f"{noun}, most of all where {w['column']} is {w['value']} ({w['rows']:,} {noun}, "
                   f"{w['loss_vs_overall']:.1f}x the average error).")
    return out


def _interval_words(interval: list[float] | None, places: int = 2) -> str:
    """", 95% interval 0.81 to 0.86" for a metric's interval, or nothing where the rows could not give one."""
    if not interval or not all(v == v for v in interval):
        return ""
    return f", 95% interval {decimal(interval[0], places)} to {decimal(interval[1], places)}"


def one_class(ev: dict[str, Any]) -> str | None:
    """The one class every evaluated row holds, or None when the rows hold several."""
    confusion = ev.get("confusion") or {}
    present = [str(label) for label, row in zip(confusion.get("labels", []), confusion.get("matrix", []), strict=False)
               if sum(row) > 0]
    return present[0] if len(present) == 1 else None


#: fewest rows on which a reliability curve says anything: below this, ten bins hold a handful of rows each
CALIBRATION_MIN_ROWS = 300


def calibration_words(cal: dict[str, Any], n: int) -> str:
    """One sentence on calibration that claims no more than ``n`` rows can show."""
    gap = f"{decimal(cal['ece'] * 100, 1)} points"
    if n < CALIBRATION_MIN_ROWS:
        return (f"With only {n:,} rows there are too few to judge whether its probabilities can be taken at their "
                f"word: on average a stated probability was {gap} away from how often it came true, but on so few "
                "rows a gap like that can come from chance alone (the grey band on the calibration plot shows how "
                "far).")
    quality = "well" if cal["ece"] <= 0.03 else "fairly" if cal["ece"] <= 0.08 else "poorly"
    return (f"Its probabilities are {quality} calibrated: on average a stated probability is {gap} away from how "
            f"often it came true.")


def _in_ten(coverage: float, noun: str) -> str:
    """"9 rows in 10" for 90%; "95 rows in 100" for 95%."""
    tenths = coverage * 10
    if abs(tenths - round(tenths)) < 1e-9:
        return f"{round(tenths)} {noun} in 10"
    return f"{round(coverage * 100)} {noun} in 100"


def model_card(model: Any, ev: dict[str, Any] | None, *, rows_on: str, unit: str = "",
               seen: bool = False) -> dict[str, list[str]]:
    """The model card's sections (intended use, data, metrics, limitations, caveats), as short paragraphs;
    ``seen`` when many of the measured rows are rows the model trained on."""
    fmt = number_formatter(unit)
    meta = model.metadata
    features = list(model.feature_names)
    findings = meta.get("findings", [])
    # the columns left out, each with its whole reason (the plan's summary cuts them short)
    dropped = dict(getattr(getattr(model, "plan", None), "dropped_columns", None) or {})
    card: dict[str, list[str]] = {}
    card["Intended use"] = [
        f"Estimating {model.target} ({model.task.kind}) for new rows shaped like the training data"
        f"{' (' + str(meta['source']) + ')' if meta.get('source') else ''}, from the columns "
        f"{', '.join(features[:12])}{' and more' if len(features) > 12 else ''}.",
        "Use it to inform a decision, with its range or probability in view; not to decide about a person "
        "without a human review, and not for rows unlike the training data (other countries, periods or "
        "populations).",
    ]
    fp = meta.get("data_fingerprint", {})
    data = [f"Trained on {meta.get('n_train_rows', 0):,} rows ({fp.get('rows', '?'):,} in the table, "
            f"{fp.get('columns', '?')} columns; fingerprint {str(fp.get('sha256', ''))[:12]}), created "
            f"{meta.get('created_at', '')}; validated by {meta.get('split', 'a holdout')}."]
    if dropped:
        listed = "; ".join(f"{c} ({why.rstrip('.')})" for c, why in list(dropped.items())[:8])
        data.append(f"Not used as features: {listed}{f'; and {len(dropped) - 8} more' if len(dropped) > 8 else ''}.")
    data.extend(meta.get("feature_notes") or [])  # what the encoding left out: a text column's sentence embeddings
    dup = next((f for f in findings if f.get("check") == "duplicate_rows"), None)
    if dup:
        data.append(f"Duplicates: {dup['message']} Repeated rows on both sides of a split flatter validation "
                    "scores" + ("." if seen else "; the test rows here were scored by a model that never trained on "
                                "them."))
    card["Data"] = data
    metrics: list[str] = []
    if ev is not None:
        for k, v in list(ev["metrics"].items())[:4]:
            lo, hi = ev["intervals"].get(k, [math.nan, math.nan])
            show = fmt if k in ("rmse", "mae") else (lambda x: decimal(x, 3))
            interval = f" (95% interval {show(lo)} to {show(hi)})" if lo == lo and hi == hi else ""
            metrics.append(f"{k}: {show(v)}{interval} on {ev['n_rows']:,} {rows_on}.")
        cal = ev.get("calibration")
        if cal:
            metrics.append(f"Expected calibration error {decimal(cal['ece'], 3)} (calibration: {cal.get('method', 'none')}).")
        unc = ev.get("uncertainty")
        if unc:
            what = "ranges" if ev["task"] == "regression" else "sets"
            here = " (fitted on these same rows: that share holds by construction)" if unc.get("calibrated_here") else ""
            metrics.append(f"{share(unc['coverage_target'])} conformal {what} held the truth for "
                           f"{share(unc['coverage'], 1)} of these rows{here}.")
    card["Metrics"] = metrics or ["No labelled rows were given to evaluate on."]
    limits: list[str] = []
    if ev is not None:
        for s in (ev.get("worst_slices") or [])[:5]:
            limits.append(f"Does worse where {s['column']} = {s['value']} ({s['rows']:,} rows, "
                          f"{s['loss_vs_overall']:.1f}x the average error).")
    limits.append("Categories it saw fewer than twice in training are treated as one 'rare' group, and new ones "
                  "too; numbers beyond the training range get the estimate of the nearest value it knows.")
    limits.append("It finds patterns, not causes: a column's importance says what the model uses, not what "
                  "changing it in the world would do.")
    card["Limitations"] = limits
    caveats = [f"{f['severity']}: {('[' + f['column'] + '] ') if f.get('column') else ''}{f['message']}"
               for f in findings if f.get("severity") in ("warning", "error")][:8]
    sensitive = sensitive_columns(list(getattr(getattr(model, "schema", None), "columns", None) or []), features)
    if sensitive:
        caveats.append(f"Columns that may describe people's personal characteristics: {', '.join(sensitive)}. "
                       "Check that using them is lawful and fair for this purpose, and compare errors across "
                       "their groups (the slices above).")
    caveats.append("Ranges and sets hold their promised share on average over rows like the calibration rows, "
                   "not for every single group; and only while new data looks like the training data.")
    card["Caveats"] = caveats
    return card


def candidate_label(row: dict[str, Any]) -> str:
    """A leaderboard row's model, with the target transform it learned on where it had one, so that two rows
    of one family, one on log(y), do not look alike: "lightgbm_2 (target_transform: log)"."""
    kind = (row.get("params") or {}).get("target_transform")
    return f"{row.get('model')} (target_transform: {kind})" if kind and kind != "none" else str(row.get("model"))
