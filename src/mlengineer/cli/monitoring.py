"""Monitoring commands: monitor live rows against training, retrain and promote a challenger, roll back.

Exit status of ``monitor``: 0 when nothing that ``--fail-on`` names was found, 1 when it was (drift, a
performance drop, or an input's changed relation to the outcome), 2 for bad input (a folder with no log, a log
of another model, no rows in the time span, outcomes that match no row).
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.markup import escape

from ._common import console, fmt, handle_errors, table

_DATA_HELP = "New rows to monitor (any format 'predict' reads); a target column in them gives the outcomes."


def monitor_cmd(
    model_spec: str = typer.Argument(..., metavar="MODEL", help="A bundle folder, models:/NAME@ALIAS or a run id."),
    log: str = typer.Option(None, "--log", help="A server's prediction log folder (mlengineer serve --prediction-log)."),
    data: str = typer.Option(None, "--data", help=_DATA_HELP),
    labels: str = typer.Option(None, "--labels", help="Outcomes: the target column and a key (--key), or request_id "
                               "(and row) for a prediction log."),
    key: str = typer.Option(None, "--key", help="The column that matches --labels to --data rows."),
    time_column: str = typer.Option(None, "--time-column", help="A column of --data holding each row's time."),
    window: str = typer.Option(None, "--window", help="Also cut the rows into windows of this length: 30m, 6h, 1d, 1w."),
    by_version: bool = typer.Option(False, "--by-version", help="Also cut a prediction log by model version."),
    since: str = typer.Option(None, "--since", help="Only rows from this time on (2025-01-31 or 2025-01-31T12:00, UTC)."),
    until: str = typer.Option(None, "--until", help="Only rows before this time."),
    log_model: str = typer.Option(None, "--log-model", help="The name the model was served under, if not its own."),
    out: str = typer.Option(None, "--out", "-o", help="Write the HTML monitoring report here."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (nothing else)."),
    fail_on: list[str] = typer.Option([], "--fail-on", help="Exit with status 1 when this is found: drift, "
                                      "performance, or relation (an input's relation to the outcome changed; needs "
                                      "outcomes) (repeatable). Bad input exits with 2."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store, for registry references and run ids."),
    engine: str = typer.Option("auto", "--engine", help="local, spark (--data read by Spark, a random sample of "
                               "rows monitored), or auto: Spark when --data takes more than a quarter of memory."),
    spark_master: str = typer.Option(None, "--spark-master", help="Spark master URL [default: local[*]]."),
    spark_conf: list[str] = typer.Option([], "--spark-conf", help="KEY=VALUE, a Spark setting; repeat for more."),
    no_weights: bool = typer.Option(False, "--no-weights", help="Count every labelled row once in the realised "
                                    "metrics, not by the model's weight column."),
) -> None:
    """Compare live rows with the training rows: drift, data quality, estimated and realised performance."""
    from ..monitoring.run import failed_conditions, json_ready, monitor_model
    from ..spark.engine import choose_engine

    failed_conditions({"alarms": {}}, fail_on)  # a wrong --fail-on is bad input before any work
    if out:
        check_report_path(out)
    options: dict[str, Any] = {"labels": labels, "key": key, "time_column": time_column, "since": since,
                               "until": until, "window": window, "by_version": by_version, "log_model": log_model,
                               "tracking_uri": tracking_uri, "weights": not no_weights}
    chosen, why = choose_engine(engine, data, command="monitor") if log is None else (engine, "")
    if chosen == "spark":
        from ..errors import ConfigError
        from ..spark.monitor import monitor_spark
        from ..spark.session import parse_spark_conf

        if log is not None or data is None:
            raise ConfigError("--engine spark monitors --data (a table Spark reads), not a prediction log.")
        if why and not as_json:
            console.print(escape(why), highlight=False)
        model, result = monitor_spark(model_spec, data, master=spark_master, conf=parse_spark_conf(spark_conf),
                                      **options)
    else:
        model, result = monitor_model(model_spec, log=log, data=data, **options)
    if out:
        from ..report.monitoring import write_monitoring_report

        write_monitoring_report(result, out, model=model)
    if as_json:
        print(json.dumps(json_ready(result), default=str, allow_nan=False))
    else:
        print_monitoring(result, out)
    failed = failed_conditions(result, fail_on)
    if failed:
        if not as_json:
            console.print(f"[bold red]Found: {' and '.join(failed)}[/] (--fail-on): exit status 1.")
        raise typer.Exit(1)


def check_report_path(out: str) -> None:
    """Refuse an ``--out`` the report cannot be written to, before any work: a folder, or a file in a folder
    that does not exist."""
    from pathlib import Path

    from ..errors import ConfigError

    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"--out names {out!r}, which is a folder: pass a file for the HTML report, such as "
                          f"{str(path / 'monitoring.html')!r}.")
    if not path.parent.is_dir():
        raise ConfigError(f"--out names {out!r}, but the folder {str(path.parent)!r} does not exist: create it "
                          "first, or pass another path.")


def print_monitoring(result: dict[str, Any], out: str | None) -> None:
    """The result as the terminal shows it: summary, columns, performance, windows."""
    from ..monitoring.words import model_title

    cur = result["current"]
    console.rule(f"[bold]{escape(model_title(result['model']))}[/]: {cur['rows']:,} live rows from "
                 f"{escape(cur['source'])}")
    for line in result["summary"]:
        console.print(escape(line), highlight=False)
    rows = []
    for c in [*result["drift"]["columns"], {**result["drift"]["prediction"], "column": "(prediction)"}]:
        rows.append([c["column"], c["test"], *_measure(c), "yes" if c["drifted"] else "no",
                     c["psi"], f"{c['missing_reference']:.0%} -> {c['missing_current']:.0%}"])
    console.print(table("Drift by column", ["column", "test", "measure", "drift when", "drifted", "PSI",
                                            "missing"], rows))
    _print_performance(result)
    if result["windows"]:
        head = result["performance"]["headline"]
        wrows = [[w["label"], w["rows"], ", ".join(w["drift"]["verdict"]["drifted"][:4]) or "-" if w["tested"] else
                  "(too few rows)", _value(w["performance"]["metrics"][head]["estimated"]) if w["tested"] else "-",
                  _value(w["performance"]["metrics"][head]["realised"]) if w["tested"] else "-"] for w in result["windows"]]
        console.print(table(f"Windows ({head})", ["window", "rows", "drifted columns", "estimated", "realised"], wrows))
    problems = result["quality"]["problems"]
    if problems:
        console.print("[bold]Data quality[/]")
        for p in problems:
            console.print(f"  - {escape(p)}", highlight=False)
    alarms = [k for k, v in result["alarms"].items() if v]
    console.print(f"Alarms: [bold]{', '.join(alarms) if alarms else 'none'}[/]." +
                  (f" Report: [bold]{escape(out)}[/]" if out else ""))


def _measure(c: dict[str, Any]) -> tuple[str, str]:
    """A column's drift statistic and threshold, each named: a p-value (drift below it), a distance or a
    ROC AUC (drift from or above it); the drift table mixes them as the sample sizes choose the test."""
    from ..monitoring.drift import ALPHA, measure_of

    if c["statistic"] is None:
        return "-", "-"
    what = c.get("measure") or measure_of(c["test"])
    when = {"p-value": "p-value < ", "distance": "distance >= "}.get(what, f"{what} > ")
    if c["threshold"] is None:
        return f"{what} {fmt(c['statistic'])}", "-"
    # a distance alarms where it is also more than chance: its test's p-value below ALPHA
    chance = f" and p < {ALPHA:g}" if what == "distance" else ""
    return f"{what} {fmt(c['statistic'])}", f"{when}{fmt(c['threshold'])}{chance}"


def _print_performance(result: dict[str, Any]) -> None:
    """The performance table; where outcomes are known for some rows only, the estimate for those rows too,
    which is what the realised value and the estimate's error compare."""
    perf = result["performance"]
    n, every = perf["labelled"], result["rows"]
    split = n < every and any(e.get("estimated_on_labelled") for e in perf["metrics"].values())
    rows = []
    for name, e in perf["metrics"].items():
        on_labelled = [_value(e.get("estimated_on_labelled"))] if split else []
        rows.append([name, _value(e["reference"]), _value(e["estimated"]), *on_labelled, _value(e["realised"]),
                     None if e["error"] is None else f"{e['error']:+.4g}"])
    by = perf.get("weighted_by")
    real = f"realised (weighted by {by!r})" if by else "realised"
    how = [w for w, on in (("labelled", split), ("every row once", by)) if on]  # the estimate weighs no rows
    off = f"estimate off by ({', '.join(how)})" if how else "estimate off by"
    heads = ["metric", "reference rows (measured)", f"estimated (all {every:,} rows)" if split else "estimated",
             *([f"estimated ({n:,} labelled)"] if split else []), real, off]
    console.print(table("Performance (95% intervals)", heads, rows))


def _value(e: dict[str, Any] | None) -> str:
    if e is None:
        return "-"
    return f"{fmt(e['value'])} ({fmt(e['low'])} to {fmt(e['high'])})"


def retrain_cmd(
    model_spec: str = typer.Argument(..., metavar="MODEL", help="The champion: models:/NAME@ALIAS (or a folder)."),
    data: str = typer.Option(None, "--data", help="New labelled rows (or rows matched with --labels)."),
    log: str = typer.Option(None, "--log", help="Or a prediction log folder, with --labels."),
    log_model: str = typer.Option(None, "--log-model", help="The name the model was served under, if not its own."),
    labels: str = typer.Option(None, "--labels", help="Outcomes for the new rows (see 'mlengineer monitor')."),
    key: str = typer.Option(None, "--key", help="The column that matches --labels to --data rows."),
    time_column: str = typer.Option(None, "--time-column", help="A column of --data ordering the rows in time."),
    since: str = typer.Option(None, "--since", help="Only new rows from this time on (a window of the log or data)."),
    until: str = typer.Option(None, "--until", help="Only new rows before this time."),
    base_data: str = typer.Option(None, "--base-data", help="The champion's training table (default: its reference "
                                  "sample, up to 5,000 training rows)."),
    test_fraction: float = typer.Option(0.3, "--test-fraction", help="Share of the newest rows both models are "
                                        "tested on (neither learns from them)."),
    time_budget: float = typer.Option(None, "--time-budget", help="Seconds for the challenger (default: the "
                                      "champion's)."),
    out: str = typer.Option(None, "--out", "-o", help="Folder for the challenger's bundle."),
    no_promote: bool = typer.Option(False, "--no-promote", help="Compare and record, but leave the alias alone."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store (default ./mlruns.db)."),
) -> None:
    """Train a challenger on the reference plus new labelled rows, test both on the newest rows, promote or not."""
    from ..monitoring.retrain import check_test_fraction, retrain
    from .train import TrainingProgress

    check_test_fraction(test_fraction)  # before the progress display starts
    with TrainingProgress(time_budget or 60.0) as progress:
        result = retrain(model_spec, data=data, log=log, log_model=log_model, labels=labels, key=key,
                         time_column=time_column,
                         since=since, until=until, base_data=base_data, test_fraction=test_fraction,
                         time_budget=time_budget, out=out, tracking_uri=tracking_uri, promote=not no_promote,
                         progress=progress)
    c = result.comparison
    for note in result.notes:
        console.print(escape(note), highlight=False)
    title = f"{c['metric']} on the {result.rows['new_tested']:,} newest rows, which neither model learnt from"
    scores = table(title, ["model", c["metric"]], [["challenger", c["scores"][0]], ["champion", c["scores"][1]]])
    scores.min_width = len(title)  # the title on one line, not wrapped to the width of two short columns
    console.print(scores)
    console.print(f"Learnt from {result.rows['base']:,} reference rows and {result.rows['new_learnt']:,} new rows. "
                  f"{escape(c['test'][:1].upper() + c['test'][1:])}: p = {c['p_value']:.3g}.", highlight=False)
    console.print(f"[bold]{result.decision.capitalize()}[/]: {escape(result.reason)}.", highlight=False)
    where = f"version {result.challenger_version}, " if result.challenger_version else ""
    console.print(f"Challenger: {where}{escape(result.challenger_path)}; decision recorded in MLflow run "
                  f"{result.run_id}.", highlight=False)


def rollback_cmd(
    name: str = typer.Argument(..., help="The registered model's name."),
    alias: str = typer.Option("champion", "--alias", help="The alias to move back."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow registry (default ./mlruns.db)."),
) -> None:
    """Point the alias back at the version it named before; servers on models:/NAME@ALIAS follow."""
    from ..monitoring.retrain import rollback

    done = rollback(name, alias=alias, tracking_uri=tracking_uri)
    console.print(f"models:/{escape(name)}@{escape(alias)} is now version [bold]{done['to_version']}[/] again (was "
                  f"{done['from_version']}); recorded in MLflow run {done['run_id']}.", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("monitor")(handle_errors(monitor_cmd))
    app.command("retrain")(handle_errors(retrain_cmd))
    app.command("rollback")(handle_errors(rollback_cmd))
