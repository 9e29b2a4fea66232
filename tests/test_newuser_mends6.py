"""A new user's durations and zoned dates, mended.

Durations (PostgreSQL's interval, DuckDB's INTERVAL, Parquet's duration, pandas' timedelta) are read as seconds:
a number a model can use and a client can send, the same way in training, batch scoring and the Python API.
Before, a duration column was a category with one level per value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.data.load import describe_source, load_table

from .conftest import FIXTURES, read_any, run_cli
from .test_newuser_mends5 import pg  # noqa: F401, F811 (the PostgreSQL server, where one answers)


def _waits(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    minutes = rng.integers(0, 600, n)
    df = pd.DataFrame({"wait": pd.to_timedelta(minutes, unit="m"), "size": rng.normal(size=n)})
    df.loc[::25, "wait"] = pd.NaT
    df["late"] = np.where(minutes + 60 * df["size"] + rng.normal(0, 40, n) > 300, "yes", "no")
    return df


def test_a_parquet_duration_is_read_as_seconds_and_said(tmp_path: Path) -> None:
    _waits().to_parquet(tmp_path / "waits.parquet")
    df = load_table(tmp_path / "waits.parquet")
    assert df["wait"].dtype == np.float64 and df["wait"].iloc[1] == _waits()["wait"].iloc[1].total_seconds()
    assert df["wait"].isna().sum() == 12
    assert "durations as seconds: wait" in describe_source(df.attrs["source"])
    r = run_cli("audit", str(tmp_path / "waits.parquet"), "--target", "late")
    assert r.returncode == 0 and "durations as seconds: wait" in r.stdout, r.stdout + r.stderr


def test_a_duckdb_interval_is_read_as_seconds() -> None:
    df = load_table("", sql="SELECT i, INTERVAL (i) MINUTE AS \"time taken\", CASE WHEN i = 2 THEN NULL "
                            "ELSE INTERVAL '1 month 2 days' END AS m FROM range(4) t(i)")
    assert df["time taken"].tolist() == [0.0, 60.0, 120.0, 180.0]
    assert df["m"].iloc[0] == 32 * 86400.0 and np.isnan(df["m"].iloc[2])  # a month as 30 days
    assert describe_source(df.attrs["source"]) == ["durations as seconds: time taken, m"]


@pytest.mark.postgres
def test_a_postgres_interval_is_read_as_seconds(pg: str) -> None:  # noqa: F811
    df = load_table("", sql="SELECT i, CASE WHEN i = 3 THEN NULL ELSE (i || ' hours 30 seconds')::interval END "
                            "AS waited FROM generate_series(1, 5) AS i", db=pg)
    assert df["waited"].iloc[0] == 3630.0 and np.isnan(df["waited"].iloc[2])
    assert df.attrs["source"]["seconds"] == ["waited"]
    # a year and a month counted as DuckDB and Spark count them (365.25 and 30 days), not the driver's 365;
    # a query with a trailing semicolon and a CTE is wrapped all the same
    df = load_table("", sql="WITH t AS (SELECT INTERVAL '1 year 1 month' AS span, 'x' AS what) SELECT * FROM t;",
                    db=pg)
    assert df["span"].iloc[0] == (365.25 + 30) * 86400 and df["what"].iloc[0] == "x"
    assert df.attrs["source"]["seconds"] == ["span"]


@pytest.mark.slow
def test_a_model_trained_on_durations_scores_them_the_same_way_everywhere(tmp_path: Path) -> None:
    waits = _waits()
    model = mlengineer.train(waits, "late", time_budget=3, out=tmp_path / "model", track=False)
    assert model.schema["wait"].role.value == "numeric"
    as_seconds = waits.assign(wait=waits["wait"].dt.total_seconds())
    expected = model.predict_proba(as_seconds.drop(columns=["late"]))
    # the API given timedeltas, one Timedelta in a record, and batch scoring of a Parquet file all read seconds
    np.testing.assert_allclose(model.predict_proba(waits.drop(columns=["late"])), expected)
    record = {"wait": waits["wait"].iloc[1], "size": float(waits["size"].iloc[1])}
    one = {"rtol": 1e-5}  # one record or a few take their own paths: the large batch's answer to about 1e-8
    np.testing.assert_allclose(np.asarray(model.predict_proba(record)).reshape(1, -1), np.asarray(expected)[1:2], **one)
    for unit in ("ns", "us", "s"):  # numpy's durations (whole numbers of their unit to numpy) as seconds too
        record["wait"] = waits["wait"].to_numpy().astype(f"timedelta64[{unit}]")[1]
        np.testing.assert_allclose(np.asarray(model.predict_proba(record)).reshape(1, -1), np.asarray(expected)[1:2],
                                   **one)
        as_array = waits.drop(columns=["late"]).assign(wait=waits["wait"].to_numpy().astype(f"timedelta64[{unit}]"))
        np.testing.assert_allclose(model.predict_proba(as_array.head(40)), expected.head(40), **one)  # small batch
    waits.drop(columns=["late"]).to_parquet(tmp_path / "new.parquet")
    r = run_cli("predict", str(tmp_path / "model"), str(tmp_path / "new.parquet"), "--out", str(tmp_path / "out.csv"))
    assert r.returncode == 0, r.stderr
    scored = read_any(tmp_path / "out.csv")
    assert (scored["prediction"].to_numpy() == model.predict(as_seconds.drop(columns=["late"]))).all()


def test_a_zoned_date_column_handed_over_directly_is_compared_as_utc() -> None:
    from mlengineer.data.relation import column_as_numbers

    zoned = pd.Series(pd.date_range("2024-01-01", periods=3, freq="D", tz="Europe/Berlin"))
    days = column_as_numbers(zoned)  # it raised: a zoned date less a zone-less one
    assert days is not None and days[0] == pd.Timestamp("2023-12-31 23:00").value / 86400e9


@pytest.mark.slow
def test_the_key_that_joins_outcomes_is_not_called_a_column_a_server_would_refuse(tmp_path: Path) -> None:
    from mlengineer.monitoring.run import monitor_model

    rng = np.random.default_rng(5)
    rows = pd.DataFrame({"x": rng.normal(size=400), "size": rng.choice(["s", "m", "l"], 400)})
    rows["y"] = np.where(rows["x"] + rng.normal(0, 0.5, 400) > 0, "yes", "no")
    model = mlengineer.train(rows, "y", time_budget=2, families=["linear"], track=False)
    new = rows.drop(columns=["y"]).assign(ticket=[f"t{i}" for i in range(400)], note="x")
    outcomes = pd.DataFrame({"ticket": new["ticket"], "y": rows["y"]})
    _, result = monitor_model(model, data=new, labels=outcomes, key="ticket")
    assert result["current"]["labelled"] == 400
    assert result["quality"]["unknown_columns"] == ["note"]  # the key joins outcomes to rows; 'note' is unknown
    assert not any("'ticket'" in p for p in result["quality"]["problems"])


@pytest.mark.slow
def test_a_version_mlflow_loaded_by_its_alias_still_loads_and_serves(churn_model_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own loader (3.0 to 3.17) writes 'registered_model_meta' into the stored version's folder (the
    artifacts being local): that version was then refused as changed after it was saved, by load, serve and the
    swap check. MLflow 3.18 no longer writes it; a folder an older MLflow touched must still load."""
    import mlflow

    from mlengineer.tracking.registry import promote, register, resolve

    monkeypatch.chdir(tmp_path)  # the store's artifacts folder lies beside the store
    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    promote("churn", "1", tracking_uri=uri)
    mlflow.set_tracking_uri(uri)
    mlflow.pyfunc.load_model("models:/churn@champion")
    _, path = resolve("models:/churn@champion", tracking_uri=uri)
    meta = path / "registered_model_meta"
    if not meta.is_file():  # MLflow 3.0-3.17 writes it on loading; from 3.18 it does not: write what they wrote
        meta.write_text("model_name: churn\nmodel_version: '1'\n")
    assert meta.is_file()
    model = mlengineer.load("models:/churn@champion", tracking_uri=uri)
    assert len(model.predict(pd.read_csv(FIXTURES / "churn_800.csv").head(3))) == 3
    (path / "notes.txt").write_text("a file of the user's own")
    with pytest.raises(mlengineer.ModelError, match=r"notes.txt is not in its manifest, a file added after it was "
                                                    r"saved: move it out of the folder"):
        mlengineer.load("models:/churn@champion", tracking_uri=uri)


def test_the_profile_s_top_values_are_shares_of_the_filled_rows() -> None:
    """A column of 30 stores: each about 3% of the rows, not 11% (the shares were of the ten commonest alone)."""
    from mlengineer.data.profile import profile_table

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"store": rng.choice([f"s{i}" for i in range(30)], 1000), "y": rng.normal(size=1000),
                       "kind": rng.choice(["a", "b", None], 1000)})
    columns = {c.name: c for c in profile_table(df, target="y").columns}
    first = df["store"].value_counts().index[0]
    assert columns["store"].summary.startswith(f"{first} ({df['store'].value_counts(normalize=True).iloc[0]:.0%})")
    assert columns["store"].summary.split(",")[0].endswith("(4%)")
    placeholders = profile_table(pd.DataFrame({"ok": ["n/a"] * 500 + ["yes"] * 300 + ["no"] * 200,
                                               "y": rng.normal(size=1000)}), target="y").columns
    assert next(c for c in placeholders if c.name == "ok").summary == "yes (60%), no (40%)"  # 'n/a': missing
    shares = df["kind"].value_counts(normalize=True)  # of the filled rows, the empty ones aside
    assert columns["kind"].summary == f"{shares.index[0]} ({shares.iloc[0]:.0%}), {shares.index[1]} ({shares.iloc[1]:.0%})"


@pytest.mark.slow
def test_predict_refuses_an_out_inside_the_model_bundle_on_both_engines(churn_model_dir: Path, churn_csv: Path,
                                                                        tmp_path: Path) -> None:
    import shutil

    bundle = tmp_path / "churn-model"
    shutil.copytree(churn_model_dir, bundle)
    out = bundle / "p.csv"
    for engine in ((), ("--engine", "spark")):
        r = run_cli("predict", str(bundle), str(churn_csv), "--out", str(out), *engine)
        assert r.returncode == 2 and r.stderr.strip().endswith(
            f"--out {str(out)!r} lies inside the model bundle {str(bundle)!r}, which would then no longer load (a "
            "bundle holds only the files it was saved with); write the predictions elsewhere."), r.stderr
    assert not out.exists()
    mlengineer.load(bundle)  # it still loads


@pytest.mark.slow
def test_nested_records_are_read_as_the_nested_json_training_read_them(tmp_path: Path) -> None:
    """A model trained on a JSON file of nested objects (its columns 'user.age', 'user.plan') takes records nested
    the same way from Python and over HTTP (they were refused: "Column 'user.age' is missing")."""
    import json

    from mlengineer.serving.protocols import columns_from_records

    rng = np.random.default_rng(6)
    rows = [{"user": {"age": int(a), "plan": str(p)}, "spent": float(s), "converted": "yes" if a + 30 * s > 60 else "no"}
            for a, p, s in zip(rng.integers(18, 80, 300), rng.choice(["a", "b"], 300), rng.random(300), strict=True)]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    model = mlengineer.train(str(tmp_path / "rows.json"), "converted", time_budget=2, families=["linear"],
                             track=False)
    assert {"user.age", "user.plan"} <= set(model.feature_names)
    nested = [{k: v for k, v in r.items() if k != "converted"} for r in rows[:5]]
    flat = [{"user.age": r["user"]["age"], "user.plan": r["user"]["plan"], "spent": r["spent"]} for r in nested]
    np.testing.assert_allclose(np.asarray(model.predict_proba(nested)), np.asarray(model.predict_proba(flat)))
    np.testing.assert_allclose(np.asarray(model.predict_raw(nested[0])), np.asarray(model.predict_raw(flat[0])))
    assert model.nested == {"user"}
    columns, n = columns_from_records([dict(r) for r in nested], nested=model.nested)
    assert n == 5 and columns["user.age"] == [r["user.age"] for r in flat]
    columns, _ = columns_from_records([dict(r) for r in nested])  # a model without nested columns: left as sent
    assert columns["user"] == [r["user"] for r in nested]


def test_config_and_option_mistakes_are_said_in_the_config_s_words(tmp_path: Path, churn_csv: Path) -> None:
    from mlengineer.training.config import TrainConfig

    with pytest.raises(mlengineer.ConfigError, match=r"^drop= takes a list: \[a, b\] \(or one '- a' per "
                                                     r"line in YAML\); got 3\.$"):
        TrainConfig.build(target="y", drop=3)  # one name is a list of one (test_python_face); a number is no list
    (tmp_path / "c.yaml").write_text("drop: 3\n")
    r = run_cli("train", str(churn_csv), "--target", "churn", "--config", str(tmp_path / "c.yaml"), "--no-track")
    assert r.returncode == 2 and f"'drop:' in {tmp_path / 'c.yaml'} takes a list" in r.stderr and "Input should" not in r.stderr
    df = pd.read_csv(churn_csv)
    with pytest.raises(mlengineer.DataError, match=r"^The time_column='plan' holds no dates or times \(e\.g\. "
                                                   r"'(basic|plus|premium|pro)'\) to order the rows by"):
        mlengineer.train(df, "churn", time_column="plan", time_budget=2, track=False)
    with pytest.raises(mlengineer.ConfigError, match=r"^target_transform='log' is for a regression target, and "
                                                     r"'churn' is binary: leave target_transform= out\.$"):
        mlengineer.train(df, "churn", target_transform="log", time_budget=2, track=False)


@pytest.mark.long
@pytest.mark.slow
def test_verify_takes_a_registered_version_and_a_missing_version_lists_those_there_are(churn_model_dir: Path,
                                                                                      tmp_path: Path) -> None:
    from mlengineer.tracking.registry import register

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    ok = run_cli("verify", "models:/churn/1", "--tracking-uri", uri, cwd=tmp_path)
    assert ok.returncode == 0 and "every file matches its manifest" in ok.stdout, ok.stderr
    r = run_cli("serve", "models:/churn/7", "--tracking-uri", uri, "--port", "1", cwd=tmp_path)
    assert r.returncode == 2 and "Model 'churn' has no version 7; its versions are 1." in r.stderr, r.stderr


def test_an_inherited_threshold_rule_that_cannot_be_met_removes_the_threshold() -> None:
    """calibrate without a rule applies the threshold's own rule again; where the new rows cannot meet it, the
    threshold goes, and why is said (the user passed no rule to be refused)."""
    from types import SimpleNamespace

    from mlengineer.evaluation.uncertainty import _rethreshold

    old = {"value": 0.7, "rule": "precision >= 90%", "args": {"target_precision": 0.9}}
    model = SimpleNamespace(extras={"threshold": old}, metadata={"threshold": old})
    summary: dict = {}
    y, p = np.array([0, 0, 1, 0, 0, 1]), np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2])  # 90% precision: nowhere
    _rethreshold(model, summary, {}, y, p, None)
    assert "threshold" not in model.extras and "threshold" not in model.metadata
    assert summary["threshold_removed"] is old and "its rule (precision >= 90%) cannot be met" in summary["threshold_why"]
    with pytest.raises(mlengineer.ConfigError, match="No threshold reaches a precision of 90%"):
        _rethreshold(model, {}, {"target_precision": 0.9}, y, p, None)  # asked for: refused as before


def test_a_group_column_without_any_value_is_refused() -> None:
    from mlengineer.data.split import make_holdout

    with pytest.raises(mlengineer.DataError, match=r"holds no value in any row: name a column of group keys"):
        make_holdout(np.arange(100) % 2, groups=np.array([None] * 100, dtype=object), stratify=True)
