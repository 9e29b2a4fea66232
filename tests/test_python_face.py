"""The Python API speaks Python: its messages name the arguments (``drop=``, ``weight_column=``), not the CLI's
flags, which the CLI keeps; predicting warns (``InputWarning``) of what the CLI notes and the server returns;
``train`` lists its options in its signature, logs what it did to the table, and takes one name where a list
goes; ``Model.leaderboard()`` is the search's candidates as a frame."""

from __future__ import annotations

import inspect
import logging
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import InputWarning

from .conftest import run_cli

QUICK = {"time_budget": 2, "track": False}


@pytest.fixture(scope="module")
def churn(churn_csv: Path) -> pd.DataFrame:
    return pd.read_csv(churn_csv)


# -- F3: the arguments' names ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "error", "words"), [
    ({"drop": "age", "keep": ["age"]}, mlengineer.ConfigError, r"^drop= and keep= both name the column 'age'"),
    ({"drop": ["agee"]}, mlengineer.DataError, r"^drop= names the column 'agee', which the data does not have \(did you mean 'age'\?\); its columns are: "),
    ({"column_roles": {"agee": "numeric"}}, mlengineer.DataError, r"^column_roles= names the column 'agee'"),
    ({"weight_column": "w"}, mlengineer.DataError, r"^The weight column 'w' \(weight_column=\) is not in the data"),
    ({"group_column": "g"}, mlengineer.DataError, r"^group_column= names the column 'g'"),
    ({"time_column": "plan"}, mlengineer.DataError, r"^The time_column='plan' holds no dates"),
    ({"target_transform": "log"}, mlengineer.ConfigError, r"leave target_transform= out\.$"),
])
def test_train_s_messages_name_its_arguments(churn: pd.DataFrame, options: dict[str, object],
                                             error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words) as e:
        mlengineer.train(churn, "churn", **QUICK, **options)  # type: ignore[arg-type]
    assert "--" not in str(e.value)


def test_the_store_the_destination_and_the_registry_are_named_as_arguments(tmp_path: Path, churn: pd.DataFrame,
                                                                          churn_model_dir: Path) -> None:
    (tmp_path / "afile").write_text("")
    with pytest.raises(mlengineer.ModelError, match=r"is a file: choose another out= \(a folder for the model\)"):
        mlengineer.train(churn, "churn", out=tmp_path / "afile", **QUICK)  # type: ignore[arg-type]
    with pytest.raises(mlengineer.ConfigError, match=r"names a folder.*pass tracking_uri='sqlite:///PATH/mlruns\.db'"):
        mlengineer.train(churn, "churn", time_budget=2, tracking_uri=f"sqlite:///{tmp_path}")
    with pytest.raises(mlengineer.ModelError, match="or pass the tracking_uri= it was registered in"):
        mlengineer.load("models:/nope@champion", tracking_uri=f"sqlite:///{tmp_path / 'none.db'}")
    model = mlengineer.load(churn_model_dir)
    with pytest.raises(mlengineer.ModelError, match=r"already exists: choose another path= or remove it\.$"):
        model.save(churn_model_dir, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing half-written, no store


def test_the_judging_calls_name_their_arguments(churn_model_dir: Path, salary_model_dir: Path, salaries_csv: Path,
                                                churn: pd.DataFrame) -> None:
    model = mlengineer.load(churn_model_dir)
    with pytest.raises(mlengineer.ConfigError, match=r"^target_precision= must be between 0 and 1"):
        mlengineer.recalibrate(model, churn, target_precision=2)
    with pytest.raises(mlengineer.ConfigError, match=r"one rule: cost_fp=/cost_fn=, target_precision= or "
                                                     r"target_recall=\.$"):
        mlengineer.recalibrate(model, churn, target_precision=0.5, target_recall=0.5)
    salary = mlengineer.load(salary_model_dir)
    with pytest.raises(mlengineer.ConfigError, match=r"labelled rows the model did not learn from "
                                                     r"\(mlengineer\.recalibrate\(model, rows\)\)\.$"):
        salary.predict_frame(pd.read_csv(salaries_csv).head(3), interval=0.99999)


def test_the_cli_keeps_its_flags(churn_csv: Path) -> None:
    r = run_cli("train", str(churn_csv), "--target", "churn", "--drop", "age", "--keep", "age", "--no-track")
    assert r.returncode == 2 and "--drop and --keep both name the column 'age'" in r.stderr, r.stderr


def test_flags_become_arguments_with_their_values() -> None:
    from mlengineer.errors import python_words
    from mlengineer.pipeline.public import ARGUMENTS, PHRASES

    said = python_words("Use --keep COL or --column-role COL=ROLE; keep it with --keep salary. Use --task "
                        "multiclass, or pass --no-weights. Run 'mlengineer train DATA --engine spark'; or leave "
                        "out --weight-column w (--cost-fp 2).", ARGUMENTS, PHRASES)
    assert said == ("Use keep=[COL] or column_roles={COL: ROLE}; keep it with keep=['salary']. Use task='multiclass', "
                    "or pass weights=False. Run 'mlengineer train DATA --engine spark'; or leave out "
                    "weight_column='w' (cost_fp=2).")


# -- F13: the signature ------------------------------------------------------------------------------------------

def test_train_lists_every_option_in_its_signature() -> None:
    params = inspect.signature(mlengineer.train).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())  # no **options hiding them
    for name, field in mlengineer.TrainConfig.model_fields.items():
        assert name in params, f"train() does not list the option {name!r}"
        if name != "target":
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
            assert params[name].default == (None if field.default_factory else field.default), name
    assert {"out", "track", "name", "config"} <= set(params)


# -- F5: one name where a list goes -------------------------------------------------------------------------------

def test_one_name_is_a_list_of_one_in_python_and_yaml(tmp_path: Path) -> None:
    from mlengineer.training.config import load_config_file

    config = mlengineer.TrainConfig.build(target="y", drop="age", keep="plan", families="lightgbm")
    assert (config.drop, config.keep, config.families) == (["age"], ["plan"], ["lightgbm"])
    (tmp_path / "c.yaml").write_text("target: y\nfamilies: linear\ndrop: 'a, b'\n")
    config = mlengineer.TrainConfig.build(**load_config_file(tmp_path / "c.yaml"))
    assert config.families == ["linear"] and config.drop == ["a, b"]  # a column's name may hold a comma
    with pytest.raises(mlengineer.ConfigError, match=r"^families= takes a list of family names, one "
                                                     r"each: \['linear', 'lightgbm'\] .*; got 'linear,lightgbm'\.$"):
        mlengineer.TrainConfig.build(target="y", families="linear,lightgbm")


# -- F11: predicting warns ----------------------------------------------------------------------------------------

def test_predicting_warns_once_a_call_in_the_cli_s_words(churn_model_dir: Path, churn: pd.DataFrame) -> None:
    from mlengineer.serving.batch import InputNotes, extra_columns_note

    model = mlengineer.load(churn_model_dir)
    rows = churn.drop(columns="churn").head(50).assign(plan="gold", agee=3)
    rows.loc[3, "age"] = 10_000
    with pytest.warns(InputWarning) as caught:
        model.predict(rows)
    assert len(caught) == 1 and caught[0].filename == __file__  # once a call, at the caller's line
    cli = InputNotes(model)
    cli.add(rows)
    assert str(caught[0].message) == " ".join([extra_columns_note(model, list(rows.columns)) or "", *cli.lines()])
    assert "50 rows hold categories the model never saw (e.g. 'gold')" in str(caught[0].message)
    record = {**churn.drop(columns="churn").iloc[0].to_dict(), "plan": "gold"}
    for call in (model.predict, model.predict_proba, model.predict_frame):
        with pytest.warns(InputWarning, match=r"^Column 'plan': 1 row holds a category the model never saw"):
            call(record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rows like the training rows: nothing to say
        model.predict(churn.head(20))
        model.predict_proba(churn.drop(columns="churn").iloc[0])
        model.predict_frame([churn.drop(columns="churn").iloc[1].to_dict()])
    assert pickle.loads(pickle.dumps(model)).predict(churn.head(3)).shape == (3,)


def test_the_predict_command_prints_no_python_warning(churn_model_dir: Path, churn: pd.DataFrame,
                                                      tmp_path: Path) -> None:
    churn.head(30).assign(plan="gold").to_csv(tmp_path / "rows.csv", index=False)
    r = run_cli("predict", str(churn_model_dir), str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.csv"))
    assert r.returncode == 0 and "InputWarning" not in r.stderr, r.stderr
    assert "30 rows hold categories the model never saw (e.g. 'gold')" in r.stdout + r.stderr


# -- F11: training logs what it did to the table ------------------------------------------------------------------

@pytest.mark.slow
def test_train_logs_a_dropped_leaky_column(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    y = np.where(x + rng.normal(scale=0.8, size=300) > 0, "yes", "no")
    frame = pd.DataFrame({"x": x, "z": rng.normal(size=300), "leak": (y == "yes").astype(float), "y": y})
    with caplog.at_level(logging.INFO, logger="mlengineer"):
        model = mlengineer.train(frame, "y", families=["linear"], **QUICK)  # type: ignore[arg-type]
    assert "leak" not in model.feature_names
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "mlengineer"]
    assert any("'leak'" in w and "(column dropped)" in w and "keep=['leak']" in w for w in warned), warned
    assert not any("--" in w for w in warned), warned
    assert any(r.getMessage().startswith("Cleaning: kept 2 feature columns; dropped 1 (leak: ") for r in caplog.records)


# -- F14: the leaderboard -----------------------------------------------------------------------------------------

def test_the_leaderboard_is_a_frame_of_the_candidates(churn_model_dir: Path) -> None:
    model = mlengineer.load(churn_model_dir)
    board = model.leaderboard()
    assert list(board.columns) == ["model", "family", "phase", "score", "fit_seconds", "predict_ms_per_row",
                                   "status", "in_ensemble", "weight"]
    assert len(board) == len(model.metadata["leaderboard"]) > 1 and board.attrs["metric"] == model.metadata["metric"]
    members = {e["model"]: e["weight"] for e in model.metadata["ensemble"]}
    assert dict(zip(board.loc[board.in_ensemble, "model"], board.loc[board.in_ensemble, "weight"], strict=True)) \
        == pytest.approx(members)
    assert (board.loc[~board.in_ensemble, "weight"] == 0).all()


def test_n_jobs_reads_negative_counts_as_scikit_learn_does() -> None:
    """n_jobs=-3 ended in a ZeroDivisionError deep in the search; -1 (scikit-learn's every core) is every core."""
    import os

    from mlengineer.training.config import TrainConfig

    cores = os.cpu_count() or 1
    assert TrainConfig.build(target="y", n_jobs=-1).n_jobs == 0
    assert TrainConfig.build(target="y", n_jobs=0).n_jobs == 0
    assert TrainConfig.build(target="y", n_jobs=3).n_jobs == 3
    if cores > 1:
        assert TrainConfig.build(target="y", n_jobs=-2).n_jobs == cores - 1
    with pytest.raises(mlengineer.ConfigError, match=rf"^n_jobs= of -{cores + 1} leaves none of this "
                       rf"machine's {cores} cores"):
        TrainConfig.build(target="y", n_jobs=-(cores + 1))


def test_a_tracking_server_that_is_not_there_is_one_line_before_training(tmp_path: Path) -> None:
    """http://host:port with nothing listening: MLflow retried for about four minutes before its error."""
    import socket

    with socket.socket() as s:  # a port nothing listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    frame = pd.DataFrame({"x": np.arange(40.0), "y": ["a", "b"] * 20})
    with pytest.raises(mlengineer.ConfigError, match=rf"^The tracking server '{uri}' cannot be reached \(nothing "
                       r"listens there\): start it, or check the host and port in tracking_uri="):
        mlengineer.train(frame, "y", time_budget=2, tracking_uri=uri, out=tmp_path / "m")
    assert not (tmp_path / "m").exists()
    frame.to_csv(tmp_path / "t.csv", index=False)
    done = run_cli("train", "t.csv", "--target", "y", "--time-budget", "2", "--tracking-uri", uri, cwd=tmp_path)
    assert done.returncode == 2 and "check the host and port in --tracking-uri" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "mlruns.db").exists()


@pytest.mark.long
def test_a_tracking_server_that_answers_records_the_run(tmp_path: Path) -> None:
    """The reachability check lets a real MLflow tracking server through: the run is recorded there."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen([str(mlflow_cli), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 's.db'}",
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        for _ in range(120):  # the server's start: about 10 s
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        frame = pd.DataFrame({"x": np.tile([0.5, 1.5, 2.5, 3.5], 10), "y": ["a", "b"] * 20})
        model = mlengineer.train(frame, "y", time_budget=2, families="linear", tracking_uri=f"http://127.0.0.1:{port}")
        from mlflow import MlflowClient

        run = MlflowClient(f"http://127.0.0.1:{port}").get_run(model.metadata["run_id"])
        assert run.info.status == "FINISHED" and run.data.tags["mlengineer.target"] == "y"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_small_mistakes_of_a_notebook_are_one_line_in_python_words(churn: pd.DataFrame) -> None:
    """An explorer's findings: pydantic's raw words for time_budget=None, YAML's for a list, a progress that is
    no function, top=-1 cutting a column silently, the target named as a column to drop, group or time by."""
    cases = [(dict(time_budget=None), "time_budget= takes a number; got None."),
             (dict(drop=5), "drop= takes a list: [a, b]; got 5."),
             (dict(tune="maybe"), "tune= takes True or False; got 'maybe'."),
             (dict(progress=5), "progress= takes a function called as the search goes (or None); got int."),
             (dict(drop="churn"), "drop= names the target 'churn', which is never a feature: leave it out of drop=."),
             (dict(time_column="churn"), "time_column= names the target 'churn': name the column of the dates or "
                                         "times the rows were recorded at.")]
    for options, said in cases:
        with pytest.raises(mlengineer.ConfigError) as e:
            mlengineer.train(churn, "churn", track=False, **options)
        assert str(e.value) == said, options
    model = mlengineer.train(churn.head(200), "churn", time_budget=2, track=False, families="linear")
    with pytest.raises(mlengineer.ConfigError, match=r"^top= takes how many columns to show a row, 1 or more; got -1"):
        mlengineer.explain_rows(model, churn.head(1), top=-1)
    assert len(mlengineer.explain_rows(model, churn.head(1), top=2)[0]["contributions"]) == 2
