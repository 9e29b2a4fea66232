"""The profile: statistics a user can check by hand, the relation to the target, the terminal table, and a
self-contained HTML page that a real headless Chromium renders without any network."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.profile import profile_table
from mlengineer.data.profile_html import render_profile_html

from .conftest import FIXTURES, run_cli


@pytest.fixture(scope="module")
def churn(churn_csv: Path) -> pd.DataFrame:
    return pd.read_csv(churn_csv)


def test_numbers_match_pandas(churn: pd.DataFrame) -> None:
    p = profile_table(churn, target="churn")
    fee = next(c for c in p.columns if c.name == "monthly_fee")
    s = churn["monthly_fee"]
    assert fee.n_missing == s.isna().sum() and fee.missing_fraction == pytest.approx(0.05)
    assert fee.mean == pytest.approx(s.mean()) and fee.median == pytest.approx(s.median())
    assert fee.min == s.min() and fee.max == s.max() and fee.n_unique == s.nunique()
    assert fee.histogram is not None and sum(fee.histogram.counts) == s.notna().sum()
    plan = next(c for c in p.columns if c.name == "plan")
    assert dict(plan.top_values) == churn["plan"].value_counts().to_dict()
    assert p.n_rows == 800 and p.n_columns == 7 and p.task_kind == "binary"
    assert p.target_profile is not None and dict(p.target_profile.top_values) == {"no": 622, "yes": 178}


def test_relation_to_the_target_ranks_a_real_signal_first() -> None:
    n = 3000
    rng = np.random.default_rng(0)
    signal = rng.normal(size=n)
    df = pd.DataFrame({"signal": signal, "noise": rng.normal(size=n), "group": rng.choice(list("abc"), n),
                       "y": np.where(signal + rng.normal(0, 0.5, n) > 0, "up", "down")})
    p = profile_table(df, target="y")
    skill = {c.name: c.target_skill for c in p.columns}
    assert skill["signal"] > 0.3 and skill["noise"] < 0.05 and skill["group"] < 0.05
    by = next(c for c in p.columns if c.name == "signal").target_by_group
    assert by is not None and by.shares is not None and set(by.shares) == {"up", "down"}
    up = by.shares["up"]
    assert up[0] < 0.2 and up[-1] > 0.8  # the lowest bin is mostly down, the highest mostly up


def test_regression_relation_is_the_mean_per_group() -> None:
    df = pd.DataFrame({"size": ["s", "m", "l"] * 100, "price": [1.0, 2.0, 3.0] * 100})
    p = profile_table(df, target="price", task_kind="regression")
    by = p.columns[0].target_by_group
    assert by is not None and dict(zip(by.groups, by.mean or [], strict=True)) == {"s": 1.0, "m": 2.0, "l": 3.0}
    assert p.columns[0].target_skill == pytest.approx(1.0)


def test_the_page_is_self_contained(churn: pd.DataFrame) -> None:
    page = render_profile_html(profile_table(churn, target="churn"), title="churn")
    assert "<svg" in page and "monthly_fee" in page and "alone predicts churn" in page
    for needle in ("<script", "http://", "https://", "src=", "<link"):
        assert needle not in page


def test_labels_are_escaped() -> None:
    df = pd.DataFrame({"<b>x</b>": ["<script>alert(1)</script>", "a & b"] * 20, "y": [1, 2] * 20})
    page = render_profile_html(profile_table(df, target="y"))
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_profile_command_prints_a_table_and_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "bike.html"
    r = run_cli("profile", str(FIXTURES / "bike_sharing_400.csv.gz"), "--target", "cnt", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "dteday" in r.stdout and "datetime" in r.stdout and "identifier" in r.stdout
    assert "gzip-compressed" in r.stdout and out.exists()
    page = out.read_text()
    assert "Audit" in page and "instant" in page and oct(out.stat().st_mode & 0o777) == "0o644"


def test_profile_command_reports_a_missing_file(tmp_path: Path) -> None:
    r = run_cli("profile", str(tmp_path / "nope.csv"))
    assert r.returncode == 2 and "nope.csv" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.browser
def test_chromium_renders_the_page(tmp_path: Path, churn: pd.DataFrame) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (scripts/setup-system.sh installs it)")
    page = tmp_path / "profile.html"
    page.write_text(render_profile_html(profile_table(churn, target="churn"), title="churn"))
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chrome'}", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "Data profile: churn" in dom and dom.count("<svg") >= 10 and "monthly_fee" in dom
