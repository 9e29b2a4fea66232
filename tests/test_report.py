"""The HTML report in a real headless Chromium: it opens offline with no console error and no network
request, and a screenshot shows the summary, the plots and the model card."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mlengineer
from mlengineer.report.html import write_report

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def open_in_chromium(page_path: Path, screenshot: Path) -> dict[str, Any]:
    """Open a file in headless Chromium (a fresh profile), record console messages, page errors and every
    request, take a full-page screenshot, and measure where the report's parts are drawn."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the dev extra (playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Chromium at /usr/bin/chromium (scripts/setup-system.sh)")
    seen: dict[str, Any] = {"console": [], "errors": [], "requests": []}
    with sync_api.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                   viewport={"width": 1100, "height": 900})
        try:
            page = ctx.new_page()
            page.on("console", lambda m: seen["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            page.screenshot(path=str(screenshot), full_page=True)
            seen["boxes"] = {sel: page.locator(sel).first.bounding_box() if page.locator(sel).count() else None
                             for sel in ("#summary", "figure svg", "#model-card", "#story")}
            seen["figures"] = page.locator("figure svg").count()
            seen["text"] = page.inner_text("body")
        finally:
            ctx.close()
    return seen


def check_screenshot(png: Path, boxes: dict[str, Any], parts: tuple[str, ...]) -> None:
    """The screenshot is a real rendering: tall, colourful, and each part's area holds drawn content."""
    from PIL import Image

    im = Image.open(png).convert("RGB")
    assert im.height > 3000 and im.width >= 1000
    for part in parts:
        box = boxes[part]
        assert box is not None and box["width"] > 300 and box["height"] > 50, part
        crop = im.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"])))
        colours = len(set(crop.resize((200, max(1, int(200 * crop.height / crop.width)))).getdata()))
        assert colours > 20, f"{part} looks blank in the screenshot ({colours} colours)"


def assert_offline_and_clean(seen: dict[str, Any], page_path: Path) -> None:
    errors = [t for kind, t in seen["console"] if kind in ("error", "warning")]
    assert not errors and not seen["errors"], (errors, seen["errors"])
    foreign = [u for u in seen["requests"] if u != page_path.resolve().as_uri() and not u.startswith("data:")]
    assert not foreign, foreign


@pytest.fixture(scope="module")
def churn_split(tmp_path_factory: pytest.TempPathFactory, churn_csv: Path) -> dict[str, Any]:
    df = pd.read_csv(churn_csv)
    test = df.sample(250, random_state=1)
    model = mlengineer.train(df.drop(index=test.index), "churn", time_budget=6, track=False)
    return {"model": model, "test": test, "folder": tmp_path_factory.mktemp("report")}


@pytest.mark.browser
@pytest.mark.slow
def test_classification_report_opens_offline_and_shows_its_parts(churn_split: dict[str, Any]) -> None:
    folder = churn_split["folder"]
    page = write_report(churn_split["model"], folder / "churn.html", churn_split["test"])
    seen = open_in_chromium(page, folder / "churn.png")
    assert_offline_and_clean(seen, page)
    text = seen["text"]
    assert "This model predicts whether churn is yes" in text and "ROC AUC" in text
    for part in ("Data quality", "Leaderboard", "Metrics, with how sure they are", "Calibration",
                 "Which answers it mixes up", "Model card", "Intended use", "Limitations", "Caveats"):
        assert part in text, part
    assert seen["figures"] >= 5  # importance, calibration, confusion, ROC/PR, partial dependence
    check_screenshot(folder / "churn.png", seen["boxes"], ("#summary", "figure svg", "#model-card"))


@pytest.mark.browser
@pytest.mark.slow
def test_regression_report_without_data_uses_the_validation_rows(tmp_path: Path, salary_model_dir: Path) -> None:
    model = mlengineer.load(salary_model_dir)
    page = write_report(model, tmp_path / "salary.html", unit="$", noun="salaries")
    seen = open_in_chromium(page, tmp_path / "salary.png")
    assert_offline_and_clean(seen, page)
    assert "validation salaries (held out of the search's fits" in seen["text"]
    assert "by construction" in seen["text"]  # it does not claim the coverage it was calibrated to
    assert "$" in seen["text"] and "Where its estimates miss" in seen["text"]
    check_screenshot(tmp_path / "salary.png", seen["boxes"], ("#summary", "figure svg", "#model-card"))


def test_report_command_writes_one_self_contained_file(tmp_path: Path, churn_model_dir: Path,
                                                       churn_csv: Path) -> None:
    import re

    from .conftest import run_cli

    out = tmp_path / "r.html"
    r = run_cli("report", str(churn_model_dir), "--data", str(churn_csv), "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert "<script" not in html and html.count("<svg") >= 5
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import""", html)
    assert not list(tmp_path.glob(".r.html.*"))  # no temporary file left behind


def test_shutil_which_finds_chromium_where_the_tests_expect_it() -> None:
    if shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (scripts/setup-system.sh installs it)")
    assert Path(CHROMIUM).exists()
