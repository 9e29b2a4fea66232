"""Commands that test and explain a trained model: compare, explain, calibrate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ._common import (
    MODEL_HELP,
    DbOption,
    SqlOption,
    TrackingOption,
    console,
    err_console,
    fmt,
    handle_errors,
    named_source,
    read_data,
    say,
    table,
)


def compare_cmd(
    model_a: str = typer.Argument(..., metavar="A", help="A model bundle folder or an MLflow run id."),
    model_b: str = typer.Argument(..., metavar="B", help="Another model or run, or 'baseline' (a constant answer)."),
    data: str = typer.Option(None, "--data", help="Labelled rows neither model learned from."),
    metric: str = typer.Option(None, "--metric", help="Metric to compare on (default: A's training metric)."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI, for run ids."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    no_weights: bool = typer.Option(False, "--no-weights", help="Count every row once, though the rows hold the "
                                    "weight column the model was trained with (by default its weights count)."),
    sql: str = SqlOption,
    db: str = DbOption,
) -> None:
    """Is A better than B on the same rows? A paired significance test and a plain verdict."""
    from ..evaluation.compare import BASELINE, compare_models
    from ..tracking.lookup import open_model

    a = model_a if model_a == BASELINE else open_model(model_a, tracking_uri=tracking_uri)
    b = model_b if model_b == BASELINE else open_model(model_b, tracking_uri=tracking_uri)
    frame = read_data(data, sql, db, out=err_console if as_json else None, model=a if a != BASELINE else b)
    result = compare_models(a, b, frame, metric=metric, weights=not no_weights)
    if as_json:
        from ..monitoring.run import json_ready  # a metric of rows of one class is NaN: JSON has no NaN

        console.print_json(json.dumps(json_ready(result), default=str))
        return
    d = result["difference"]
    given = [model_a, model_b]
    rows = [[label, name, given[i], score] for i, (label, name, score) in
            enumerate(zip("AB", result["models"], result["scores"], strict=True))]
    where = f" of {Path(data).name}" if data else ""
    weighted = f", weighted by {result['weighted_by']!r}" if result.get("weighted_by") else ""
    console.print(table(f"{result['metric']} on {result['rows']:,} labelled rows{where}{weighted}",
                        ["", "model", "given as", result["metric"]], rows))
    # a bootstrap's detail is the interval of the difference, said here already
    detail = "" if result["test"].startswith("paired bootstrap") else f"; {result['detail']}"
    say(f"Difference A - B: {fmt(d['difference'])} (95% interval {fmt(d['low'])} to {fmt(d['high'])}); "
        f"{result['test']}: p = {result['p_value']:.3g}{detail}.")
    _answered_at(result, a if a != BASELINE else b)
    say((result["verdict"], "bold"))


def _answered_at(result: dict[str, Any], model: Any) -> None:
    """A line per model whose labels the comparison took at its decision threshold, as it answers them."""
    from ..evaluation.decision import decision_words, scores_labels

    if isinstance(model, str) or not scores_labels(result["metric"], model.task.kind):
        return
    for name, t in zip(result["models"], result.get("thresholds") or [], strict=False):
        if t is not None:
            say(f"{name}'s labels are the ones it answers: {decision_words(str(model.classes[1]), t)}.")


def explain_cmd(
    model_path: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    rows: str = typer.Argument(None, metavar="ROWS", help="Rows to explain (any format 'predict' reads); "
                               "without it, what matters to the model overall."),
    top: int = typer.Option(5, "--top", help="How many columns to show per row."),
    target_class: str = typer.Option(None, "--class", help="Explain the probability of this class."),
    out: str = typer.Option(None, "--out", "-o", help="Write the explanations to a JSON file."),
    limit: int = typer.Option(10, "--limit", help="Most rows to print (all go to --out)."),
    sql: str = SqlOption,
    db: str = DbOption,
    tracking_uri: str = TrackingOption,
) -> None:
    """Why the model predicts what it does: the columns that moved each prediction most, or overall."""
    from ..errors import ConfigError
    from ..explain.contributions import explain_rows
    from ..tracking.lookup import open_model

    if top < 1 or limit < 0:
        raise ConfigError(f"--top must be at least 1 and --limit at least 0; got --top {top}, --limit {limit}.")
    model = open_model(model_path, tracking_uri=tracking_uri)
    if not (rows or sql or db):
        from ..report.explained import importance_caption

        imp = model.metadata.get("feature_importance") or {}
        console.print(table(f"What matters most to {model.name}", ["column", "share of importance"],
                            [[k, f"{v:.1%}"] for k, v in imp.items()]))
        say(importance_caption(model))  # what the shares measure, for which members, and why others are left out
        return
    frame = read_data(rows, sql, db, model=model)
    cls = _label(model, target_class) if target_class is not None else None
    with named_source(rows or "the query"):
        explained = explain_rows(model, frame, top=top, target_class=cls)
    if out:
        from ..data.files import atomic_path

        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(explained, indent=1, default=str), encoding="utf-8")
        say(f"Wrote {len(explained):,} explanations to ", (out, "bold"), ".")
    for i, e in enumerate(explained[:limit]):
        # + 0.0: a contribution of -0.0 prints as +0, not -0
        # a sum's rounding noise (1e-9 on a price of 70,000) is no move: said as 0
        noise = 1e-9 * max(abs(e["output"]), abs(e["base_value"]), 1.0)
        lines = [[c["column"], _cell(c["value"], c.get("note")), _moved(c["contribution"], noise)]
                 for c in e["contributions"]]
        others = e.get("other_columns_count", 1)
        if others:  # --top at least the columns there are: nothing else moved it
            lines.append([f"({others} other column{'s' if others > 1 else ''})", "", _moved(e["other_columns"], noise)])
        said = fmt(e["prediction"])  # a value explained as itself is said once
        what = "" if fmt(e["output"]) == said else f"; {e['explained']} {fmt(e['output'])}"
        base = f"against {fmt(e['base_value'])} for an average row"
        if str(e["explained"]).startswith("probability") and e.get("mean_output") is not None:  # a margin's base
            base = (f"against {fmt(e['base_value'])} for a row of average log-odds (the model answers "
                    f"{fmt(e['mean_output'])} on average)")
        console.print(table(f"Row {i + 1}: predicted {said}{what}, {base}", ["column", "value", "moved it by"], lines))
        _inside_lines(e["contributions"])
    if len(explained) > limit:
        console.print(f"... {len(explained) - limit:,} more rows; use --out FILE to save them all.")


def _cell(value: Any, note: str | None = None, limit: int = 120) -> Any:
    """A value as a table cell: long text cut to its start and its length (--out keeps it whole), a missing
    value said so, and the explanation's note on it."""
    if value is None:
        return "(missing)"
    if isinstance(value, str) and len(value) > limit:
        value = f"{value[:limit - 20].rstrip()}... ({len(value):,} characters)"
    return f"{value} ({note})" if note else value


def _moved(v: float, noise: float = 0.0) -> str:
    """A contribution with its sign: +36,750 and -0.0351, never +3.675e+04 (+ 0.0: -0.0 prints as +0); one no
    larger than ``noise`` (a sum's rounding) as 0."""
    if abs(v) <= noise:
        return "0"
    return f"{v + 0.0:+,.0f}" if abs(v) >= 1000 else f"{v + 0.0:+,.4g}"


def _inside_lines(contributions: list[dict[str, Any]]) -> None:
    """The words of a text column and the occlusion map of a picture, under a row's table."""
    from ..explain.media import occlusion_text

    for c in contributions:
        if c.get("words"):
            words = ", ".join(f"{w['word']} ({w['weight']:+.2g})" for w in c["words"][:8])
            console.print(f"  words in {c['column']} (weight in its TF-IDF score): {words} (+ raises the score, - "
                          "lowers it)", markup=False, highlight=False)
        if c.get("occlusion"):
            console.print(f"  where the model looks in {c['column']} ({c['occlusion']['unit']} lost when a patch is "
                          f"hidden; {occlusion_legend()}):", markup=False, highlight=False)
            for line in occlusion_text(c["occlusion"]["grid"]):
                console.print(f"    |{line}|", markup=False, highlight=False)


def occlusion_legend() -> str:
    """Every symbol an occlusion map prints, in words; read off ``occlusion_text`` itself (a grid of one cell
    per level, most lost first), so the legend names the symbols the map uses."""
    from ..explain.media import occlusion_text

    levels = [1.0, *((k + 0.5) / 6 for k in range(5, 0, -1))]
    most, *less = [line[0] for line in occlusion_text([[v] for v in [*levels, 0.0, -1.0]])]
    *less, blank, helps = less
    none = "a blank" if not blank.strip() else blank
    return (f"{most} most, then {' '.join(less)} less and less, {none} little or none; {helps} where hiding the "
            "patch helps the prediction")


def calibrate_cmd(
    model_path: str = typer.Argument(..., metavar="MODEL", help="A model bundle folder (updated in place, the "
                                     "model before kept beside it, unless --out), or a run id or models:/NAME@ALIAS "
                                     "with --out (the store's copy is never changed)."),
    data: str = typer.Option(None, "--data", help="Labelled rows kept apart from training (default: the "
                             "validation rows the trainer kept)."),
    out: str = typer.Option(None, "--out", "-o", help="Write the calibrated model here and leave MODEL as it is."),
    method: str = typer.Option("auto", "--method", help="auto, none, platt, isotonic or temperature."),
    cost_fp: float = typer.Option(None, "--cost-fp", help="Cost of a false positive, to choose the threshold: "
                                  "answering the positive class (the second of the model's classes in sorted "
                                  "order, 'yes' of no/yes, 'good' of bad/good; calibrate names it) for a row of the "
                                  "other class."),
    cost_fn: float = typer.Option(None, "--cost-fn", help="Cost of a false negative, to choose the threshold: "
                                  "answering the other class for a row of the positive class (the second in "
                                  "sorted order)."),
    target_precision: float = typer.Option(None, "--target-precision", help="Choose the threshold that reaches "
                                           "this precision with the most recall: the share of rows answered with "
                                           "the positive class (the second in sorted order) that are of it."),
    target_recall: float = typer.Option(None, "--target-recall", help="Choose the threshold that reaches this "
                                        "recall with the most precision: the share of the positive class's rows "
                                        "(the second class in sorted order) answered with it."),
    positive_class: str = typer.Option(None, "--positive-class", help="The class the decision threshold, its "
                                       "precision and recall are about (default: the second of the two classes in "
                                       "sorted order), e.g. --positive-class no where 'no' is the class to find."),
    name: str = typer.Option(None, "--name", help="The calibrated model's name (default: the --out folder's "
                             "name; updated in place, MODEL keeps its name)."),
    no_weights: bool = typer.Option(False, "--no-weights", help="Count every row once, though the model was "
                                    "trained with a weight column (by default its weights count)."),
    sql: str = SqlOption,
    db: str = DbOption,
    tracking_uri: str = TrackingOption,
) -> None:
    """Calibrate the model's probabilities and refit its conformal ranges/sets on rows it never learned
    from; optionally choose a binary model's decision threshold by cost or target precision/recall (about its
    positive class, the second of its classes in sorted order, which the output names)."""
    from ..errors import ConfigError
    from ..evaluation.uncertainty import recalibrate
    from ..tracking.lookup import open_model

    if out is None and not Path(model_path).is_dir():
        raise ConfigError(f"{model_path!r} is no bundle folder to update in place (a run's or a registered version's "
                          "copy in the store is never changed): pass --out FOLDER for the calibrated model.")
    model = open_model(model_path, tracking_uri=tracking_uri)
    positive = None if positive_class is None else _positive_index(
        model, positive_class, any(v is not None for v in (cost_fp, cost_fn, target_precision, target_recall)))
    df = read_data(data, sql, db, model=model) if (data or sql or db) else None
    summary = recalibrate(model, df, method=method, cost_fp=cost_fp, cost_fn=cost_fn, positive=positive,
                          target_precision=target_precision, target_recall=target_recall, weights=not no_weights)
    kept = None
    if out is None:
        kept = _keep_previous(model_path)
    if name or (out is not None and Path(out).name):  # a copy is named after its folder, as training names one
        model.metadata["name"] = name or Path(out).name
    model.save(out or model_path)
    say(f"Fitted on {summary['source']}.")
    if "method" in summary:
        say("Calibration: ", (summary["method"], "bold"), f"; expected calibration error on those rows "
            f"{summary['ece_before']:.4f} before, {summary['ece_after']:.4f} after.")
    else:
        say("Conformal prediction intervals refitted.")
    t = summary.get("threshold")
    if t:
        _threshold_lines(model, t, again=bool(summary.get("threshold_again")))
    if summary.get("threshold_removed"):
        why = summary.get("threshold_why") or "its rule was not kept"
        say((f"The decision threshold chosen before no longer fits the new probabilities, and {why}: removed (the "
             "class of the highest probability is answered); choose one again with --cost-fp/--cost-fn, "
             "--target-precision or --target-recall.", "yellow"))
    say("Model saved to ", (str(model.path), "bold"), ".")
    if kept is not None:
        console.print(f"The model before calibration is kept at {kept}; to go back: rm -r {model_path} && "
                      f"mv {kept} {model_path}", highlight=False, markup=False)


def _positive_index(model: Any, label: str, rule: bool) -> int:
    """The index of ``--positive-class``'s class in a binary model, or the one-line error saying why it cannot be."""
    from ..errors import ConfigError
    from ..evaluation.threshold import positive_index

    index = positive_index(model, label)
    if not rule:
        raise ConfigError(f"--positive-class {label!r} names the class a decision threshold is about: choose the "
                          "threshold too, with --cost-fp/--cost-fn, --target-precision or --target-recall.")
    return index


def _threshold_lines(model: Any, t: dict[str, Any], *, again: bool) -> None:
    """The decision threshold calibrate chose, with the positive class it is about named."""
    from ..evaluation.threshold import positive_side

    side = positive_side(model)
    assert side is not None
    positive, value = side
    negative = next(c for c in model.classes if c != positive)
    again_words = " chosen again by its rule on the new probabilities" if again else ""
    say(f"Decision threshold ({t['rule']}){again_words}, on the probability of {positive} (the positive class): ",
        (f"{value:.4f}", "bold"), f", with precision {t['precision']:.1%} and recall {t['recall']:.1%} of "
        f"{positive} on those rows.")
    say(f"The model now answers {positive} from that probability on, {negative} below it: a false positive is "
        f"{positive} answered for a {negative} row, a false negative {negative} answered for a {positive} row.")


def _keep_previous(model_path: str) -> str:
    """A copy of the bundle as it is, beside it, before it is updated in place; its path."""
    import datetime as dt
    import shutil
    from pathlib import Path

    src = Path(model_path)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    dest = src.with_name(f"{src.name}.before-calibrate-{stamp}")
    shutil.copytree(src, dest)
    return str(dest)


def _label(model: object, text: str) -> object:
    """The model's class whose text is ``text`` (classes may be numbers; the command line gives text)."""
    from ..errors import ConfigError

    if not model.task.is_classification:  # type: ignore[attr-defined]
        raise ConfigError(f"--class is for classifiers; this model predicts a number "
                          f"({model.target!r}): leave --class out.")  # type: ignore[attr-defined]
    for c in model.classes:  # type: ignore[attr-defined]
        if str(c) == text:
            return c
    raise ConfigError(f"--class {text!r} is not a class of this model; its classes are "
                      f"{', '.join(map(str, model.classes))}.")  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    app.command("compare")(handle_errors(compare_cmd))
    app.command("explain")(handle_errors(explain_cmd))
    app.command("calibrate")(handle_errors(calibrate_cmd))


def rows_met(model: Any, frame: Any) -> dict[str, Any]:
    """How many of ``frame``'s labelled rows the model has met already, found as the report finds them: rows of
    its training table (``trained_rows``) and rows ``mlengineer calibrate`` fitted its calibration on
    (``calibration_rows``), each None where the bundle cannot tell; and ``warnings``, the report's sentences
    on them as plain text, for the evaluate command to print above its numbers."""
    from ..evaluation.seen import calibration_rows
    from ..report.rows import calibrated_words, plain, rows_words, trained_rows

    labelled = frame.loc[frame[model.target].notna()]
    seen, calibrated = trained_rows(model, labelled), calibration_rows(model, labelled)
    warnings = [rows_words("rows", seen, None)[1], calibrated_words(model, "rows", calibrated)[1]]
    return {"trained_rows": seen, "calibration_rows": calibrated,
            "warnings": [plain(w) for w in warnings if w]}


def print_evaluation(model: object, result: dict, *, source: str | None = None) -> None:
    """The evaluate command's output: metrics with their intervals and a constant baseline, calibration,
    the honesty of the model's ranges or sets, and the slices where it does significantly worse. The title
    names the model and the rows it was measured on (``source``: the data file)."""
    from ..evaluation.threshold import positive_side

    level = f"{result['interval_level']:.0%}"
    base = result["baseline"]
    import math

    def interval(k: str) -> str:
        lo, hi = result["intervals"].get(k, (math.nan, math.nan))
        return f"{fmt(lo)} to {fmt(hi)}" if math.isfinite(lo) and math.isfinite(hi) else "-"

    rows = [[k, v, interval(k), base.get(k)] for k, v in result["metrics"].items()]
    for warning in result.get("warnings") or []:  # rows it trained on, or was calibrated on
        say((warning, "bold yellow"))
    on = f" on {Path(source).name}" if source else ""
    weighted = f", weighted by {result['weighted_by']!r}" if result.get("weighted_by") else ""
    console.print(table(f"Model {model.name}{on}: {result['n_rows']:,} labelled rows{weighted}",  # type: ignore[attr-defined]
                        ["metric", "value", f"{level} interval", "constant baseline"], rows))
    if result.get("baseline_from"):
        console.print(f"Constant baseline: {result['baseline_from']}.", highlight=False, markup=False)
    if weighted:
        console.print(f"Each row counts for its weight in {result['weighted_by']!r}, the column the model was "
                      "trained to weight rows by (--no-weights: every row once).", highlight=False, markup=False)
    cal = result.get("calibration")
    if cal:
        say(f"Calibration ({cal.get('method', 'none')}): expected calibration error {cal['ece']:.4f}"
            + (f" (before calibration {cal['ece_before_calibration']:.4f})" if "ece_before_calibration" in cal else "")
            + ".")
    unc = result.get("uncertainty")
    if unc and result["task"] == "regression":
        console.print(f"{unc['coverage_target']:.0%} prediction ranges held the true value for {unc['coverage']:.1%} "
                      f"of these rows (median width {fmt(unc['median_width'])}).", highlight=False)
    elif unc:
        console.print(f"{unc['coverage_target']:.0%} prediction sets held the true label for {unc['coverage']:.1%} "
                      f"of these rows (average {unc['mean_set_size']:.2f} labels; one label for "
                      f"{unc['single_label_share']:.0%}).", highlight=False)
    t = result.get("threshold")
    side = positive_side(model)
    positive = str(side[0] if side else "")
    if t and side:
        console.print(f"Decision threshold {side[1]:.4f} ({t['rule']}) on the probability of {positive}: precision "
                      f"{t['precision_here']:.1%} and recall {t['recall_here']:.1%} of {positive} on these rows.",
                      highlight=False)
    if result.get("decision"):
        from ..evaluation.decision import answering_words

        console.print(f"Accuracy, balanced accuracy, F1, the confusion matrix and the slices count the labels the "
                      f"model answers: {answering_words(model)}.", highlight=False)
    worst = result.get("worst_slices") or []
    if worst:
        key = "mae" if result["task"] == "regression" else "accuracy"
        console.print(table("Slices where the model does significantly worse", ["column", "value", "rows", key,
                                                                                "loss vs overall"],
                            [[s["column"], s["value"], s["rows"], s[key], f"{s['loss_vs_overall']:.2f}x"]
                             for s in worst]))
    elif result.get("slices"):
        console.print(f"No slice of the {len({s['column'] for s in result['slices']})} categorical columns is "
                      "significantly worse than the rest.")
