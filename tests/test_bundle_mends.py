"""Bundles that stay whole: a save cut by Ctrl-C leaves the old bundle or the new one and no staging folder, a
training stopped by Ctrl-C leaves --out as it was and a KILLED run that holds no model, and a binary model's
decision threshold about the class the user names (``calibrate --positive-class``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import ModelError

from .conftest import run_cli, run_clis

CHURN = Path(__file__).parent / "fixtures" / "churn_800.csv"


def _env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, "COLUMNS": "200"}


def _beside(folder: Path) -> list[str]:
    """What writers of ``folder`` left beside it (staging, old copies)."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


# -- 2: Ctrl-C inside write_bundle -------------------------------------------------------------------------------

#: a process that saves a bundle over one saved as "first", sending itself SIGINT at a chosen point of the save:
#: while the estimator is written, between the two renames of the swap, or inside the clean-up; once per point
_SAVES = r"""
import json, os, pathlib, shutil, signal, sys
import joblib
import mlengineer

signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal gives it, even where we were started ignoring it

model, root = mlengineer.load(sys.argv[1]), pathlib.Path(sys.argv[2])
real_dump, real_rename, real_rmtree = joblib.dump, pathlib.Path.rename, shutil.rmtree
point, dest = None, None

def interrupt():
    os.kill(os.getpid(), signal.SIGINT)

def dump(*a, **k):
    if point == "write":
        interrupt()
    return real_dump(*a, **k)

def rename(self, target):
    out = real_rename(self, target)
    if point == "swap" and self == dest:  # the old bundle moved out of the way, the new one not yet in
        interrupt()
    return out

def rmtree(path, *a, **k):
    if point == "clean-up" and pathlib.Path(path).name.startswith(f".{dest.name}.staging-"):
        interrupt()
    return real_rmtree(path, *a, **k)

joblib.dump, pathlib.Path.rename, shutil.rmtree = dump, rename, rmtree
said = {}
for point in ("write", "swap", "clean-up"):
    dest = root / point
    model.metadata["name"] = "first"
    saving, point = point, None
    model.save(dest)
    point, model.metadata["name"] = saving, "second"
    try:
        model.save(dest)
        interrupted = False
    except KeyboardInterrupt:
        interrupted = True
    said[point] = [interrupted, mlengineer.load(dest).name if dest.exists() else None]
print(json.dumps(said))
"""


def test_ctrl_c_inside_a_save_leaves_the_old_bundle_or_the_new_one_and_nothing_beside(
        churn_model_dir: Path, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", _SAVES, str(churn_model_dir), str(tmp_path)], cwd=tmp_path,
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    said = json.loads(r.stdout.strip().splitlines()[-1])
    # cut while written: the bundle before; cut in the swap or the clean-up after it: the new one
    assert said == {"write": [True, "first"], "swap": [True, "second"], "clean-up": [True, "second"]}, said
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# -- 3: Ctrl-C during mlengineer train ---------------------------------------------------------------------------

#: ``mlengineer train`` in a process that sends itself SIGINT once the bundle is logged into the run (the run
#: still RUNNING: its candidates are logged next)
_TRAIN = r"""
import os, signal, sys
import mlflow
from mlengineer.cli import main

signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal gives it, even where we were started ignoring it

real = mlflow.log_artifacts

def log_artifacts(local_dir, artifact_path=None, **kw):
    real(local_dir, artifact_path=artifact_path, **kw)
    if artifact_path == "model":
        os.kill(os.getpid(), signal.SIGINT)

mlflow.log_artifacts = log_artifacts
sys.argv = ["mlengineer", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_ctrl_c_during_train_leaves_out_as_it_was_and_a_killed_run_without_model(
        churn_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    shutil.copytree(churn_model_dir, out)
    before = (out / "manifest.json").read_bytes()
    args = ["train", str(CHURN), "--target", "churn", "--time-budget", "2", "--families", "linear", "--out", str(out)]
    r = subprocess.run([sys.executable, "-c", _TRAIN, *args], cwd=tmp_path, env=_env(), capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 130 and "interrupted" in r.stderr, r.stdout + r.stderr
    assert (out / "manifest.json").read_bytes() == before  # the bundle that was there stays as it was
    assert _beside(out) == []
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    runs = mlflow.MlflowClient(uri).search_runs([mlflow.MlflowClient(uri).get_experiment_by_name("mlengineer")
                                                 .experiment_id], filter_string="attributes.status = 'KILLED'")
    killed = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(killed) == 1
    with pytest.raises(ModelError, match="ended KILLED before it recorded its model: train again"):
        mlengineer.load(killed[0].info.run_id, tracking_uri=uri)
    r = run_cli("predict", str(out), str(CHURN), cwd=tmp_path)  # and the model before still predicts
    assert r.returncode == 0, r.stderr


# -- 1: calibrate --positive-class -------------------------------------------------------------------------------

def test_positive_class_chooses_the_threshold_for_the_class_the_user_names(churn_model_dir: Path,
                                                                            tmp_path: Path) -> None:
    from mlengineer.evaluation.evaluate import evaluate

    out = tmp_path / "no-finder"
    r = run_cli("calibrate", str(churn_model_dir), "--out", str(out), "--method", "none", "--positive-class", "no",
                "--target-recall", "0.9", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "on the probability of no (the positive class)" in r.stdout and "recall" in r.stdout, r.stdout
    model = mlengineer.load(out)
    t = model.extras["threshold"]
    assert (t["positive"], t["positive_index"]) == ("no", 0) and t["recall"] >= 0.9
    assert json.loads((out / "artifacts" / "bundle" / "metadata.json").read_text())["threshold"]["positive"] == "no"
    assert "threshold" not in mlengineer.load(churn_model_dir).extras  # --out leaves MODEL as it was
    # the rows it was chosen on: "no" answered exactly where its probability reaches the threshold, at that recall
    p1 = model.calibrated(model.validation["pred"])[:, 1]
    answered = model.decide(np.column_stack([1 - p1, p1]))
    assert np.array_equal(answered == "no", (1.0 - p1) >= t["positive_value"])
    truth = np.asarray(model.classes, dtype=object)[model.validation["y"]]
    assert np.mean(answered[truth == "no"] == "no") == pytest.approx(t["recall"])
    # predict and evaluate count the labels it answers, and evaluate's precision and recall are about "no"
    rows = pd.read_csv(CHURN)
    predicted = model.predict_frame(rows.drop(columns=["churn"]))
    assert np.array_equal(predicted["prediction"] == "no", predicted["proba_yes"].rsub(1.0) >= t["positive_value"])
    result = evaluate(model, rows, n_boot=10, slices=False)
    said_no = (predicted["prediction"] == "no").to_numpy()
    is_no = (rows["churn"] == "no").to_numpy()
    assert result["threshold"]["recall_here"] == pytest.approx(said_no[is_no].mean())
    assert result["threshold"]["precision_here"] == pytest.approx(is_no[said_no].mean())
    assert result["metrics"]["accuracy"] == pytest.approx(np.mean(predicted["prediction"] == rows["churn"]))
    r = run_cli("evaluate", str(out), str(CHURN), cwd=tmp_path)
    assert r.returncode == 0 and "on the probability of no" in r.stdout, r.stdout + r.stderr
    # the report's words say the decision about the class named, at the threshold on its probability
    from mlengineer.evaluation.decision import answering_words

    assert answering_words(model) == f"answering no from a probability of {t['positive_value']:.4g} on (its decision threshold), not from 50%"
    assert answering_words(mlengineer.load(churn_model_dir)) == ""


def test_without_positive_class_the_threshold_stays_about_the_second_class(churn_model_dir: Path,
                                                                           tmp_path: Path) -> None:
    from mlengineer.evaluation.uncertainty import recalibrate

    out = tmp_path / "yes-finder"
    model = mlengineer.load(churn_model_dir)  # in process: the command's words are checked in the test above
    recalibrate(model, method="none", target_recall=0.9)
    t = model.extras["threshold"]
    assert t["positive"] == "yes" and "positive_index" not in t
    p1 = model.calibrated(model.validation["pred"])[:, 1]
    assert np.array_equal(model.decide(np.column_stack([1 - p1, p1])) == "yes", p1 >= t["value"])
    del model.extras["threshold"]["positive"]  # as a bundle saved before thresholds carried their class
    model.save(out)
    assert np.array_equal(mlengineer.load(out).decide(np.column_stack([1 - p1, p1])) == "yes", p1 >= t["value"])


def test_positive_class_refuses_an_unknown_label_or_a_model_that_is_not_binary(
        churn_model_dir: Path, salary_model_dir: Path, tmp_path: Path) -> None:
    # the commands side by side (each its own process): most of their seconds are their start
    unknown, no_rule, regression = run_clis(
        ["calibrate", str(churn_model_dir), "--out", str(tmp_path / "c"), "--positive-class", "maybe",
         "--target-recall", "0.9"],
        ["calibrate", str(churn_model_dir), "--out", str(tmp_path / "c"), "--positive-class", "no"],
        ["calibrate", str(salary_model_dir), "--out", str(tmp_path / "s"), "--positive-class", "1",
         "--target-recall", "0.9"], cwd=tmp_path)
    r = unknown
    assert r.returncode == 2 and "'maybe'" in r.stderr and "no, yes" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "c").exists()
    r = no_rule
    assert r.returncode == 2 and "--target-recall" in r.stderr and not (tmp_path / "c").exists(), r.stderr
    r = regression
    assert r.returncode == 2 and "'1'" in r.stderr and "regression" in r.stderr, r.stderr
    assert not (tmp_path / "s").exists()
