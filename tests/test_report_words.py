"""The report claims no more than its numbers hold: rounding that keeps a claim true (an AUC of 0.995 is not
"100% of the time"), a title from the model's name, what a reader needs first (the leaderboard before
findings about columns the model hardly uses), and a calibration plot with a chance band, or the words
"too few rows" where there are."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest


def test_rounding_never_reaches_a_bound_the_value_does_not() -> None:
    from mlengineer.report.summary import decimal, share

    assert share(0.995) == "99.5%" and share(0.9999) == "99.99%" and share(1.0) == "100%"
    assert share(0.004) == "0.4%" and share(0.0) == "0%" and share(0.42) == "42%"
    assert decimal(0.9996, 3) == "0.9996" and decimal(0.9991, 3) == "0.999" and decimal(1.0, 3) == "1.000"
    assert share(0.99999999) != "100.000%" and float(share(0.99999999).rstrip("%")) < 100


def _binary_model() -> SimpleNamespace:
    return SimpleNamespace(target="spam", classes=["ham", "spam"], task=SimpleNamespace(kind="binary"))


def test_an_auc_of_0995_is_not_right_100_percent_of_the_time() -> None:
    from mlengineer.report.summary import summary_sentences

    ev = {"task": "binary", "n_rows": 1200, "metrics": {"roc_auc": 0.995, "accuracy": 0.9981},
          "intervals": {"roc_auc": [0.9902, 0.99961]}, "baseline": {"accuracy": 0.866}, "calibration": {"ece": 0.012}}
    text = " ".join(summary_sentences(_binary_model(), ev, rows_on="rows it had not seen"))
    assert "100%" not in text, text
    assert "<b>99.5%</b> of the time" in text and "<b>99.8%</b> of the time" in text
    assert "95% interval 0.990 to 0.9996" in text and "well calibrated" in text


def test_calibration_on_few_rows_is_not_called_well_calibrated() -> None:
    from mlengineer.report.summary import calibration_words

    few = calibration_words({"ece": 0.02}, 142)
    assert "too few to judge" in few and "well" not in few and "142 rows" in few
    assert calibration_words({"ece": 0.02}, 5000).startswith("Its probabilities are well calibrated")


def test_the_calibration_plot_has_a_band_or_says_too_few_rows() -> None:
    from mlengineer.report.plots import calibration_svg

    curve = {"predicted": [0.05, 0.3, 0.55, 0.8, 0.95], "observed": [0.0, 0.5, 1.0, 0.0, 1.0],
             "count": [90.0, 20.0, 6.0, 3.0, 23.0]}
    few = calibration_svg(curve, ece=0.08, label="probability of yes")
    assert "Calibration: too few rows (142) to judge it" in few and "95% of dots by chance alone" in few
    many = calibration_svg({**curve, "count": [c * 20 for c in curve["count"]]}, ece=0.01, label="p")
    assert "Calibration (ECE 0.010, 2,840 rows)" in many and "95% of dots by chance alone" in many


def test_findings_a_reader_needs_come_first() -> None:
    from mlengineer.report.html import _split_findings

    importance = {"fee": 0.6, "tenure": 0.35, "id_hash": 0.01, "zip": 0.01}
    findings = [{"severity": "warning", "column": f"c{i}", "check": "outliers", "message": "outliers"}
                for i in range(14)]
    findings += [{"severity": "warning", "column": "zip", "check": "outliers", "message": "outliers"},
                 {"severity": "info", "column": "id_hash", "check": "identifier", "message": "dropped"},
                 {"severity": "warning", "column": None, "check": "duplicate_rows", "message": "copies"},
                 {"severity": "warning", "column": "fee", "check": "outliers", "message": "outliers"},
                 {"severity": "error", "column": "refund", "check": "leakage", "message": "leaks"}]
    key, other = _split_findings(findings, importance)
    assert [f["column"] for f in key] == ["refund", "fee", None]
    assert len(other) == 16 and other[-1]["severity"] == "info"


@pytest.fixture(scope="module")
def small_report(churn_model_dir: Path, churn_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlengineer
    from mlengineer.report.html import write_report

    rows = pd.read_csv(churn_csv).sample(142, random_state=0)
    return write_report(mlengineer.load(churn_model_dir), tmp_path_factory.mktemp("words") / "report.html", rows)


@pytest.mark.slow
def test_the_report_is_titled_by_the_model_and_ordered_for_a_reader(small_report: Path) -> None:
    page = small_report.read_text()
    assert "<h1>churn-model: model report</h1>" in page  # the --out folder's name, not the data file's
    order = [page.index(f'id="{part}"') for part in ("summary", "metrics", "plots", "leaderboard", "quality", "card")]
    assert order == sorted(order)
    assert "Calibration: too few rows (142) to judge it" in page and "well calibrated" not in page


@pytest.mark.slow
@pytest.mark.browser
def test_chromium_shows_the_small_sample_honestly(small_report: Path, tmp_path: Path) -> None:
    from .test_report import assert_offline_and_clean, open_in_chromium

    seen = open_in_chromium(small_report, tmp_path / "report.png")
    assert_offline_and_clean(seen, small_report)
    text = seen["text"]
    assert "With only 142 rows there are too few to judge" in text
    assert "Calibration: too few rows (142) to judge it" in text and "95% of dots by chance alone" in text
    assert text.index("Leaderboard") < text.index("Data quality")
