"""The demo command: the whole lifecycle on the bundled AI/ML salary survey."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import console, fmt, handle_errors, table
from .train import TrainingProgress, print_training_summary


def demo_cmd(
    out: str = typer.Option("demo-output", "--out", "-o", help="Folder for the model, report and data."),
    time_budget: float = typer.Option(60.0, "--time-budget", help="Seconds the training may take."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default ./mlruns.db)."),
) -> None:
    """Which ML roles pay most: train on the bundled salary survey, compare with a careers article, report."""
    from ..demo.walkthrough import LEAKY, TARGET, holdout, load_salaries, role_table, story_html
    from ..pipeline.run import train
    from ..report.html import write_report

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = load_salaries()
    console.rule("[bold]mlengineer demo: what do AI/ML jobs pay?")
    console.print(f"The AI/ML salary survey (ai-jobs.net, CC0): {len(df):,} salaries, {df['job_title'].nunique()} job "
                  f"titles, {df['work_year'].min()}-{df['work_year'].max()}. Target: {TARGET}. "
                  f"Left out as leakage: {', '.join(LEAKY)} (the salary itself, in local currency). "
                  f"{df.duplicated().mean():.0%} of the rows repeat an earlier row exactly.")
    train_df, test_df = holdout(df)
    console.print(f"Training on {len(train_df):,} rows; {len(test_df):,} rows are kept apart to test the model on.")
    data_path, test_path = out_dir / "salaries.csv.gz", out_dir / "salaries_test.csv.gz"
    train_df.to_csv(data_path, index=False)
    test_df.to_csv(test_path, index=False)
    with TrainingProgress(time_budget) as progress:
        model = train(train_df, TARGET, time_budget=time_budget, drop=list(LEAKY), out=out_dir / "salary-model",
                      tracking_uri=tracking_uri, progress=progress, name="salary-model")
    print_training_summary(model)
    roles = role_table(df, model)
    rows = []
    for r in roles.itertuples():
        few = "" if r.enough_data else " (too few records)"
        rows.append([r.role, r.records, r.median, f"{fmt(r.p25)}-{fmt(r.p75)}", r.article or "-",
                     f"{fmt(r.model_typical)}{few}", f"{fmt(r.model_low)}-{fmt(r.model_high)}",
                     f"{fmt(r.model_low90)}-{fmt(r.model_high90)}"])
    console.print(table("Yearly salary in USD by role: measured, claimed, and the model's estimate for a senior, "
                        "full-time employee in the US (latest year)",
                        ["role", "records", "median", "P25-P75", "article claims", "model", "model 50% range",
                         "model 90% range"], rows))
    from ..demo.walkthrough import HEADLINE_RECORDS

    top = roles.loc[roles["records"] >= HEADLINE_RECORDS].sort_values("median", ascending=False).iloc[0]
    console.print(f"Best paid of these roles with at least {HEADLINE_RECORDS} records, by the survey's median: "
                  f"[bold]{top.role}[/] ({fmt(top['median'])} USD, from {top.records:,} records).")
    # a few thousand test rows give metrics to within a few percent, and keep the report quick for any model
    scored = test_df.sample(min(len(test_df), 6000), random_state=0)
    story = story_html(df, roles, model, train_df, scored)
    report = write_report(model, out_dir / "report.html", scored, title="What do AI and ML jobs pay?", unit="$",
                          noun="salaries", story_html=story)
    roles.to_csv(out_dir / "roles.csv", index=False)
    model_dir = out_dir / "salary-model"
    from ..demo.loop import closed_loop

    console.rule("[bold]The closed loop: the salary model meets later years")
    closed_loop(out_dir, tracking_uri=tracking_uri, time_budget=min(time_budget, 20.0),
                say=lambda line: console.print(line, highlight=False))
    console.print(f"\nWrote the model to [bold]{model_dir}[/], the report to [bold]{report}[/] and the role table "
                  f"to [bold]{out_dir / 'roles.csv'}[/].\nNext, try:")
    for cmd in (f"mlengineer predict {model_dir} {test_path} --interval 0.9 --out {out_dir / 'predictions.csv'}",
                f"mlengineer evaluate {model_dir} {test_path}",
                f"mlengineer explain {model_dir} {test_path} --limit 3",
                f"mlengineer serve {model_dir} --port 8000",
                "mlengineer runs"):
        console.print(f"  [cyan]{cmd}[/]", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(handle_errors(demo_cmd))
