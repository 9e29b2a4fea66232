"""Commands that look at data before any model: profile and audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ._common import DbOption, SqlOption, console, handle_errors, parse_roles, read_data, table

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _source_line(df: Any, data: str | None) -> str:
    from ..data.load import describe_source

    how = describe_source(df.attrs.get("source", {}))
    where = data or "the query"
    return f"Read {len(df):,} rows x {df.shape[1]} columns from {where}" + (f" ({', '.join(how)})" if how else "") + "."


def _prepare(data: str | None, sql: str | None, db: str | None, target: str | None, column_role: list[str],
             task: str) -> tuple[Any, Any, str | None]:
    from ..data.schema import infer_schema
    from ..errors import ConfigError
    from ..tasks import infer_task_kind

    if task not in ("auto", "binary", "multiclass", "regression"):
        raise ConfigError(f"--task must be auto, binary, multiclass or regression; got {task!r}.")
    df = read_data(data, sql, db)
    console.print(_source_line(df, data), highlight=False)
    schema = infer_schema(df, target, parse_roles(column_role))
    kind = None
    if target is not None:
        filled = df[target].dropna()
        kind = task if task != "auto" else (infer_task_kind(filled)[0] if len(filled) else None)
    return df, schema, kind


def _findings_table(findings: list[Any], title: str) -> Any:
    rows = [[f"[{_SEVERITY_STYLE[f.severity]}]{f.severity}[/]", f.column or "", f.message, f.suggestion]
            for f in findings]
    return table(title, ["severity", "column", "finding", "what to do"], rows)


def profile_cmd(
    data: str = typer.Argument(None, help="A table: CSV, TSV, Parquet, JSON, JSONL, Excel, or a folder of parts."),
    target: str = typer.Option(None, "--target", "-t", help="Also show each column's relation to this column."),
    out: str = typer.Option(None, "--out", "-o", help="Write a self-contained HTML page here (opens offline)."),
    column_role: list[str] = typer.Option([], "--column-role", help="COLUMN=ROLE, to override an inferred role."),
    task: str = typer.Option("auto", "--task", help="binary, multiclass, regression, or auto (with --target)."),
    sql: str = SqlOption,
    db: str = DbOption,
) -> None:
    """Per-column statistics, missingness, cardinality, distribution and relation to the target."""
    from ..data.profile import profile_table

    df, schema, kind = _prepare(data, sql, db, target, column_role, task)
    profile = profile_table(df, target=target, schema=schema, task_kind=kind)
    rows = []
    for c in profile.columns:
        row = [c.name, c.role, f"{c.missing_fraction:.1%}" if c.n_missing else "", f"{c.n_unique:,}", c.summary]
        if target:
            row.append(f"{c.target_skill:.2f}" if c.target_skill is not None else "")
        rows.append(row)
    headers = ["column", "role", "missing", "distinct", "summary"] + (["alone predicts target"] if target else [])
    title = (f"{profile.n_rows:,} rows x {profile.n_columns} columns, {profile.n_duplicate_rows:,} duplicate rows, "
             f"{profile.memory_bytes / 2**20:,.1f} MiB in memory")
    console.print(table(title, headers, rows))
    if target and profile.target_profile is not None:
        t = profile.target_profile
        console.print(f"Target [bold]{target}[/] ({kind}): {t.summary}"
                      + (f"; missing in {t.n_missing:,} rows" if t.n_missing else ""), highlight=False)
        console.print("[dim]'alone predicts target': the column's skill on its own on rows it did not learn from "
                      "(0 = no better than guessing, 1 = never wrong).[/]")
    if out:
        from ..data.profile_html import write_profile_html
        from ..data.quality import audit

        findings = audit(df, schema, task_kind=kind) if target else None
        path = write_profile_html(profile, out, title=Path(data).name if data else "query", findings=findings)
        console.print(f"Profile written to [bold]{path}[/].")


def audit_cmd(
    data: str = typer.Argument(None, help="A table: CSV, TSV, Parquet, JSON, JSONL, Excel, or a folder of parts."),
    target: str = typer.Option(None, "--target", "-t", help="The column a model would predict (enables target "
                               "checks and leakage detection)."),
    column_role: list[str] = typer.Option([], "--column-role", help="COLUMN=ROLE, to override an inferred role."),
    task: str = typer.Option("auto", "--task", help="binary, multiclass, regression, or auto."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON lines instead of a table."),
    fail_on: str = typer.Option(None, "--fail-on", help="Exit with status 1 if a finding is at least this severe "
                                "(warning or error): for use in CI."),
    sql: str = SqlOption,
    db: str = DbOption,
) -> None:
    """Findings about a table, each with a severity and a suggested fix (leakage among them, with --target)."""
    from ..data.clean import fit_cleaning_plan
    from ..data.findings import SEVERITY_ORDER
    from ..data.quality import audit
    from ..errors import ConfigError

    if fail_on is not None and fail_on not in ("warning", "error"):
        raise ConfigError(f"--fail-on must be warning or error; got {fail_on!r}.")
    df, schema, kind = _prepare(data, sql, db, target, column_role, task)
    findings = audit(df, schema, task_kind=kind)
    if as_json:
        for f in findings:
            typer.echo(json.dumps(f.model_dump(), default=str))
    elif findings:
        console.print(_findings_table(findings, f"{len(findings)} findings"))
    else:
        console.print("No findings: nothing in this table needs a look.")
    if not as_json:
        try:
            plan = fit_cleaning_plan(df, schema, findings=findings)
        except Exception:  # nothing left to learn from: the findings above already say why
            plan = None
        if plan is not None and plan.dropped_columns:
            console.print("Training would leave out: " + "; ".join(
                f"[bold]{k}[/] ({v.split(':')[0]})" for k, v in plan.dropped_columns.items()) + ".",
                highlight=False)
    if fail_on is not None and any(SEVERITY_ORDER[f.severity] >= SEVERITY_ORDER[fail_on] for f in findings):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("profile")(handle_errors(profile_cmd))
    app.command("audit")(handle_errors(audit_cmd))
