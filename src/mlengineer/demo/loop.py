"""The demo's closed loop on real drift: the salary survey by ``work_year``. A model trained on the early
years (2020-2023) meets 2024 and 2025; monitoring finds the drift and estimates the error before any salary
is known; the salaries arrive and show how far the estimate was off; a challenger trained on the new rows is
tested against the champion on the newest ones and promoted only if it is significantly better.

    >>> numbers = closed_loop(Path("demo-output"), tracking_uri=None, say=print)   # doctest: +SKIP
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .walkthrough import LEAKY, TARGET, load_salaries

__all__ = ["REGISTERED_NAME", "closed_loop", "retrain_line", "split_by_year"]

REGISTERED_NAME = "salary-loop"
FIRST_NEW_YEAR = 2024
#: a random sample of each year: every year before 2024 fits (10,478 rows in all); 2024 and 2025 hold 62,241 and
#: 78,726, and all of them add half a minute to the demo (retraining on 100,000 rows) without changing the story
ROWS_PER_YEAR = 20_000


def split_by_year(df: pd.DataFrame, *, rows_per_year: int | None = None,
                  seed: int = 0) -> tuple[pd.DataFrame, dict[int, pd.DataFrame]]:
    """The early years (training) and each later year's rows, optionally ``rows_per_year`` of each."""
    df = df.drop(columns=list(LEAKY))
    early = df.loc[df["work_year"] < FIRST_NEW_YEAR]
    later = {int(y): g for y, g in df.loc[df["work_year"] >= FIRST_NEW_YEAR].groupby("work_year")}
    if rows_per_year is not None:
        early = early.sample(min(len(early), rows_per_year), random_state=seed)
        later = {y: g.sample(min(len(g), rows_per_year), random_state=seed) for y, g in later.items()}
    return early.reset_index(drop=True), {y: g.reset_index(drop=True) for y, g in later.items()}


def _money(v: float) -> str:
    return f"${v:,.0f}"


def _rmse_line(result: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    e = result["performance"]["metrics"]["rmse"]
    est, before = e["estimated"], e["reference_estimated"] or e["reference"]
    line = (f"estimated RMSE {_money(est['value'])} (95% {_money(est['low'])} to {_money(est['high'])}) against "
            f"{_money(before['value'])} on the training years' validation rows")
    return line, e


def retrain_line(decided: Any) -> str:
    """What retraining decided, in one sentence: the rows, then the decision and its evidence (retrain's
    reason holds the scores and the p-value, so they are said once)."""
    rows = decided.rows
    return (f"Retrained on {rows['base']:,} reference rows and {rows['new_learnt']:,} new ones, and tested on the "
            f"{rows['new_tested']:,} newest. {decided.decision.capitalize()}: {decided.reason.rstrip('.')}.")


def closed_loop(out_dir: Path, *, tracking_uri: str | None, time_budget: float = 20.0,
                say: Callable[[str], None] = print, rows_per_year: int | None = ROWS_PER_YEAR,
                seed: int = 0) -> dict[str, Any]:
    """Run the loop, saying each step's numbers; the numbers, and the monitoring report in ``out_dir``.
    ``rows_per_year`` caps each year's rows (a random sample; None: all of them)."""
    from ..monitoring.current import from_data
    from ..monitoring.monitor import monitor
    from ..monitoring.reference import reference_of
    from ..monitoring.retrain import retrain
    from ..pipeline.run import train
    from ..report.monitoring import write_monitoring_report
    from ..tracking.registry import promote, register

    loop_dir = Path(out_dir) / "loop"
    early, later = split_by_year(load_salaries(), rows_per_year=rows_per_year, seed=seed)
    say(f"The closed loop: a model trained on {len(early):,} salaries of 2020-{FIRST_NEW_YEAR - 1} meets "
        f"{', '.join(f'{len(g):,} of {y}' for y, g in later.items())}.")
    champion = train(early, TARGET, time_budget=time_budget, out=loop_dir / "champion", tracking_uri=tracking_uri,
                     name=REGISTERED_NAME, seed=seed)
    version = register(loop_dir / "champion", REGISTERED_NAME, tracking_uri=tracking_uri).version
    promote(REGISTERED_NAME, version, tracking_uri=tracking_uri, force=True)
    numbers: dict[str, Any] = {"champion_version": version, "years": {}}
    ref = reference_of(champion)  # one reference (and one loss model) for every pass below
    for year, rows in later.items():
        blind = monitor(champion, from_data(champion, rows.drop(columns=[TARGET]), f"the {year} rows"), reference=ref)
        drifted = blind["drift"]["verdict"]["drifted"]
        line, _ = _rmse_line(blind)
        say(f"{year}, before any salary is known: {len(drifted)} of {blind['drift']['verdict']['tested']} input "
            f"columns drifted ({', '.join(drifted) or 'none'}); {line}.")
        live = from_data(champion, rows, f"the {year} rows with their salaries")
        known = monitor(champion, live, reference=ref)
        _, e = _rmse_line(known)
        bias = float((live.y - live.raw).mean())  # the same inputs, other salaries: what no estimate can see
        real = e["realised"]["value"]
        line = (f"{year}, once the salaries are known: RMSE {_money(real)} (95% {_money(e['realised']['low'])} to "
                f"{_money(e['realised']['high'])}); the RMSE estimated before was {_money(abs(e['error']))} too "
                f"{'high' if e['error'] > 0 else 'low'}.")
        if abs(bias) > 0.1 * real:
            line += (f" The model's answers are {_money(abs(bias))} too {'low' if bias > 0 else 'high'} on average: "
                     "pay for the same profiles moved since training" +
                     (", which no estimate from the inputs alone can see." if abs(e["error"]) > 0.1 * real else "."))
        say(line)
        numbers["years"][year] = {"drifted": drifted, "estimated_rmse": e["estimated"]["value"],
                                  "realised_rmse": e["realised"]["value"], "estimate_error": e["error"],
                                  "bias": bias, "drift_alarm": blind["alarms"]["drift"]}
        report = write_monitoring_report(known, loop_dir / f"monitor-{year}.html", model=champion,
                                         title=f"The salary model meets {year}")
    new = pd.concat(list(later.values()), ignore_index=True)
    decided = retrain(f"models:/{REGISTERED_NAME}@champion", data=new, time_column="work_year",
                      time_budget=time_budget, out=loop_dir / "challenger", tracking_uri=tracking_uri)
    c = decided.comparison
    say(retrain_line(decided))
    newest = max(later)  # its rows, salaries and all, for the hint below to name a real file
    rows_file = loop_dir / f"salaries-{newest}.csv.gz"
    later[newest].to_csv(rows_file, index=False)
    store = f" --tracking-uri {shlex.quote(tracking_uri)}" if tracking_uri else ""
    say(f"Monitoring reports: {', '.join(str(loop_dir / f'monitor-{y}.html') for y in later)}. Try "
        f"'mlengineer monitor models:/{REGISTERED_NAME}@champion --data {shlex.quote(str(rows_file))}{store}' on the "
        f"{newest} salaries, and 'mlengineer rollback {REGISTERED_NAME}{store}' to move the alias back.")
    numbers.update(decision=decided.decision, challenger_version=decided.challenger_version, comparison=c,
                   report=str(report))
    return numbers
