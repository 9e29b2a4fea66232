"""The demo's closed loop on the salary survey by work_year (a sample of each year, small budgets): the drift of
later years found, the error estimated before the salaries are known and measured after, a challenger tested
against the champion on the newest rows, and the registry's alias where the decision says it is."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_closed_loop_on_later_survey_years(tmp_path: Path) -> None:
    from mlengineer.demo.loop import REGISTERED_NAME, closed_loop
    from mlengineer.tracking.registry import resolve

    said: list[str] = []
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    numbers = closed_loop(tmp_path, tracking_uri=uri, time_budget=4, say=said.append, rows_per_year=1500)
    assert set(numbers["years"]) == {2024, 2025}
    for year, n in numbers["years"].items():
        assert "work_year" in n["drifted"] and n["drift_alarm"], year  # every row of a later year is a new value
        assert n["estimated_rmse"] > 0 and n["realised_rmse"] > 0
        assert n["estimate_error"] == pytest.approx(n["estimated_rmse"] - n["realised_rmse"], rel=0.05)
    text = "\n".join(said)
    assert "before any salary is known" in text and "once the salaries are known" in text
    assert "Retrained on" in text and f"mlengineer rollback {REGISTERED_NAME}" in text
    c = numbers["comparison"]
    assert c["rows"] > 0 and len(c["scores"]) == 2
    alias = resolve(f"models:/{REGISTERED_NAME}@champion", tracking_uri=uri)[0].version
    assert numbers["decision"] in ("promoted", "kept")
    assert alias == (numbers["challenger_version"] if numbers["decision"] == "promoted" else numbers["champion_version"])
    assert Path(numbers["report"]).is_file() and (tmp_path / "loop" / "monitor-2024.html").is_file()
