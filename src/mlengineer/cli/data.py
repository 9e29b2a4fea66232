"""Commands that look at data before any model: profile and audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from ._common import (
    DbOption,
    SqlOption,
    console,
    err_console,
    handle_errors,
    parse_roles,
    read_data,
    say,
    table,
)

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _source_line(df: Any, data: str | None) -> str:
    from ..data.load import describe_source

    how = describe_source(df.attrs.get("source", {}))
    if dotted := df.attrs.get("source", {}).get("thousands_dots"):  # 1.234.567 in a comma file: read as numbers
        how.append(f"dots as thousands marks in {', '.join(map(repr, dotted[:5]))}")
    where = data or "the query"
    return f"Read {len(df):,} rows x {df.shape[1]} columns from {where}" + (f" ({', '.join(how)})" if how else "") + "."


def _prepare(data: str | None, sql: str | None, db: str | None, target: str | None, column_role: list[str],
             task: str, out: Console | None = None) -> tuple[Any, Any, str | None]:
    """The table read, its schema and task kind; what was read is said on ``out`` (stderr under --json)."""
    from ..data.schema import infer_schema
    from ..errors import ConfigError
    from ..tasks import infer_task_kind

    if task not in ("auto", "binary", "multiclass", "regression"):
        raise ConfigError(f"--task must be auto, binary, multiclass or regression; got {task!r}.")
    df = read_data(data, sql, db, said=lambda df: _source_line(df, data), out=out, roles=parse_roles(column_role))
    schema = infer_schema(df, target, parse_roles(column_role))
    kind = None
    if target is not None:
        filled = df[target].dropna()
        kind = task if task != "auto" else (infer_task_kind(filled)[0] if len(filled) else None)
    return df, schema, kind


def _examine(engine: str, command: str, data: str | None, sql: str | None, db: str | None, target: str | None,
             column_role: list[str], task: str, master: str | None, conf: list[str], *, profile: bool,
             findings: bool, out: Console | None = None) -> Any:
    """The table profiled and/or audited on Spark when the engine is (or, left to auto, must be) Spark;
    None when the command runs in memory."""
    from ..errors import ConfigError
    from ..spark.engine import choose_engine

    chosen, why = choose_engine(engine, data, command=command, db=db)
    if chosen != "spark":
        return None
    from ..spark.profile import examine
    from ..spark.session import parse_spark_conf

    if task not in ("auto", "binary", "multiclass", "regression"):
        raise ConfigError(f"--task must be auto, binary, multiclass or regression; got {task!r}.")
    if why:
        say(why, out=out)
    with console.status("Spark", spinner="dots") as status:
        examined = examine(data, sql=sql, target=target, task=task, column_roles=parse_roles(column_role),
                           master=master, conf=parse_spark_conf(conf), profile=profile, findings=findings,
                           progress=lambda stage: status.update(f"Spark: {stage}"))
    say(f"Read {examined.rows:,} rows x {examined.columns} columns from {data or 'the query'} on Spark "
        f"({', '.join(examined.how)}).", out=out)
    return examined


EngineOption = typer.Option("auto", "--engine", help="local (in memory), spark, or auto: Spark when the table takes "
                            "more than a quarter of free memory.")
SparkMasterOption = typer.Option(None, "--spark-master", help="Spark master URL (default: local[*]).")
SparkConfOption = typer.Option([], "--spark-conf", help="KEY=VALUE, a Spark setting; repeat for more.")


def _findings_table(findings: list[Any], title: str) -> Any:
    rows = [[Text(f.severity, style=_SEVERITY_STYLE[f.severity]), f.column or "", f.message, f.suggestion]
            for f in findings]
    return table(title, ["severity", "column", "finding", "what to do"], rows)


def profile_cmd(
    data: str = typer.Argument(None, help="A table: CSV, TSV, Parquet, JSON, JSONL, Excel, or a folder of parts."),
    target: str = typer.Option(None, "--target", "-t", help="Also show each column's relation to this column."),
    out: str = typer.Option(None, "--out", "-o", help="Write a self-contained HTML page here (opens offline)."),
    column_role: list[str] = typer.Option([], "--column-role", help="COLUMN=ROLE, to override an inferred role."),
    task: str = typer.Option("auto", "--task", help="binary, multiclass, regression, or auto (with --target)."),
    engine: str = EngineOption,
    spark_master: str = SparkMasterOption,
    spark_conf: list[str] = SparkConfOption,
    sql: str = SqlOption,
    db: str = DbOption,
) -> None:
    """Per-column statistics, missingness, cardinality, distribution and relation to the target."""
    from ..data.files import check_place
    from ..data.profile import profile_table

    if out:  # before any work: a folder that does not exist, or a folder named as the file
        check_place(Path(out))
    examined = _examine(engine, "profile", data, sql, db, target, column_role, task, spark_master, spark_conf,
                        profile=True, findings=bool(out and target))
    if examined is not None:
        profile, kind = examined.profile, examined.task_kind
    else:
        df, schema, kind = _prepare(data, sql, db, target, column_role, task)
        profile = profile_table(df, target=target, schema=schema, task_kind=kind)
    rows = []
    for c in profile.columns:
        row = [c.name, c.role, f"{c.missing_fraction:.1%}" if c.n_missing else "", f"{c.n_unique:,}", c.summary]
        if target:
            row.append(c.alone)
        rows.append(row)
    metric = f" ({profile.target_metric}, 95% interval)" if profile.target_metric else ""
    headers = ["column", "role", "missing", "distinct", "summary"] + ([f"alone predicts target{metric}"] if target else [])
    title = (f"{profile.n_rows:,} rows x {profile.n_columns} columns, {profile.n_duplicate_rows:,} duplicate rows, "
             f"{profile.memory_bytes / 2**20:,.1f} MiB in memory")
    console.print(table(title, headers, rows))
    if target and profile.target_profile is not None:
        t = profile.target_profile
        say("Target ", (target, "bold"), f" ({kind}): {t.summary}"
            + (f"; missing in {t.n_missing:,} rows" if t.n_missing else ""))
        say((_alone_note(profile), "dim"))
    if out:
        from ..data.profile_html import write_profile_html
        from ..data.quality import audit

        findings = None if not target else examined.findings if examined is not None else \
            audit(df, schema, task_kind=kind)
        path = write_profile_html(profile, out, title=Path(data).name if data else "query", findings=findings)
        say("Profile written to ", (str(path), "bold"), ".")


def _alone_note(profile: Any) -> str:
    """What the 'alone predicts target' column means, for the profile's task."""
    if profile.target_metric is None:
        return ("'alone predicts target': too few labelled rows to measure (at least 30 are needed, and for "
                "classes at least 5 of each of two of them).")
    scale = "0.5 = guessing, 1 = ranks every row right" if profile.target_metric == "ROC AUC" else \
        "0 = guessing the mean, 1 = exact"
    return (f"'alone predicts target': {profile.target_metric} of the column by itself on rows it did not learn "
            f"from (5-fold cross-validation on {profile.target_rows:,} labelled rows; {scale}), "
            "with a 95% interval.")


def audit_cmd(
    data: str = typer.Argument(None, help="A table: CSV, TSV, Parquet, JSON, JSONL, Excel, or a folder of parts."),
    target: str = typer.Option(None, "--target", "-t", help="The column a model would predict (enables target "
                               "checks and leakage detection)."),
    column_role: list[str] = typer.Option([], "--column-role", help="COLUMN=ROLE, to override an inferred role."),
    task: str = typer.Option("auto", "--task", help="binary, multiclass, regression, or auto."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON lines instead of a table."),
    fail_on: str = typer.Option(None, "--fail-on", help="Exit with status 1 if a finding is at least this severe "
                                "(warning or error): for use in CI."),
    engine: str = EngineOption,
    spark_master: str = SparkMasterOption,
    spark_conf: list[str] = SparkConfOption,
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
    said = err_console if as_json else None  # JSON lines on stdout, and nothing else
    examined = _examine(engine, "audit", data, sql, db, target, column_role, task, spark_master, spark_conf,
                        profile=False, findings=True, out=said)
    if examined is not None:
        findings = examined.findings
    else:
        df, schema, kind = _prepare(data, sql, db, target, column_role, task, said)
        findings = audit(df, schema, task_kind=kind)
    if as_json:
        for f in findings:
            typer.echo(json.dumps(f.model_dump(), default=str))
    elif findings:
        console.print(_findings_table(findings, f"{len(findings)} findings"))
    else:
        console.print("No findings: nothing in this table needs a look.")
    if not as_json:
        dropped = examined.dropped if examined is not None else None
        if dropped is None:
            try:
                dropped = fit_cleaning_plan(df, schema, findings=findings).dropped_columns
            except Exception:  # nothing left to learn from: the findings above already say why
                dropped = {}
        if dropped:
            parts: list[Any] = ["Training would leave out: "]
            for i, (k, v) in enumerate(dropped.items()):
                parts += ["; " if i else "", (k, "bold"), f" ({v.split(':')[0]})"]
            say(*parts, ".")
    if fail_on is not None and any(SEVERITY_ORDER[f.severity] >= SEVERITY_ORDER[fail_on] for f in findings):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("profile")(handle_errors(profile_cmd))
    app.command("audit")(handle_errors(audit_cmd))
