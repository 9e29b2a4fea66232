"""The report command."""

from __future__ import annotations

import typer

from ._common import DbOption, SqlOption, console, handle_errors, read_data


def report_cmd(
    model_path: str = typer.Argument(..., metavar="MODEL", help="A model bundle folder."),
    data: str = typer.Option(None, "--data", help="Labelled rows to evaluate the model on."),
    out: str = typer.Option("report.html", "--out", "-o", help="Where to write the HTML file."),
    title: str = typer.Option(None, "--title", help="The report's title (default: the model's name)."),
    unit: str = typer.Option("", "--unit", help="A prefix for the target's values in the text, e.g. '$'."),
    noun: str = typer.Option("rows", "--noun", help="What one row is, in the reader's words: 'customers', 'houses'."),
    sql: str = SqlOption,
    db: str = DbOption,
) -> None:
    """Write a self-contained HTML report of a model (opens offline): a summary in plain words, data
    quality, leaderboard, metrics with intervals, plots, slices and a model card. Give --data with labelled
    rows the model never trained on; without it the report uses the validation rows kept at training."""
    from ..bundle.model import load
    from ..report.html import write_report

    model = load(model_path)
    df = read_data(data, sql, db) if (data or sql or db) else None
    path = write_report(model, out, df, title=title, unit=unit, noun=noun)
    console.print(f"Report written to [bold]{path}[/].")


def register(app: typer.Typer) -> None:
    app.command("report")(handle_errors(report_cmd))
