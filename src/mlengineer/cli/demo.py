"""The demo command: the whole lifecycle on the bundled AI/ML salary survey."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from ._common import console, handle_errors, say, table
from .train import TrainingProgress, print_training_summary


def demo_cmd(
    out: str = typer.Option("demo-output", "--out", "-o", help="Folder for the model, report and data."),
    time_budget: float = typer.Option(60.0, "--time-budget", help="Seconds the training may take."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default ./mlruns.db)."),
) -> None:
    """Which ML roles pay most: train on the bundled salary survey, compare with a careers article, report."""
    from ..demo.walkthrough import (
        GROUP,
        GROUP_REASON,
        LEAKY,
        TARGET,
        copy_groups,
        demo_numbers,
        holdout,
        load_salaries,
        percent,
    )
    from ..pipeline.run import train

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = load_salaries()
    console.rule(Text("mlengineer demo: what do AI/ML jobs pay?", style="bold"))
    train_df, test_df = holdout(df)  # exact copies stay together: no test row has a twin in training
    n = demo_numbers(df, train_df, test_df)
    say(f"The AI/ML salary survey (ai-jobs.net, CC0): {n.rows:,} salaries, {n.titles} job titles, "
        f"{n.first_year}-{n.latest_year}. Target: {TARGET}. Left out with --drop: {', '.join(LEAKY)} (the salary "
        "in local currency: the answer in disguise; the audit below flags salary as leakage too).")
    say(f"{percent(n.duplicate_share)} of the rows repeat an earlier row exactly; copies stay together on one side of "
        f"every split. Training on {n.train_rows:,} rows ({percent(n.train_duplicate_share)} of them repeat another, "
        f"so the rows validation holds out are grouped by row content too); {n.test_rows:,} rows are kept apart to test the "
        f"model on, {f'{n.test_twins:,}' if n.test_twins else 'none'} of them with a twin among the training rows.")
    data_path, test_path = out_dir / "salaries.csv.gz", out_dir / "salaries_test.csv.gz"
    train_df.to_csv(data_path, index=False)
    test_df.to_csv(test_path, index=False)
    with TrainingProgress(time_budget) as progress:
        model = train(train_df.assign(**{GROUP: copy_groups(train_df)}), TARGET, time_budget=time_budget,
                      drop=list(LEAKY), group_column=GROUP, out=out_dir / "salary-model", tracking_uri=tracking_uri,
                      progress=progress, name="salary-model")
    # the copy groups are the demo's own column, not the survey's: their reason says what they are for
    print_training_summary(model, data=str(data_path), reasons={GROUP: GROUP_REASON})
    n = n.with_model(model, df, test_df)
    _print_roles(n)
    report = _write_outputs(model, n, out_dir, test_df, tracking_uri)
    model_dir = out_dir / "salary-model"
    from ..demo.loop import closed_loop  # monitoring's closed loop on the survey's later years

    console.rule(Text("The closed loop: the salary model meets later years", style="bold"))
    closed_loop(out_dir, tracking_uri=tracking_uri, time_budget=min(time_budget, 20.0), say=say)
    say("\nWrote the model to ", (str(model_dir), "bold"), ", the report to ", (str(report), "bold"),
        " and the role table to ", (str(out_dir / "roles.csv"), "bold"), ".\nNext, try:")
    for cmd in (f"mlengineer predict {model_dir} {test_path} --interval 0.9 --out {out_dir / 'predictions.csv'}",
                f"mlengineer evaluate {model_dir} {test_path}",
                f"mlengineer explain {model_dir} {test_path} --limit 3",
                f"mlengineer serve {model_dir} --port 8000",
                "mlengineer runs",
                "mlengineer ui"):
        say("  ", (cmd, "cyan"))


def _print_roles(n: Any) -> None:
    """The role table as the report shows it (verdicts and too-few-records marks included), and the headline."""
    from ..demo.walkthrough import HEADLINE_RECORDS, MIN_RECORDS, money, money_range

    roles = n.roles
    rows = []
    for r in roles.itertuples():
        few = "" if r.enough_data else " (too few)"
        rows.append([r.role, f"{r.records:,}{few}", money(r.median), money_range(r.p25, r.p75), r.article or "-",
                     r.verdict or "-", money(r.model_typical), money_range(r.model_low, r.model_high),
                     money_range(r.model_low90, r.model_high90)])
    console.print(table("Yearly salary in USD by role: measured, claimed, and the model's estimate for a senior, "
                        "full-time employee in the US (latest year)",
                        ["role", "records", "median", "P25-P75", "article claims", "how the claim holds up", "model",
                         "model 50%", "model 90%"], rows,
                        widths={"role": 25, "article claims": 17}))
    say(f"Roles with fewer than {MIN_RECORDS} records are marked: their median, quartiles and model estimate say "
        f"little. The model is off by {money(n.test_mae)} on average on the {n.test_rows:,} test rows.")
    top = roles.loc[roles["records"] >= HEADLINE_RECORDS].sort_values("median", ascending=False).iloc[0]
    say(f"Best paid of these roles with at least {HEADLINE_RECORDS} records, by the survey's median: ",
        (str(top.role), "bold"), f" ({money(top['median'])}, from {top.records:,} records).")


def _write_outputs(model: Any, n: Any, out_dir: Path, test_df: Any, tracking_uri: str | None) -> Path:
    """The report (on every test row, with the careers article) and roles.csv, from the same numbers."""
    from ..demo.walkthrough import story_html
    from ..report.html import attach_to_run, write_report

    report = write_report(model, out_dir / "report.html", test_df, title="What do AI and ML jobs pay?", unit="$",
                          noun="salaries", story_html=story_html(n))
    attach_to_run(model, report, tracking_uri=tracking_uri)
    n.roles.to_csv(out_dir / "roles.csv", index=False)
    return report


def register(app: typer.Typer) -> None:
    app.command("demo")(handle_errors(demo_cmd))
