"""Data mends: one rule where two copies of it had grown apart, and two data items.

1. The demo numbers copies of rows by the key training's validation groups them by (``data.split``).
2. A database URL that names no driver gets the installed one by one rule, for --db and the tracking store.
3. A true/false target is predicted as booleans (dtype bool), written true/false.
4. The profile of a yes/no column written several ways shows what the cleaning reads: true and false.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.errors import DataError

from .conftest import run_cli, run_clis

# -- 1: one key for copies of a row --------------------------------------------------------------------------


def test_the_demo_keys_copies_by_the_rule_training_groups_them_by() -> None:
    from mlengineer.data.split import copy_groups as split_groups
    from mlengineer.data.split import row_content_keys
    from mlengineer.demo import walkthrough

    assert "hash_pandas_object" not in inspect.getsource(walkthrough)  # no second hashing of rows
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"a": rng.integers(0, 1000, 200), "b": rng.choice(["x", "y", "z"], 200)})
    df = pd.concat([base, base.iloc[:60]], ignore_index=True)  # 60 rows copied once
    keys = walkthrough.copy_groups(df)
    assert keys.name == walkthrough.GROUP and keys.index.equals(df.index)
    assert np.array_equal(keys.to_numpy(), row_content_keys(df))
    codes = split_groups(df)
    assert codes is not None and np.array_equal(codes, pd.factorize(keys.to_numpy())[0])
    # keys of two tables compare: a copy in another frame (another index) has its twin's key
    other = df.iloc[[5, 250]].set_axis([900, 901])
    assert walkthrough.copy_groups(other).isin(set(keys)).all()
    assert not walkthrough.copy_groups(other.assign(a=-1)).isin(set(keys)).any()


def test_the_demo_split_is_the_one_it_drew_before() -> None:
    """The same test rows as the demo's own hashing drew: the survey's copies stay on one side."""
    from mlengineer.demo.walkthrough import demo_numbers, holdout, load_salaries

    df = load_salaries()
    train, test = holdout(df)
    groups = pd.Series(pd.util.hash_pandas_object(df, index=False).to_numpy(), index=df.index)
    unique = groups.unique()
    chosen = unique[np.random.default_rng(0).random(len(unique)) < 0.2]
    assert test.index.equals(df.index[groups.isin(chosen)]) and len(train) + len(test) == len(df)
    n = demo_numbers(df, train, test)
    assert n.test_twins == 0 and n.train_duplicate_share > 0.3


# -- 2: one driver rule ----------------------------------------------------------------------------------------


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_one_driver_rule_for_data_and_the_tracking_store() -> None:
    from mlengineer.data.sql import with_driver
    from mlengineer.tracking.store import engine_uri

    pg = next((d for d, m in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")) if _installed(m)), None)
    my = next((d for d, m in (("mysqldb", "MySQLdb"), ("pymysql", "pymysql")) if _installed(m)), None)
    cases = {
        "postgresql://ann:pw@db:5432/x": f"postgresql+{pg}://ann:pw@db:5432/x" if pg else "postgresql://ann:pw@db:5432/x",
        "mysql://ann@db/x": f"mysql+{my}://ann@db/x" if my else "mysql://ann@db/x",
        "postgresql+psycopg://ann@db/x": "postgresql+psycopg://ann@db/x",  # a driver named: kept
        "sqlite:////tmp/mlruns.db": "sqlite:////tmp/mlruns.db",
        "mssql://ann@db/x": "mssql://ann@db/x",
    }
    for uri, want in cases.items():
        assert with_driver(uri) == want, uri
        assert engine_uri(uri) == want, uri


@pytest.mark.skipif(not (_installed("psycopg") or _installed("psycopg2")), reason="no PostgreSQL driver")
def test_a_postgres_url_without_a_driver_reads_with_the_installed_one() -> None:
    """No server on port 1: the error is the installed driver's failed connection, under the URL as written,
    not a driver SQLAlchemy defaults to and that is missing."""
    from mlengineer.data.sql import read_sql

    with pytest.raises(DataError) as e:
        read_sql("SELECT 1 AS a", "postgresql://ann:s3cret@127.0.0.1:1/x")
    said = str(e.value)
    assert said.startswith("Cannot connect to 'postgresql://ann:***@127.0.0.1:1/x'"), said
    assert "not installed" not in said and "s3cret" not in said


# -- 3: a true/false target predicts booleans -----------------------------------------------------------------


def test_a_true_false_task_decodes_to_booleans_and_others_as_written() -> None:
    from mlengineer.tasks import Task, make_task

    task = Task.from_dict(json.loads(json.dumps(make_task(pd.Series([True, False, True])).to_dict())))
    out = task.decode(np.array([[0.2, 0.8], [0.9, 0.1]]))
    assert out.dtype == bool and out.tolist() == [True, False]
    words = make_task(pd.Series(["yes", "no", "yes"])).decode(np.array([[0.2, 0.8]]))
    assert words.dtype == object and words.tolist() == ["yes"]


@pytest.fixture(scope="module")
def flag_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    import mlengineer

    folder = tmp_path_factory.mktemp("flag")
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    df = pd.DataFrame({"x": x, "z": rng.normal(size=200), "flag": x + rng.normal(scale=0.5, size=200) > 0})
    df.to_csv(folder / "rows.csv", index=False)
    mlengineer.train(df, "flag", time_budget=2, out=folder / "model", tracking_uri=f"sqlite:///{folder / 'r.db'}")
    return folder, df.drop(columns="flag")


@pytest.mark.slow
def test_a_boolean_target_is_predicted_as_booleans(flag_model: tuple[Path, pd.DataFrame]) -> None:
    from mlengineer.bundle.model import load

    folder, rows = flag_model
    model = load(folder / "model")
    assert model.classes == [False, True]
    many, one = model.predict(rows), model.predict(rows.iloc[0].to_dict())
    assert many.dtype == bool and one.dtype == bool and set(many.tolist()) == {False, True}
    assert model.predict_frame(rows.head(70))["prediction"].dtype == bool  # the batch way too
    model.extras["threshold"] = {"value": 0.5}  # a chosen decision threshold answers booleans as well
    assert model.predict(rows).dtype == bool
    assert (model.predict(rows) == many).mean() > 0.9
    # calibrate --positive-class names a boolean class as the cleaning reads it: 'false', 'no', '0' are False
    from mlengineer.cli.evaluation import _positive_index
    from mlengineer.errors import ConfigError

    assert [_positive_index(model, label, True) for label in ("False", "false", "no", "0", "True", "yes")] == \
        [0, 0, 0, 0, 1, 1]
    with pytest.raises(ConfigError, match="'maybe' is not a class of this model; its classes are False, True"):
        _positive_index(model, "maybe", True)


@pytest.mark.slow
def test_a_boolean_target_s_predictions_are_written_true_and_false(flag_model: tuple[Path, pd.DataFrame]) -> None:
    folder, _ = flag_model
    as_json, r = run_clis(*(["predict", str(folder / "model"), str(folder / "rows.csv"), "--out", str(folder / name)]
                            for name in ("p.json", "p.csv")))  # side by side, each its own process
    assert as_json.returncode == 0, as_json.stderr
    written = json.loads((folder / "p.json").read_text())
    assert {type(row["prediction"]) for row in written} == {bool}
    assert r.returncode == 0, r.stderr
    assert set(pd.read_csv(folder / "p.csv", dtype=str)["prediction"]) == {"True", "False"}
    assert pd.read_csv(folder / "p.csv")["prediction"].dtype == bool  # read back as the input was


# -- 4: a yes/no column's profile as the cleaning reads it ----------------------------------------------------


def _yes_no_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    paid = ["yes"] * 30 + ["Yes"] * 50 + ["Y"] * 20 + ["no"] * 40 + ["N"] * 20 + [None] * 10 + ["n/a"] * 10
    df = pd.DataFrame({"paid": paid, "ok": (["yes"] * 120 + ["no"] * 60)[: len(paid)] + ["yes"] * (len(paid) - 180),
                       "x": rng.normal(size=len(paid))})
    df["y"] = df["x"] + (df["paid"].fillna("").str[0].str.lower() == "y") + rng.normal(scale=0.3, size=len(df))
    return df.sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_the_profile_of_a_yes_no_column_says_true_and_false() -> None:
    from mlengineer.data.profile import profile_table

    columns = {c.name: c for c in profile_table(_yes_no_table(), target="y").columns}
    paid = columns["paid"]
    assert paid.role == "boolean" and paid.top_values == [("true", 100), ("false", 60)]
    assert (paid.n_missing, paid.n_unique, paid.top_of) == (20, 2, 160)
    assert dict(paid.spellings) == {"Yes": 50, "no": 40, "yes": 30, "N": 20, "Y": 20}
    assert paid.summary == "true (62%), false (38%); written 5 ways: Yes, no, yes, N, Y"
    assert paid.target_by_group is not None and set(paid.target_by_group.groups) == {"true", "false", "missing"}
    ok = columns["ok"]  # written one way each: its own words, nothing more to tell
    assert ok.top_values[0][0] == "yes" and ok.spellings == [] and ok.summary.startswith("yes (")


def test_the_profile_command_shows_the_read_values(tmp_path: Path) -> None:
    _yes_no_table().to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "profile.html"
    r = run_cli("profile", str(tmp_path / "rows.csv"), "--target", "y", "--out", str(out))
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert "true (62%), false (38%); written 5 ways" in said, r.stdout
    assert "true (62%), false (38%); written 5 ways: Yes, no, yes, N, Y" in out.read_text()
