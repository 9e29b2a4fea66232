"""``mlengineer monitor`` on real bundles: the reference sample kept at training, drift and quality found on
shifted rows, estimated and realised performance, JSON and exit codes, the HTML report in a real Chromium,
and every kind of bad input answered in one line with exit status 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.bundle.reference import load_reference

from .conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def churn_rows(churn_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Live rows: a same-distribution sample, and a shifted one (longer tenure, a new plan, no fee for a
    quarter of customers), each with outcomes and a customer id to join them by."""
    folder = tmp_path_factory.mktemp("churn-live")
    df = pd.read_csv(churn_csv)
    same = df.sample(500, random_state=5).reset_index(drop=True)
    shifted = same.copy()
    shifted["tenure_months"] = shifted["tenure_months"] * 1.8 + 6
    shifted.loc[shifted.index[::3], "plan"] = "enterprise"
    shifted.loc[shifted.index[::4], "monthly_fee"] = np.nan
    paths = {}
    for name, frame in (("same", same), ("shifted", shifted)):
        frame.drop(columns=["churn"]).to_csv(folder / f"{name}.csv", index=False)
        frame[["customer_id", "churn"]].to_csv(folder / f"{name}_outcomes.csv", index=False)
        paths[name] = folder / f"{name}.csv"
        paths[f"{name}_outcomes"] = folder / f"{name}_outcomes.csv"
    return paths


def _monitor(*args: str) -> tuple[int, str, str]:
    r = run_cli("monitor", *args)
    return r.returncode, r.stdout, r.stderr


def test_the_bundle_keeps_a_reference_sample_tied_to_its_validation_predictions(churn_model_dir: Path) -> None:
    model = mlengineer.load(churn_model_dir)
    ref = load_reference(model)
    assert ref is not None and 0 < len(ref) <= 10_000
    assert set(model.feature_names) <= set(ref.columns) and model.target in ref.columns
    scored = ref.loc[ref["_ref_proba_1"].notna()]
    assert len(scored) == min(len(model.validation["y"]), 5000)
    # each stored prediction is the validation prediction of that very row: same outcome, same probability
    by_proba = {round(float(p), 12): int(y) for p, y in zip(model.validation["pred"][:, 1], model.validation["y"],
                                                           strict=True)}
    outcomes = model.task.encode(scored["churn"])
    matched = [by_proba.get(round(float(p), 12)) for p in scored["_ref_proba_1"]]
    assert np.mean([m == y for m, y in zip(matched, outcomes, strict=True)]) == 1.0
    assert model.metadata["reference"]["with_predictions"] == len(scored)


def test_rows_like_training_raise_no_alarm(churn_model_dir: Path, churn_rows: dict[str, Path]) -> None:
    code, out, err = _monitor(str(churn_model_dir), "--data", str(churn_rows["same"]), "--json",
                              "--fail-on", "drift")
    assert code == 0, err
    result = json.loads(out)
    assert not result["alarms"]["drift"] and not any(c["drifted"] for c in result["drift"]["columns"])
    assert result["summary"][0].startswith("Inputs look like training")
    est = result["performance"]["metrics"]["roc_auc"]["estimated"]
    assert est["low"] < est["value"] < est["high"] and est["method"].startswith("CBPE")


def test_shifted_rows_show_drift_quality_and_the_estimate_against_the_outcomes(
        churn_model_dir: Path, churn_rows: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "monitor.html"
    code, out, err = _monitor(str(churn_model_dir), "--data", str(churn_rows["shifted"]), "--labels",
                              str(churn_rows["shifted_outcomes"]), "--key", "customer_id", "--out", str(report),
                              "--fail-on", "drift")
    assert code == 1, err
    assert "Found: drift (--fail-on): exit status 1." in out
    flat = " ".join(out.split())
    assert "Inputs changed: " in flat and "tenure_months is higher than in training" in flat
    assert "categories never seen in training ('enterprise')" in out and "monthly_fee: missing in 2" in out
    assert report.is_file() and "<script" not in report.read_text()
    code, out, _ = _monitor(str(churn_model_dir), "--data", str(churn_rows["shifted"]), "--labels",
                            str(churn_rows["shifted_outcomes"]), "--key", "customer_id", "--json")
    result = json.loads(out)
    cols = {c["column"]: c for c in result["drift"]["columns"]}
    assert cols["tenure_months"]["drifted"] and cols["plan"]["drifted"] and cols["monthly_fee"]["missing_drifted"]
    assert not cols["age"]["drifted"]
    roc = result["performance"]["metrics"]["roc_auc"]
    assert result["current"]["labelled"] == 500 and roc["realised"]["rows"] == 500
    assert roc["error"] == pytest.approx(roc["estimated_on_labelled"]["value"] - roc["realised"]["value"])
    assert any("Measured on the 500 rows whose outcomes are known" in s for s in result["summary"])


def test_outcomes_worse_than_the_inputs_promised_are_concept_drift(churn_model_dir: Path, churn_csv: Path) -> None:
    """The same inputs, other outcomes (short-tenure premium customers now stay, long-tenure ones leave): no
    input column moves, but the outcomes fall below what the estimate promised for those very rows."""
    from mlengineer.monitoring.run import monitor_model

    df = pd.read_csv(churn_csv).sample(600, random_state=8).reset_index(drop=True)
    df["churn"] = np.where(df["tenure_months"] > df["tenure_months"].median(), "yes", "no")
    _, result = monitor_model(str(churn_model_dir), data=df)
    perf = result["performance"]
    assert not result["alarms"]["drift"] and perf["concept_drift"] and result["alarms"]["performance"]
    assert any("the relation between inputs and outcome changed" in s for s in result["summary"])


def test_a_regression_model_gets_a_loss_model_estimate(salary_model_dir: Path, salaries_csv: Path,
                                                       tmp_path: Path) -> None:
    from mlengineer.monitoring.run import monitor_model

    df = pd.read_csv(salaries_csv)
    model, result = monitor_model(str(salary_model_dir), data=df.sample(600, random_state=2), window=None)
    rmse = result["performance"]["metrics"]["rmse"]
    assert rmse["estimated"]["method"].startswith("DLE") and rmse["realised"] is not None
    assert abs(rmse["error"]) < 0.25 * rmse["realised"]["value"]
    assert result["performance"]["headline"] == model.metadata["metric"]


@pytest.mark.long
def test_bad_input_is_one_line_and_exit_2(churn_model_dir: Path, salary_model_dir: Path,
                                         churn_rows: dict[str, Path], tmp_path: Path) -> None:
    no_match = tmp_path / "no_match.csv"
    pd.DataFrame({"customer_id": ["X1", "X2"], "churn": ["yes", "no"]}).to_csv(no_match, index=False)
    wrong_class = tmp_path / "wrong_class.csv"
    pd.read_csv(churn_rows["same_outcomes"]).assign(churn="maybe").to_csv(wrong_class, index=False)
    stale = tmp_path / "old-bundle"
    shutil.copytree(churn_model_dir, stale)
    (stale / "artifacts" / "bundle" / "reference.parquet").unlink()
    from mlengineer.bundle.manifest import write_manifest

    write_manifest(stale)  # as an older mlengineer saved it: valid, but without a reference
    from mlengineer.errors import MLEngineerError
    from mlengineer.monitoring.run import monitor_model

    same = churn_rows["same"]
    in_process = [
        (churn_model_dir, {"data": same, "labels": no_match, "key": "customer_id"}, "match a monitored row"),
        (churn_model_dir, {"data": same, "labels": wrong_class, "key": "customer_id"}, "none of the model's"),
        (churn_model_dir, {"data": same, "labels": no_match}, "--key COLUMN"),
        (stale, {"data": same}, "keeps no reference sample"),
        (churn_model_dir, {}, "Pass either --log DIR"),
        (churn_model_dir, {"data": same, "window": "1d"}, "--window needs times"),
        (salary_model_dir, {"data": same}, "which the model needs"),
        (churn_model_dir, {"log": tmp_path}, "holds no prediction log"),
    ]
    for model, options, words in in_process:
        with pytest.raises(MLEngineerError) as err:
            monitor_model(str(model), **options)
        assert words in str(err.value) and "\n" not in str(err.value), (options, err.value)
    # the command line turns each into one line on stderr and exit status 2
    for args, words in (([str(stale), "--data", str(same)], "keeps no reference sample"),
                        ([str(churn_model_dir), "--data", str(same), "--fail-on", "everything"], "--fail-on takes")):
        code, out, err_text = _monitor(*args)
        assert code == 2, (args, out, err_text)
        assert words in err_text and "Traceback" not in err_text and len(err_text.strip().splitlines()) == 1


@pytest.mark.browser
def test_the_monitoring_report_opens_offline_and_reads_plainly(churn_model_dir: Path, churn_rows: dict[str, Path],
                                                               tmp_path: Path) -> None:
    from mlengineer.monitoring.run import monitor_model
    from mlengineer.report.monitoring import write_monitoring_report

    from .test_report import assert_offline_and_clean, open_in_chromium

    model, result = monitor_model(str(churn_model_dir), data=churn_rows["shifted"], labels=churn_rows[
        "shifted_outcomes"], key="customer_id")
    page = write_monitoring_report(result, tmp_path / "monitor.html", model=model)
    seen = open_in_chromium(page, tmp_path / "monitor.png")
    assert_offline_and_clean(seen, page)
    text = seen["text"]
    assert text.index("Inputs changed") < text.index("What changed in the inputs")  # plain words first
    for part in ("Alarms: drift", "Data quality", "How good the model is on these rows", "estimated here",
                 "realised here", "Training rows against live rows", "How it was measured"):
        assert part in text, part
    assert seen["figures"] >= 1 and seen["boxes"]["#summary"]["height"] > 50
