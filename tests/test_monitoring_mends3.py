"""``mlengineer monitor`` and ``retrain`` as a new user reads them, third pass: the estimate beside the outcomes is
the estimate for the same rows, and the live estimate is compared with the same estimator on the reference rows;
a log answered by several versions says so; a time span that leaves out every outcome says so; the drift table
names what each statistic is; a regression interval never reaches 0; a challenger is named after its --out
folder, and one that only the registry keeps leaves no temporary folder behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.monitoring.estimate import LossModel
from mlengineer.monitoring.run import monitor_model
from mlengineer.monitoring.words import number

from .conftest import run_cli, run_clis
from .test_monitoring_mends import _rows
from .test_monitoring_mends2 import _log

pytestmark = pytest.mark.slow


def _numbers(n: int, seed: int) -> pd.DataFrame:
    """``_rows``' inputs, y a number with heavy-tailed noise: 2 x1 + x2 + 3 t(2)."""
    d = _rows(n, seed)
    d["y"] = 2 * d["x1"] + d["x2"] + 3 * np.random.default_rng(seed + 1).standard_t(2, n)
    return d


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A classifier and a regressor (heavy-tailed errors) of 3,000 rows each (linear: a few seconds)."""
    folder = tmp_path_factory.mktemp("mends3")
    mlengineer.train(_rows(3000, 0), "y", out=folder / "clf", track=False, time_budget=5, families=["linear"],
                     tune=False)
    mlengineer.train(_numbers(3000, 0), "y", out=folder / "reg", track=False, time_budget=5, families=["linear"],
                     tune=False)
    return {"clf": folder / "clf", "reg": folder / "reg"}


def _outcomes(rows: pd.DataFrame, version: str) -> pd.DataFrame:
    return pd.DataFrame({"request_id": [f"v{version}-{i // 2}" for i in range(len(rows))],
                         "row": [i % 2 for i in range(len(rows))], "y": rows["y"].to_numpy()})


@pytest.fixture(scope="module")
def two_versions(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A log of 1,400 shifted rows, 1,000 answered by version 1 and 400 by version 5, outcomes for version 1's."""
    folder = tmp_path_factory.mktemp("two-versions")
    model = mlengineer.load(models["clf"])
    rows = _rows(1400, 1, start=5000, shift=0.5)
    _log(folder / "log", model, rows.iloc[:1000][model.feature_names], version="1")
    _log(folder / "log", model, rows.iloc[1000:][model.feature_names], version="5")
    _outcomes(rows.iloc[:1000], "1").to_csv(folder / "labels.csv", index=False)
    return {"log": folder / "log", "labels": folder / "labels.csv"}


# -- 1 and 2. like with like ----------------------------------------------------------------------------------
def test_the_estimate_beside_the_outcomes_is_the_one_for_the_same_rows(models: dict[str, Path],
                                                                      two_versions: dict[str, Path]) -> None:
    """Before: the table showed the estimate over all 1,400 rows and an "estimate off by" measured against the
    estimate on the 1,000 labelled rows, and the summary said only "the estimate was ... too low"."""
    args = ("monitor", str(models["clf"]), "--log", str(two_versions["log"]), "--labels", str(two_versions["labels"]))
    r, table = run_clis([*args, "--json"], args)  # side by side, each its own process
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    auc = result["performance"]["metrics"]["roc_auc"]
    on_labelled = auc["estimated_on_labelled"]
    assert result["performance"]["labelled"] == 1000 and auc["error"] == pytest.approx(
        on_labelled["value"] - auc["realised"]["value"])
    said = [s for s in result["summary"] if s.startswith("Measured on the 1,000 rows")]
    assert len(said) == 1 and f"the estimate for these 1,000 rows, {number(on_labelled['value'])}, was" in said[0]
    r = table
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "estimated (all 1,400 rows)" in text and "estimated (1,000 labelled)" in text
    assert "estimate off by (labelled)" in text
    assert f"{on_labelled['value']:.4g} ({on_labelled['low']:.4g} to {on_labelled['high']:.4g})" in text


def test_the_live_estimate_is_compared_with_the_estimate_on_the_reference_rows(models: dict[str, Path],
                                                                              two_versions: dict[str, Path]) -> None:
    """Before: "against 0.769 on the rows it was validated on", the estimate there, while the table's reference
    column showed what was measured there (0.8146): neither said which was which."""
    _, result = monitor_model(str(models["clf"]), log=two_versions["log"])
    auc = result["performance"]["metrics"]["roc_auc"]
    before, measured = auc["reference_estimated"], auc["reference"]
    said = [s for s in result["summary"] if s.startswith("Estimated ROC AUC")]
    assert len(said) == 1, result["summary"]
    assert (f"against {number(before['value'])} estimated the same way on the rows it was validated on (measured "
            f"there: {number(measured['value'])})") in said[0]


# -- 3. several versions in one log; the challenger's name ------------------------------------------------------
@pytest.mark.long
def test_rows_answered_by_other_versions_are_named(models: dict[str, Path], tmp_path: Path) -> None:
    """Before: all rows were tested against the monitored version's reference without a word."""
    from mlengineer.tracking.registry import promote, register

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    for _ in range(2):
        register(models["clf"], "clfreg", tracking_uri=uri)
    promote("clfreg", "2", tracking_uri=uri)
    model = mlengineer.load(models["clf"])
    rows = _rows(300, 3, start=9000)[model.feature_names]
    _log(tmp_path / "log", model, rows.iloc[:200], name="clfreg", version="1")
    _log(tmp_path / "log", model, rows.iloc[200:], name="clfreg", version="2")
    r = run_cli("monitor", "models:/clfreg@champion", "--log", str(tmp_path / "log"), "--tracking-uri", uri, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    note = ("200 of 300 rows were answered by version 1, not version 2, whose reference they are all tested against "
            "(--by-version splits them).")
    assert note in result["current"]["notes"] and note in result["summary"]
    r = run_cli("monitor", "models:/clfreg@champion", "--log", str(tmp_path / "log"), "--tracking-uri", uri)
    assert r.returncode == 0 and note in " ".join(r.stdout.split()), r.stdout
    # a folder's version is not known: several versions are named all the same; one version, nothing
    _, result = monitor_model(str(models["clf"]), log=tmp_path / "log", log_model="clfreg", by_version=True)
    assert ("The 300 rows were answered by 2 model versions (version 1: 200, version 2: 100), all tested against "
            "this model's reference (the version windows split them).") in result["summary"]
    _, result = monitor_model("models:/clfreg/1", log=tmp_path / "log", tracking_uri=uri)
    assert "100 of 300 rows were answered by version 2, not version 1" in " ".join(result["summary"])
    _log(tmp_path / "one", model, rows, name="clfreg", version="2")
    _, result = monitor_model("models:/clfreg@champion", log=tmp_path / "one", tracking_uri=uri)
    assert not [s for s in result["summary"] if "answered by" in s]


def test_a_challenger_is_named_after_its_out_folder_and_registered_under_the_champions_name(
        models: dict[str, Path], tmp_path: Path) -> None:
    """Before: ``--out chall-shift`` made a model named after the champion's folder (clf)."""
    from mlengineer.monitoring.retrain import retrain
    from mlengineer.tracking.registry import promote, register, resolve

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(models["clf"], "clfreg", tracking_uri=uri)
    promote("clfreg", "1", tracking_uri=uri)
    _rows(300, 4, start=20_000, shift=0.3).to_csv(tmp_path / "new.csv", index=False)
    result = retrain("models:/clfreg@champion", data=tmp_path / "new.csv", time_budget=3, tracking_uri=uri,
                     out=tmp_path / "chall-shift")
    assert mlengineer.load(tmp_path / "chall-shift").name == "chall-shift"
    assert result.challenger_version == "2" and result.challenger_path == str(tmp_path / "chall-shift")
    info, path = resolve("models:/clfreg/2", tracking_uri=uri)
    assert info.name == "clfreg" and mlengineer.load(path).name == "chall-shift"
    # a folder champion without --out: the challenger beside it keeps the champion's name
    result = retrain(str(models["clf"]), data=tmp_path / "new.csv", time_budget=3, tracking_uri=uri)
    assert mlengineer.load(result.challenger_path).name == "clf"


# -- 7. no temporary folder left behind --------------------------------------------------------------------------
@pytest.mark.long
def test_a_registered_challenger_leaves_no_temporary_folder(models: dict[str, Path], tmp_path: Path) -> None:
    """Before: every retrain of a registry champion without --out left /tmp/mlengineer-challenger-XXXX/ for ever,
    and the Kept line said the challenger was saved there."""
    from mlengineer.tracking.registry import promote, register, resolve

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(models["clf"], "clfreg", tracking_uri=uri)
    promote("clfreg", "1", tracking_uri=uri)
    _rows(300, 5, start=30_000).to_csv(tmp_path / "same.csv", index=False)
    (tmp_path / "tmp").mkdir()
    r = run_cli("retrain", "models:/clfreg@champion", "--data", str(tmp_path / "same.csv"), "--time-budget", "3",
                "--tracking-uri", uri, cwd=tmp_path, env={"TMPDIR": str(tmp_path / "tmp")})
    assert r.returncode == 0, r.stderr
    assert not list((tmp_path / "tmp").glob("mlengineer-challenger-*"))
    said = " ".join(r.stdout.split())
    assert "Challenger: version 2, models:/clfreg/2;" in said and "mlengineer-challenger" not in said, said
    assert "Kept: the champion" in said and "it is registered as models:/clfreg/2, with no alias" in said, said
    assert mlengineer.load(resolve("models:/clfreg/2", tracking_uri=uri)[1]).name == "clf"


# -- 4. a span without outcomes -----------------------------------------------------------------------------------
@pytest.mark.long
def test_a_span_that_leaves_out_every_outcome_says_so(models: dict[str, Path], tmp_path: Path) -> None:
    """Before: --labels was dropped without a word (exit 0, no realised metrics)."""
    rows = _rows(300, 6, start=40_000)
    rows["ts"] = pd.date_range("2025-01-01", periods=300, freq="h").astype(str)
    rows.drop(columns=["y"]).to_csv(tmp_path / "rows.csv", index=False)
    rows[["id", "y"]].iloc[:100].to_csv(tmp_path / "outcomes.csv", index=False)  # the first 100 hours
    args = ("monitor", str(models["clf"]), "--data", str(tmp_path / "rows.csv"), "--time-column", "ts", "--labels",
            str(tmp_path / "outcomes.csv"), "--key", "id", "--since", "2025-01-06")
    r = run_cli(*args, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    note = (f"None of the 100 outcomes of {tmp_path / 'outcomes.csv'} fall between 2025-01-06 and now (--since): no "
            "realised metrics. Widen the span to include them.")
    assert note in result["current"]["notes"] and note in result["summary"]
    assert result["performance"]["metrics"]["roc_auc"]["realised"] is None
    r = run_cli(*args)
    assert r.returncode == 0 and note in " ".join(r.stdout.split()), r.stdout
    # a span holding some outcomes says nothing of the kind
    _, result = monitor_model(str(models["clf"]), data=tmp_path / "rows.csv", time_column="ts",
                              labels=tmp_path / "outcomes.csv", key="id", since="2025-01-03")
    assert not [s for s in result["summary"] if s.startswith("None of the")]


# -- 5. what each drift statistic is ------------------------------------------------------------------------------
def test_the_drift_table_names_each_measure(models: dict[str, Path], two_versions: dict[str, Path]) -> None:
    """Before: one "statistic" column held p-values (bigger is calmer) and distances (bigger is worse) alike."""
    args = ("monitor", str(models["clf"]), "--log", str(two_versions["log"]))
    r, table = run_clis([*args, "--json"], args)  # side by side, each its own process
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    drift = [*result["drift"]["columns"], result["drift"]["prediction"]]
    measures = {c["test"]: c["measure"] for c in drift}
    assert measures["Wasserstein distance (normed)"] == "distance" and measures["Kolmogorov-Smirnov"] == "p-value"
    r = table
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(line for line in lines if "drifted" in line and "PSI" in line)
    assert "measure" in head and "drift when" in head and "statistic" not in head
    x1 = next(line for line in lines if line.strip("│┃ ").startswith("x1 "))
    pred = next(line for line in lines if "(prediction)" in line)
    assert "distance 0." in x1 and "distance >= 0.1" in x1
    assert "p-value " in pred and "p-value < 0.05" in pred


# -- 6. the regression interval -----------------------------------------------------------------------------------
def test_the_regression_interval_stays_above_zero_with_heavy_tailed_errors(models: dict[str, Path]) -> None:
    """Before: a normal interval on the MSE, clipped at 0: "Estimated RMSE 30,727 (95% 0 to 46,343)"."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(600, 3))
    pred = X[:, 0]
    loss = LossModel(seed=0).fit(X, pred, pred + 100 * rng.standard_t(2.2, size=600))
    m = loss.expected_error(X[:40], pred[:40])
    for name in ("rmse", "mae"):
        est = loss.estimate(name, m, pred[:40])
        assert 0 < est.low < est.value < est.high, est
        assert loss.estimate(name, m, pred[:40]) == est  # it repeats
    r2 = loss.estimate("r2", m, pred[:40])
    assert r2.low < r2.value < r2.high
    # and on a bundle, the reference estimate too
    _, result = monitor_model(str(models["reg"]), data=_numbers(40, 7))
    for e in result["performance"]["metrics"].values():
        for est in (e["estimated"], e["reference_estimated"]):
            assert 0 < est["low"] < est["value"] < est["high"], est
