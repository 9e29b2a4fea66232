"""The demo's report: a careers article honest about ranges, opened in a real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from .conftest import run_cli
from .test_report import assert_offline_and_clean, check_screenshot, open_in_chromium

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    r = run_cli("demo", "--out", str(out), "--time-budget", "5", "--tracking-uri",
                f"sqlite:///{out / 'runs.db'}", timeout=900)
    assert r.returncode == 0, r.stderr
    said = re.sub(r"\s+", " ", r.stdout)  # as a reader reads it, whatever the console's width wrapped
    assert "kept apart to test the model on" in said and "repeat an earlier row exactly" in said
    (out / "stdout.txt").write_text(r.stdout)
    return out


def test_the_role_table_holds_survey_article_and_model_ranges(demo_out: Path) -> None:
    stdout = (demo_out / "stdout.txt").read_text()
    for role in ("Machine Learning Engineer", "Computer Vision Engineer", "Data Scientist", "Cloud Architect"):
        assert role in stdout
    assert "mlengineer serve" in stdout and "mlengineer predict" in stdout
    roles = pd.read_csv(demo_out / "roles.csv").set_index("role")
    mle = roles.loc["Machine Learning Engineer"]
    assert mle["records"] > 1000 and 50_000 < mle["model_typical"] < 400_000
    assert mle["p25"] < mle["median"] < mle["p75"]
    assert mle["model_low90"] < mle["model_low"] < mle["model_typical"] < mle["model_high"] < mle["model_high90"]
    assert mle["article"] == "$126,000-$194,000" and mle["verdict"]
    assert roles.loc["Cloud Architect", "verdict"].startswith("too few survey records")


@pytest.mark.browser
def test_the_demo_report_reads_like_an_honest_careers_article(demo_out: Path) -> None:
    page = demo_out / "report.html"
    seen = open_in_chromium(page, demo_out / "report.png")
    assert_offline_and_clean(seen, page)
    text = seen["text"]
    assert "What do AI and ML jobs pay? What 151,445 salaries say" in text
    assert "53% of its rows repeat an earlier row exactly" in text
    assert "middle half of the survey" in text and "the article claims" in text and "model: 90% range" in text
    assert "Ranges, not numbers." in text
    assert "should hold the true salary_in_usd for 9 salaries in 10, and it did for" in text
    check_screenshot(demo_out / "report.png", seen["boxes"], ("#summary", "figure svg", "#model-card"))


# -- one set of numbers, printed and written (issue 17) -------------------------------------------------------


def _number(text: str, pattern: str) -> str:
    m = re.search(pattern, text, flags=re.S)
    assert m, pattern
    return m.group(1)


@pytest.fixture(scope="module")
def report_text(demo_out: Path) -> str:
    from html import unescape

    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", (demo_out / "report.html").read_text())))


def test_the_terminal_the_report_and_roles_csv_tell_the_same_numbers(demo_out: Path, report_text: str) -> None:
    stdout = re.sub(r"\s+", " ", (demo_out / "stdout.txt").read_text())
    test_rows = len(pd.read_csv(demo_out / "salaries_test.csv.gz"))
    assert _number(stdout, r"([\d,]+) rows are kept apart") == f"{test_rows:,}"
    assert f"On {test_rows:,} salaries it had not seen in training" in report_text  # all of them, not a sample
    mae = _number(stdout, r"The model is off by (\$[\d,]+) on average on the")
    assert f"were off by {mae} on average" in report_text and f"is off by {mae} on average" in report_text
    dup = _number(stdout, r"(\d+%) of the rows repeat an earlier row exactly")
    assert f"{dup} of its rows repeat an earlier row exactly" in report_text
    roles = pd.read_csv(demo_out / "roles.csv")
    for r in roles.itertuples():
        assert re.search(rf"{re.escape(r.role)} {r.records:,}", report_text), r.role
    assert re.search(r"\d+ of these 150 rows fall inside their 90% range", report_text)  # beside its 90% band


def test_roles_with_few_records_are_marked_alike_everywhere(demo_out: Path, report_text: str) -> None:
    roles = pd.read_csv(demo_out / "roles.csv").set_index("role")
    few = {"Big Data Engineer": 14, "NLP Engineer": 23, "AI Product Manager": 27, "Cloud Architect": 2}
    for role, records in few.items():
        assert roles.loc[role, "records"] == records and not roles.loc[role, "enough_data"]
        assert roles.loc[role, "verdict"] == f"too few survey records ({records}) to check"
        assert f"{role} {records} too few records" in report_text
    assert roles.loc[~roles.index.isin(list(few)), "enough_data"].all()
    table = (demo_out / "stdout.txt").read_text()
    assert table.count("(too few)") == len(few) and "how the claim" in table  # the report's verdict column


def test_exact_copies_stay_on_one_side_of_every_split(demo_out: Path, report_text: str) -> None:
    import json

    train = pd.read_csv(demo_out / "salaries.csv.gz")
    test = pd.read_csv(demo_out / "salaries_test.csv.gz")
    assert not pd.MultiIndex.from_frame(test).isin(pd.MultiIndex.from_frame(train)).any()
    assert train.duplicated().mean() > 0.4  # the copies are there, and kept together
    meta = json.loads((demo_out / "salary-model" / "artifacts" / "bundle" / "metadata.json").read_text())
    assert "group" in meta["split"]
    stdout = (demo_out / "stdout.txt").read_text()
    assert "the rows validation holds out are grouped by row content" in re.sub(r"\s+", " ", stdout)
    assert "grouped the same way" in report_text


def test_one_story_about_the_leaky_salary_columns(demo_out: Path, report_text: str) -> None:
    stdout = re.sub(r"\s+", " ", (demo_out / "stdout.txt").read_text())
    assert "Left out with --drop: salary, salary_currency" in stdout and "as leakage:" not in stdout
    assert "salary: dropped by the user (--drop)" in stdout
    assert "the demo leaves it out with --drop, and the audit flags salary as target leakage" in report_text
