"""The profile: statistics a user can check by hand, the relation to the target, the terminal table, and a
self-contained HTML page that a real headless Chromium renders without any network."""

from __future__ import annotations

import re
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


# -- "alone predicts the target": cross-validated, with an interval, honest on small and large tables --------


def test_alone_measure_sees_a_moderate_signal_on_a_small_table() -> None:
    """sklearn's diabetes table (442 rows, shipped with scikit-learn): bmi correlates 0.59 with the target
    (R² 0.34 for a straight line), s6 0.38 (R² 0.14). The measure finds both, with intervals around them."""
    from sklearn.datasets import load_diabetes

    d = load_diabetes(as_frame=True).frame
    p = profile_table(d, target="target")
    assert p.target_metric == "R²" and p.target_rows == 442
    col = {c.name: c for c in p.columns}
    bmi, s6, sex = col["bmi"], col["s6"], col["sex"]
    assert bmi.target_skill is not None and bmi.target_skill > 0.2
    assert bmi.target_low is not None and bmi.target_high is not None
    assert bmi.target_low < 0.34 < bmi.target_high
    assert s6.target_skill is not None and s6.target_skill > 0.07 and s6.target_low is not None and s6.target_low > 0
    assert sex.target_high is not None and sex.target_high < 0.05  # sex says nothing about progression
    assert bmi.target_score is not None and s6.target_score is not None and bmi.target_score > s6.target_score


def test_alone_measure_reads_free_text() -> None:
    """Every message is different, so a per-value table learns nothing; the words carry the label."""
    rng = np.random.default_rng(0)
    spam_words, ham_words = ["free", "win", "prize", "claim", "cash", "urgent", "call", "txt"], ["ok", "see", "home", "dinner", "love", "lunch"]
    rows = []
    for i in range(500):
        spam = rng.random() < 0.2
        words = [*rng.choice(spam_words if spam else ham_words, 3), *rng.choice(["the", "to", "a", "my"], 4), f"n{i}"]
        rows.append({"message": " ".join(rng.permutation(words)), "label": "spam" if spam else "ham"})
    p = profile_table(pd.DataFrame(rows), target="label")
    text = p.columns[0]
    assert text.role == "text" and text.target_skill is not None and text.target_skill > 0.9
    assert p.target_metric == "ROC AUC" and text.target_score is not None and text.target_score > 0.95


def _logistic_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rng.random(n) < 1 / (1 + np.exp(-1.5 * x))
    return pd.DataFrame({"x": x, "y": np.where(y, "yes", "no")})


def test_alone_measure_is_honest_on_400_rows_as_on_50000() -> None:
    """The same relation measured on 400 rows and on 50,000 (of which the profile samples 20,000): both
    intervals hold the true AUC, the small table's is the wider, and neither claims more than is there."""
    from sklearn.metrics import roc_auc_score

    big = _logistic_table(400_000, seed=1)
    truth = roc_auc_score(big["y"] == "yes", big["x"])  # the best any model of x can rank, to within 0.002
    small_p = profile_table(_logistic_table(400, seed=2), target="y").columns[0]
    large_p = profile_table(_logistic_table(50_000, seed=3), target="y").columns[0]
    for c in (small_p, large_p):
        assert c.target_low is not None and c.target_high is not None and c.target_score is not None
        assert c.target_low - 0.01 <= truth <= c.target_high + 0.01
    assert (small_p.target_high - small_p.target_low) > 3 * (large_p.target_high - large_p.target_low)  # type: ignore[operator]


def test_too_few_labelled_rows_give_no_measure_and_say_so() -> None:
    df = pd.DataFrame({"x": np.arange(25.0), "y": ["a", "b"] * 12 + ["a"]})
    p = profile_table(df, target="y")
    assert p.target_metric is None and p.columns[0].target_score is None and p.columns[0].target_skill is None
    page = render_profile_html(p, title="tiny")
    assert "Too few labelled rows" in page


def test_profile_command_shows_the_measure_with_its_interval(tmp_path: Path) -> None:
    r = run_cli("profile", str(FIXTURES / "churn_800.csv"), "--target", "churn")
    assert r.returncode == 0, r.stderr
    assert "ROC AUC, 95% interval" in r.stdout and "5-fold cross-validation on 800 labelled rows" in r.stdout
    assert re.search(r"0\.\d\d \(0\.\d\d–0\.\d\d\)", r.stdout), r.stdout


@pytest.mark.browser
def test_chromium_shows_the_measure_with_its_interval(tmp_path: Path) -> None:
    """The diabetes profile in real headless Chromium: the intervals and their explanation are on screen."""
    from sklearn.datasets import load_diabetes

    from .test_report import open_in_chromium

    page = tmp_path / "diabetes.html"
    page.write_text(render_profile_html(profile_table(load_diabetes(as_frame=True).frame, target="target"),
                                        title="diabetes"))
    seen = open_in_chromium(page, tmp_path / "diabetes.png")
    assert not seen["errors"]
    assert "alone predicts target (R², 95% interval)" in seen["text"]
    assert "5-fold cross-validation on 442 labelled rows" in seen["text"]
    assert re.search(r"bmi[^\n]*\n?[^\n]*0\.3\d \(0\.\d\d–0\.\d\d\)", seen["text"]), seen["text"][:3000]
