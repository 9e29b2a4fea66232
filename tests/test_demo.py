"""The demo's report: a careers article honest about ranges, opened in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from .conftest import run_cli
from .test_report import assert_offline_and_clean, check_screenshot, open_in_chromium

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    r = run_cli("demo", "--out", str(out), "--time-budget", "10", "--tracking-uri",
                f"sqlite:///{out / 'runs.db'}", timeout=900)
    assert r.returncode == 0, r.stderr
    assert "kept apart to test the model on" in r.stdout and "repeat an earlier row exactly" in r.stdout
    return out


def test_the_role_table_holds_survey_article_and_model_ranges(demo_out: Path) -> None:
    roles = pd.read_csv(demo_out / "roles.csv").set_index("role")
    mle = roles.loc["Machine Learning Engineer"]
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
