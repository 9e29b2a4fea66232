"""``mlengineer monitor`` and ``retrain`` with messy inputs, as a new user meets them: rows whose time cannot be
read are counted when ``--since``/``--until`` leave them out (and a log with no readable time is refused), a
column that has gone missing is a data problem rather than concept drift, retrain's "Kept" line speaks of
retraining, and a log of another kind of model, true/false outcomes, outcomes without keys, infinite values and
text in a number column are each answered plainly, never with a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import DataError
from mlengineer.monitoring.prediction_log import PredictionLog
from mlengineer.monitoring.run import monitor_model

from .conftest import run_cli

pytestmark = pytest.mark.slow


def _rows(n: int, seed: int, *, start: int = 0) -> pd.DataFrame:
    """x1 ~ N(0, 1), x2 ~ U(0, 10), x3 ~ N(5, 2), cat in {a, b, c}; y binary from a logistic of x1, x2 and cat."""
    r = np.random.default_rng(seed)
    x1, x2, x3 = r.normal(0, 1, n), r.uniform(0, 10, n), r.normal(5, 2, n)
    cat = r.choice(["a", "b", "c"], n)
    effect = pd.Series(cat).map({"a": -0.5, "b": 0.0, "c": 0.7}).to_numpy()
    y = (r.random(n) < 1 / (1 + np.exp(-(1.5 * x1 + 0.3 * (x2 - 5) + effect)))).astype(int)
    return pd.DataFrame({"id": np.arange(start, start + n), "x1": x1, "x2": x2, "x3": x3, "cat": cat, "y": y})


def _numbers(n: int, seed: int) -> pd.DataFrame:
    """The same inputs, y a number: 2 x1 + x2 + noise."""
    d = _rows(n, seed)
    d["y"] = 2 * d["x1"] + d["x2"] + np.random.default_rng(seed + 1).normal(0, 1, n)
    return d


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A classifier and a regressor of 3,000 rows each (linear: a few seconds)."""
    folder = tmp_path_factory.mktemp("mends2")
    mlengineer.train(_rows(3000, 0), "y", out=folder / "clf", track=False, time_budget=5, families=["linear"],
                     tune=False)
    mlengineer.train(_numbers(3000, 0), "y", out=folder / "reg", track=False, time_budget=5, families=["linear"],
                     tune=False)
    return {"clf": folder / "clf", "reg": folder / "reg"}


def _log(folder: Path, model: Any, rows: pd.DataFrame, *, name: str | None = None,
         version: str = "1") -> Path:
    """Rows logged as a server logs them (numbers as float arrays, the rest as lists), two per request."""
    writer = PredictionLog(folder).start()
    raw = model.predict_raw(rows)
    outputs = {"prediction": raw} if raw.ndim == 1 else {f"proba_{c}": raw[:, i] for i, c in enumerate(model.classes)}
    for i in range(0, len(rows), 2):
        part = rows.iloc[i:i + 2]
        cols = {c: part[c].to_numpy(dtype=float) if part[c].dtype.kind == "f" else part[c].tolist() for c in part}
        writer.append(columns=cols, outputs={k: v[i:i + 2] for k, v in outputs.items()}, n_rows=len(part),
                      request_id=f"v{version}-{i // 2}", endpoint="predict", model=name or model.name, version=version)
    writer.close()
    return folder


def _one_line_error(r: Any, *words: str) -> None:
    rc, err = r.returncode, r.stderr
    assert rc == 2, (rc, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)


# -- 1. --since / --until and rows whose time cannot be read ---------------------------------------------------
@pytest.mark.long
def test_since_and_until_say_how_many_rows_without_a_readable_time_they_left_out(models: dict[str, Path],
                                                                                tmp_path: Path) -> None:
    """Before: rows with an empty _ts were dropped without a word, a _ts of text (a part another tool wrote)
    and a log with no readable time at all ended in tracebacks."""
    model = mlengineer.load(models["clf"])
    part = pd.read_parquet(next(_log(tmp_path / "log", model, _rows(200, 1)[model.feature_names]).glob("*.parquet")))
    part["_ts"] = pd.date_range("2025-01-01", periods=200, freq="h", tz="UTC")
    empty, text, none = part.copy(), part.copy(), part.copy()
    empty.loc[150:170, "_ts"] = pd.NaT
    text["_ts"] = text["_ts"].astype(str)
    text.loc[150:170, "_ts"] = "garbage"
    none["_ts"] = pd.Series(pd.NaT, index=none.index, dtype="datetime64[ns, UTC]")
    for name, frame in (("empty", empty), ("text", text), ("none", none)):
        (tmp_path / name).mkdir()
        frame.to_parquet(tmp_path / name / "part-1.parquet")
    for name in ("empty", "text"):
        r = run_cli("monitor", str(models["clf"]), "--log", str(tmp_path / name), "--since", "2025-01-02", "--json")
        assert r.returncode == 0, r.stderr
        result = json.loads(r.stdout)
        assert result["current"]["rows"] == 200 - 24 - 21
        said = [s for s in result["summary"] if "left out" in s]
        assert len(said) == 1 and "21 rows" in said[0] and "'_ts'" in said[0] and "--since" in said[0], said
    r = run_cli("monitor", str(models["clf"]), "--log", str(tmp_path / "none"), "--since", "2025-01-02", "--until",
                "2025-01-05")
    _one_line_error(r, "--since and --until", "'_ts'", "none of its 200 rows")
    # a table's time column too, in retrain as well as monitor
    new = _rows(300, 2, start=10_000)
    new["ts"] = pd.date_range("2025-01-01", periods=300, freq="h").astype(str)
    new.loc[[40, 200], "ts"] = ["", "not a time"]
    new.to_csv(tmp_path / "new.csv", index=False)
    r = run_cli("retrain", str(models["clf"]), "--data", str(tmp_path / "new.csv"), "--time-column", "ts", "--since",
                "2025-01-01", "--time-budget", "3", "--out", str(tmp_path / "challenger"), "--tracking-uri",
                f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert "2 rows of" in said and "left out by --since: no readable time in 'ts'" in said


# -- 2. a column gone missing is a data problem -----------------------------------------------------------------
def test_a_column_gone_missing_is_a_data_problem_not_concept_drift(models: dict[str, Path]) -> None:
    """Before: x1 empty in every live row read as "the relation between inputs and outcome changed"."""
    model = mlengineer.load(models["clf"])
    # 1,000 rows: on 600 the outcomes fell 0.059 ROC AUC short of the estimate, within the tolerance and chance
    new = _rows(1000, 3)
    new["x1"] = np.nan
    _, result = monitor_model(model, data=new)
    perf = result["performance"]
    assert not perf["concept_drift"] and perf["missing_inputs"] == ["x1"] and result["alarms"]["performance"]
    assert result["summary"][0].startswith("Data problem: missing values in column 'x1': 100% of rows against 0% in "
                                           "training")
    assert not any("relation between inputs and outcome changed" in s for s in result["summary"])
    assert any("not concept drift" in s for s in result["summary"])
    assert result["quality"]["problems"][0].startswith("missing values in column 'x1': 100%")
    assert not any(s.startswith("Inputs changed") for s in result["summary"])
    # a changed world stays concept drift when a fifth of x1 is missing: the rows that have x1 show it too
    flipped = _rows(600, 4)
    flipped["y"] = (flipped["x1"] < 0).astype(int)
    flipped.loc[flipped.index[::5], "x1"] = np.nan
    _, result = monitor_model(model, data=flipped)
    assert result["performance"]["concept_drift"] and not result["performance"]["missing_inputs"]
    assert any("relation between inputs and outcome changed" in s for s in result["summary"])


# -- 3. retrain's "Kept" line ------------------------------------------------------------------------------------
@pytest.mark.long
def test_the_kept_line_says_what_was_kept_why_and_what_to_do(models: dict[str, Path], tmp_path: Path) -> None:
    """Before: it ended with compare's advice, "Prefer the simpler or faster one."."""
    _rows(400, 5, start=20_000).to_csv(tmp_path / "same.csv", index=False)
    r = run_cli("retrain", str(models["clf"]), "--data", str(tmp_path / "same.csv"), "--time-budget", "3", "--out",
                str(tmp_path / "challenger"), "--tracking-uri", f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert "Prefer the simpler" not in said
    assert f"Kept: the champion, {models['clf']}. The challenger scored roc_auc" in said
    assert "a gap likely by chance" in said and f"it is saved at {tmp_path / 'challenger'}" in said
    assert "Next: retrain when more labelled rows have come in" in said
    assert f"serve it: mlengineer serve {tmp_path / 'challenger'}" in said


def test_the_kept_line_when_the_champion_wins_or_clients_could_not_call_the_challenger() -> None:
    from mlengineer.monitoring.retrain import _decide

    def decide(scores: list[float], problems: list[str]) -> str:
        comparison = {"metric": "roc_auc", "scores": scores, "greater_is_better": True, "significant": True,
                      "p_value": 0.003, "rows": 150, "verdict": "compare's own verdict. Prefer the simpler one."}
        result = _decide(comparison, problems, promote=True, champion_ref=None, info=None,
                         challenger_path=Path("ch"), rows={}, tracking_uri=None, champion_path="champ")
        assert result.decision == "kept" and "Prefer" not in result.reason
        return result.reason

    won = decide([0.80, 0.86], [])
    assert won.startswith("the champion, champ. It scored roc_auc 0.86 against the challenger's 0.8 on the 150 "
                          "newest rows, significantly better (p = 0.003)") and "Next: nothing to change" in won
    blocked = decide([0.86, 0.80], ["it needs column 'x', which clients of the current model do not send"])
    assert "could not call it: it needs column 'x'" in blocked and "it is saved at ch" in blocked
    assert blocked.endswith("Next: once the clients send what it needs, serve it: mlengineer serve ch")


# -- 4. messy inputs ---------------------------------------------------------------------------------------------
@pytest.mark.long
def test_a_log_of_another_kind_of_model_is_refused_or_its_rows_left_out(models: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    """Before: a regressor reading a classifier's log failed with KeyError: 'prediction'; a log whose second
    version was a regressor served under the classifier's name failed on NaN probabilities."""
    clf, reg = mlengineer.load(models["clf"]), mlengineer.load(models["reg"])
    rows = _rows(200, 6)[clf.feature_names]
    _log(tmp_path / "clf-log", clf, rows)
    r = run_cli("monitor", str(models["reg"]), "--log", str(tmp_path / "clf-log"), "--log-model", clf.name)
    _one_line_error(r, "clf-log", "no numeric predictions", "classifier")
    _log(tmp_path / "mixed", clf, rows, version="1")
    _log(tmp_path / "mixed", reg, rows, name=clf.name, version="2")
    r = run_cli("monitor", str(models["clf"]), "--log", str(tmp_path / "mixed"), "--by-version", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["current"]["rows"] == 200 and result["current"]["versions"] == ["1"]
    assert any("200 rows of the prediction log" in s and "(version 2)" in s for s in result["summary"])
    r = run_cli("monitor", str(models["clf"]), "--log", str(tmp_path / "clf-log"), "--time-column", "ts")
    _one_line_error(r, "--time-column", "_ts")


@pytest.mark.long
def test_true_false_outcomes_and_outcomes_without_keys(models: dict[str, Path], tmp_path: Path) -> None:
    """Before: true/false outcomes of a 0/1 classifier were refused as no class, a regressor took them as the
    numbers 0 and 1 and cried concept drift; an outcome without a key was "two outcomes for the key nan"; a
    labels file with every outcome empty was silently no labels at all."""
    new = _rows(300, 7, start=30_000)
    new.drop(columns="y").to_csv(tmp_path / "rows.csv", index=False)
    new[["id"]].assign(y=new["y"].astype(bool)).to_csv(tmp_path / "bools.csv", index=False)
    r = run_cli("monitor", str(models["clf"]), "--data", str(tmp_path / "rows.csv"), "--labels",
                str(tmp_path / "bools.csv"), "--key", "id", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["current"]["labelled"] == 300
    r = run_cli("monitor", str(models["reg"]), "--data", str(tmp_path / "rows.csv"), "--labels",
                str(tmp_path / "bools.csv"), "--key", "id")
    _one_line_error(r, "bools.csv", "true/false outcomes", "'y'", "predicts numbers")
    keyless = new[["id", "y"]].astype({"id": float})
    keyless.loc[::3, "id"] = np.nan
    keyless.to_csv(tmp_path / "keyless.csv", index=False)
    r = run_cli("monitor", str(models["clf"]), "--data", str(tmp_path / "rows.csv"), "--labels",
                str(tmp_path / "keyless.csv"), "--key", "id", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["current"]["labelled"] == 200
    assert any("100 outcomes of" in s and "empty 'id'" in s for s in result["summary"])
    new[["id"]].assign(y=np.nan).to_csv(tmp_path / "empty.csv", index=False)
    r = run_cli("monitor", str(models["clf"]), "--data", str(tmp_path / "rows.csv"), "--labels",
                str(tmp_path / "empty.csv"), "--key", "id")
    _one_line_error(r, "empty.csv", "no outcomes", "'y'")


def test_infinite_values_are_unreadable_and_the_json_stays_json(models: dict[str, Path], tmp_path: Path) -> None:
    """Before: half the rows of x2 infinite gave "median inf", NaN and Infinity in --json (which strict readers
    refuse) and a claim of concept drift."""
    new = _rows(300, 8)
    new["x2"] = np.where(np.arange(300) % 2, np.inf, new["x2"])
    new.to_parquet(tmp_path / "inf.parquet")
    r = run_cli("monitor", str(models["clf"]), "--data", str(tmp_path / "inf.parquet"), "--json")
    assert r.returncode == 0, r.stderr

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON")

    result = json.loads(r.stdout, parse_constant=refuse)
    x2 = next(c for c in result["quality"]["columns"] if c["column"] == "x2")
    assert x2["unreadable"] == 150 and x2["mostly_missing"] and not result["performance"]["concept_drift"]
    assert result["summary"][0].startswith("Data problem: missing values in column 'x2': 50% of rows")


def test_retrain_refuses_rows_the_model_cannot_read_before_training(models: dict[str, Path], tmp_path: Path) -> None:
    """Before: the challenger was trained (and its folder left behind), then scoring failed with a line that
    named no file."""
    new = _rows(300, 9)
    new["x1"] = new["x1"].astype(object)
    new.loc[::7, "x1"] = "n/a?"
    new.to_csv(tmp_path / "text.csv", index=False)
    r = run_cli("retrain", str(models["clf"]), "--data", str(tmp_path / "text.csv"), "--time-budget", "3", "--out",
                str(tmp_path / "challenger"), "--tracking-uri", f"sqlite:///{tmp_path / 'mlruns.db'}")
    _one_line_error(r, "text.csv", "'x1'", "'n/a?'")
    assert not (tmp_path / "challenger").exists()


def test_dates_are_said_as_dates_and_outcomes_match_classes_whatever_their_case(churn_model_dir: Path,
                                                                                 churn_csv: Path) -> None:
    """Before: a later signup date read "higher than in training (median 20,228 against 19,433)" (days since
    1970), and the outcome "YES" for the class "yes" was refused."""
    new = pd.read_csv(churn_csv).sample(300, random_state=1).reset_index(drop=True)
    new["signup_date"] = pd.to_datetime(new["signup_date"]) + pd.Timedelta(days=800)
    new["churn"] = new["churn"].str.upper()
    _, result = monitor_model(str(churn_model_dir), data=new)
    assert result["current"]["labelled"] == 300
    said = next(s for s in result["summary"] if "signup_date" in s)
    assert "signup_date is later than in training (median 202" in said and "20,2" not in said, said


def test_a_span_ending_before_it_starts_and_windows_too_small_to_test(models: dict[str, Path]) -> None:
    """Before: --until before --since said the rows "cover" a span the user should overlap (they did), and
    windows too small to test were only a column of the table."""
    new = _rows(200, 11)
    new["ts"] = pd.date_range("2025-01-01", periods=200, freq="h")
    with pytest.raises(DataError, match="--until 2025-01-02 is not after --since 2025-01-05"):
        monitor_model(str(models["clf"]), data=new, time_column="ts", since="2025-01-05", until="2025-01-02")
    _, result = monitor_model(str(models["clf"]), data=new, time_column="ts", window="1d")
    assert [w["tested"] for w in result["windows"]] == [False] * 9
    assert "9 of the 9 windows hold too few rows to test (fewer than 30)" in " ".join(result["summary"])
