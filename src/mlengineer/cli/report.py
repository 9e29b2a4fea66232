"""The report command."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import MODEL_HELP, DbOption, SqlOption, handle_errors, named_source, read_data, say


def report_cmd(
    model_path: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    data: str = typer.Option(None, "--data", help="Labelled rows to evaluate the model on."),
    out: str = typer.Option("report.html", "--out", "-o", help="Where to write the HTML file."),
    title: str = typer.Option(None, "--title", help="The report's title (default: the model's name)."),
    unit: str = typer.Option("", "--unit", help="How the target's values are written: a currency symbol goes "
                             "before the number ('$': $1,200); a word, or a unit starting with a space, '%' or "
                             "'°', goes after it (' rings' or 'rings': 1.45 rings; 'kg': 3 kg; '°C': 21.5°C)."),
    noun: str = typer.Option("rows", "--noun", help="What one row is, in the reader's words: 'customers', 'houses'."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="The MLflow store of the model's training run "
                                     "(default ./mlruns.db): the report is attached to that run when it is there; "
                                     "a run id or models:/ name is looked up in it."),
    sql: str = SqlOption,
    db: str = DbOption,
) -> None:
    """Write a self-contained HTML report of a model (opens offline): a summary in plain words, data
    quality, leaderboard, metrics with intervals, plots, slices and a model card. Give --data with labelled
    rows the model never trained on; without it the report uses the validation rows kept at training. The
    report is also attached to the model's training run, for the MLflow UI ('mlengineer ui')."""
    from ..data.files import check_place
    from ..errors import ConfigError
    from ..report.html import attach_to_run, unattached_why, write_report

    check_place(Path(out))  # before any work: a folder that does not exist, or a folder named as the file
    from ..tracking.lookup import open_model

    model = open_model(model_path, tracking_uri=tracking_uri)
    df = read_data(data, sql, db, model=model) if (data or sql or db) else None
    if df is not None and model.target not in df.columns:
        raise ConfigError(f"--data {data or '(the --sql query)'} has no column {model.target!r}, the target: the "
                          f"report measures the model on rows with their true {model.target}. Add that column, "
                          "or leave out --data to report on the validation rows kept at training.")
    with named_source(data or "the query"):  # an error of the rows names the file, as evaluate's do
        path = write_report(model, out, df, title=title, unit=unit, noun=noun)
    run = attach_to_run(model, path, tracking_uri=tracking_uri)
    why = unattached_why(model) if model.metadata.get("run_id") else None
    if run:
        say("Report written to ", (str(path), "bold"), f" (and attached to run {run[:8]}).")
    elif why:  # the run's model is not this one: its report would describe a model that run never made
        say("Report written to ", (str(path), "bold"), f" (not attached to run {str(model.metadata['run_id'])[:8]}: "
            f"{why}).")
    else:
        say("Report written to ", (str(path), "bold"), ".")


def register(app: typer.Typer) -> None:
    app.command("report")(handle_errors(report_cmd))
