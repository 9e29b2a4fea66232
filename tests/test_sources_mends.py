"""Mends of the "sources" report: an object learnt from nested JSON read the same from every door, as an object,
its JSON text or null (1, 2); times of day read as seconds since midnight, never stamped with today's date (3, 4);
durations always numbers, a pandas timedelta turned into seconds (5); a typed column's reason says its type (12)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.data.clean import conform_values
from mlengineer.data.load import as_read, describe_source, load_table
from mlengineer.data.schema import ColumnRole, infer_schema, parse_datetime
from mlengineer.errors import DataError, SchemaError
from mlengineer.serving.batch import extra_columns_note, predict_to_file

from .conftest import run_cli
from .test_serve_basic import running_server

pytestmark = pytest.mark.slow

OBJ = {"a": 7.5, "b": "x"}


def _rows(n: int = 300) -> list[dict[str, Any]]:
    """Rows whose class rests on a nested object's key and on a time of day written as text."""
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(n):
        a, minutes = round(float(rng.uniform(0, 10)), 2), int(rng.integers(0, 600))
        score = a + minutes / 60 + rng.normal(0, 1.5)
        rows.append({"meta": {"a": a, "b": str(rng.choice(["x", "y", "z"]))}, "n": round(float(rng.random()), 3),
                     "tod": f"{8 + minutes // 60:02d}:{minutes % 60:02d}:00", "y": "hi" if score > 10 else "lo"})
    return rows


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("nested")
    rows = _rows()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = mlengineer.train(str(folder / "train.jsonl"), "y", time_budget=2, families=["linear"], track=False,
                             out=folder / "nested-model")
    assert {"meta.a", "meta.b", "tod", "n"} == set(model.feature_names)
    return model, folder, [{k: v for k, v in r.items() if k != "y"} for r in rows]


def _flat(r: dict[str, Any]) -> dict[str, Any]:
    meta = r["meta"] or {}
    return {"meta.a": meta.get("a"), "meta.b": meta.get("b"), "n": r["n"], "tod": r["tod"]}


# -- 1. an object as its JSON text -------------------------------------------------------------------------------

def test_an_object_as_json_text_is_read_as_the_object_from_a_file_and_python(nested: Any, tmp_path: Path) -> None:
    model, _, rows = nested
    new = rows[:70]  # more rows than the small-batch path takes, and a few through it
    (tmp_path / "new.jsonl").write_text("".join(json.dumps(r) + "\n" for r in new))
    as_text = pd.DataFrame([{**r, "meta": json.dumps(r["meta"])} for r in new])
    as_text.to_csv(tmp_path / "new.csv", index=False)  # what pandas' to_csv or psql's \copy writes of an object
    got = {}
    for name in ("new.jsonl", "new.csv"):
        predict_to_file(model, tmp_path / name, tmp_path / f"{name}.out.csv")
        got[name] = pd.read_csv(tmp_path / f"{name}.out.csv")["proba_hi"].to_numpy()
    reference = np.asarray(model.predict_proba([_flat(r) for r in new])["hi"])
    np.testing.assert_allclose(got["new.jsonl"], reference, rtol=1e-6)
    # predict said of 'meta' that it "is not one the model knows" and left it out, the column it learnt from
    assert extra_columns_note(model, list(as_text.columns)) is None
    np.testing.assert_allclose(got["new.csv"], reference, rtol=1e-6)  # before: every key silently missing
    nulls = np.asarray(model.predict_proba([{**_flat(r), "meta.a": None, "meta.b": None} for r in new])["hi"])
    assert np.abs(nulls - reference).max() > 0.1  # the keys matter: reading them as missing would show
    np.testing.assert_allclose(model.predict_proba(as_text)["hi"], reference, rtol=1e-6)
    np.testing.assert_allclose(model.predict_proba(as_text.head(5))["hi"], reference[:5], rtol=1e-6)
    text_records = as_text.head(5).to_dict("records")
    np.testing.assert_allclose(model.predict_proba(text_records)["hi"], reference[:5], rtol=1e-6)
    np.testing.assert_allclose(model.predict_raw(text_records[0])[0, 0], reference[0], rtol=1e-6)
    mixed = pd.DataFrame({"meta": [new[0]["meta"], json.dumps(new[1]["meta"])], "n": [new[0]["n"], new[1]["n"]],
                          "tod": [new[0]["tod"], new[1]["tod"]]})
    np.testing.assert_allclose(model.predict_proba(mixed)["hi"], reference[:2], rtol=1e-6)


def test_a_column_named_like_a_nested_one_is_left_alone_where_the_keys_come_flat() -> None:
    """A table whose names merely hold dots ('price.usd') beside a 'price' of its own: that 'price' is no object."""
    from mlengineer.data.nested import flat_frame, flat_nested, nested_prefixes

    nested = nested_prefixes(["price.usd", "price.eur", "n"])
    frame = pd.DataFrame({"price.usd": [1.0], "price.eur": [0.9], "price": [12.5]})
    assert flat_frame(frame, nested) is frame
    assert flat_nested({"price.usd": 1.0, "price.eur": 0.9, "price": 12.5}, nested)["price"] == 12.5
    assert flat_nested({"price": '{"usd": 1.0}'}, nested) == {"price.usd": 1.0, "price.eur": None}


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", 5])
def test_text_under_an_object_s_name_that_is_no_object_is_refused_naming_the_column(nested: Any, bad: Any) -> None:
    model = nested[0]
    for data in (pd.DataFrame({"meta": [bad], "n": [0.1], "tod": ["08:00:00"]}),
                 [{"meta": bad, "n": 0.1, "tod": "08:00:00"}] * 2):
        with pytest.raises(SchemaError) as e:
            model.predict_proba(data)
        assert "'meta'" in str(e.value) and "not a JSON object" in str(e.value) and "\n" not in str(e.value)
        assert "not one the model knows" not in str(e.value)


def test_the_cli_refuses_such_text_in_one_line(nested: Any, tmp_path: Path) -> None:
    _, folder, _ = nested
    (tmp_path / "bad.csv").write_text('meta,n,tod\n"{""a"": 1, ""b"": ""x""}",0.2,08:00:00\noops,0.1,08:00:00\n')
    r = run_cli("predict", str(folder / "nested-model"), str(tmp_path / "bad.csv"), "--out", str(tmp_path / "p.csv"))
    assert r.returncode == 2, r.stdout + r.stderr
    error = r.stderr.strip()
    assert len(error.splitlines()) == 1 and "'meta'" in error and "'oops' is not a JSON object" in error, error
    assert not (tmp_path / "p.csv").exists()


# -- 2. a null object, and objects at every door of the server ---------------------------------------------------

def test_a_null_object_is_every_key_missing_in_python_and_a_file(nested: Any, tmp_path: Path) -> None:
    model = nested[0]
    null = {"meta": None, "n": 0.5, "tod": "09:00:00"}
    full = {"meta": OBJ, "n": 0.2, "tod": "10:00:00"}
    expected = np.asarray(model.predict_proba([_flat(null), _flat(full)])["hi"])
    np.testing.assert_allclose(model.predict_proba(null)["hi"], expected[:1])  # was: "'meta.a' is missing"
    np.testing.assert_allclose(model.predict_proba([null, full])["hi"], expected)
    np.testing.assert_allclose(model.predict_proba(pd.DataFrame([null, full]))["hi"], expected)
    np.testing.assert_allclose(model.predict_proba(pd.DataFrame([null, {**full, "meta": ""}]))["hi"],
                               model.predict_proba([_flat(null), {**_flat(full), "meta.a": None, "meta.b": None}])["hi"])
    (tmp_path / "null.jsonl").write_text(json.dumps(null) + "\n")
    predict_to_file(model, tmp_path / "null.jsonl", tmp_path / "out.csv")
    np.testing.assert_allclose(pd.read_csv(tmp_path / "out.csv")["proba_hi"], expected[:1])


def test_every_server_door_reads_objects_their_text_and_null_alike(nested: Any, tmp_path: Path) -> None:
    model, folder, _ = nested
    null = {"meta": None, "n": 0.5, "tod": "08:30:00"}
    full = {"meta": OBJ, "n": 0.2, "tod": 30600}  # a time of day as text or as its seconds since midnight
    expected = np.asarray(model.predict_proba([_flat(null), {**_flat(full), "tod": "08:30:00"}])["hi"])
    np.testing.assert_allclose(
        model.predict_proba(pd.DataFrame({"meta": [None, OBJ], "n": [0.5, 0.2], "tod": [dt.time(8, 30)] * 2}))["hi"],
        expected)
    split = {"columns": ["meta", "n", "tod"], "data": [[None, 0.5, "08:30:00"], [OBJ, 0.2, 30600]]}
    bodies = {
        "/predict": {"records": [null, full]},
        "/invocations split": {"dataframe_split": split},
        "/invocations records": {"dataframe_records": [null, full]},
        "/invocations columns": {"inputs": {"meta": [None, OBJ], "n": [0.5, 0.2], "tod": ["08:30:00", 30600]}},
        "/invocations text": {"dataframe_split": {**split, "data": [[None, 0.5, "8:30"],
                                                                    [json.dumps(OBJ), 0.2, "8:30 am"]]}},
    }
    oip = {"inputs": [{"name": "meta", "shape": [2], "datatype": "BYTES", "data": [None, json.dumps(OBJ)]},
                      {"name": "n", "shape": [2], "datatype": "FP64", "data": [0.5, 0.2]},
                      {"name": "tod", "shape": [2], "datatype": "FP64", "data": [30600.0, 30600.0]}]}
    csv = f'meta,n,tod\n,0.5,08:30:00\n"{json.dumps(OBJ).replace(chr(34), chr(34) * 2)}",0.2,30600\n'
    with running_server(folder / "nested-model", cwd=tmp_path) as srv:
        for door, body in bodies.items():
            r = httpx.post(f"{srv.url}{door.split()[0]}", json=body, timeout=30)
            assert r.status_code == 200, (door, r.text)
            answers = r.json()["predictions"]
            got = [a["probabilities"]["hi"] if "probabilities" in a else a["proba_hi"] for a in answers]
            np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=door)
        r = httpx.post(f"{srv.url}/invocations", content=csv, headers={"content-type": "text/csv"}, timeout=30)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose([a["proba_hi"] for a in r.json()["predictions"]], expected, rtol=1e-6)
        r = httpx.post(f"{srv.url}/v2/models/nested-model/infer", json=oip, timeout=30)
        assert r.status_code == 200, r.text
        probs = {o["name"]: o for o in r.json()["outputs"]}["probabilities"]
        np.testing.assert_allclose(np.reshape(probs["data"], probs["shape"])[:, 0], expected, rtol=1e-6)
        r = httpx.post(f"{srv.url}/invocations", json={"dataframe_split": {**split, "data": [["abc", 0.5, 1.0]]}})
        assert r.status_code == 422 and "'meta'" in r.json()["error"] and "not a JSON object" in r.json()["error"]
        assert "not one the model knows" not in r.json()["error"]  # was said of the column the model learnt from
        r = httpx.post(f"{srv.url}/predict", json={"records": [{**full, "tod": "half past eight"}]})
        assert r.status_code == 422 and "'tod'" in r.json()["error"] and "time of day" in r.json()["error"]


# -- 3, 4. times of day ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def times(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    duckdb = pytest.importorskip("duckdb")
    folder = tmp_path_factory.mktemp("times")
    con = duckdb.connect(str(folder / "tt.duckdb"))
    con.execute("CREATE TABLE r AS SELECT (TIME '08:00:00' + to_minutes((i % 300)::BIGINT)) AS tod, "
                "(i % 300) / 60.0 + (i % 7) / 7.0 AS y FROM range(300) t(i)")
    con.execute(f"COPY r TO '{folder / 'tt.csv'}' (HEADER)")
    con.close()
    return load_table("", sql="SELECT * FROM r", db=str(folder / "tt.duckdb")), folder


def test_a_time_column_is_seconds_since_midnight_and_never_today(times: tuple[pd.DataFrame, Path]) -> None:
    df, folder = times
    assert isinstance(df["tod"].iloc[0], dt.time)
    assert "times of day as seconds since midnight: tod" in describe_source(df.attrs["source"])
    model = mlengineer.train(df, "y", time_budget=2, families=["linear"], track=False)
    col = model.schema["tod"]
    assert col.role == ColumnRole.numeric and "seconds since midnight" in col.reason  # was: an identifier
    assert (col.min, col.max) == (28800.0, 46740.0)  # no date anywhere (was: today's date before each time)
    text = infer_schema(load_table(folder / "tt.csv"), "y")["tod"]
    assert text.role == ColumnRole.numeric and "08:00:00" in text.reason and (text.min, text.max) == (col.min, col.max)
    ways = [{"tod": "08:30:00"}, {"tod": "8:30"}, {"tod": 30600}, {"tod": dt.time(8, 30)}, {"tod": "8:30 am"},
            {"tod": "30600"}]
    answers = model.predict(ways)
    assert np.ptp(answers) == 0 and model.predict(ways[0])[0] == answers[0]
    assert model.predict(pd.DataFrame({"tod": [dt.time(8, 30), "08:30:00"]})).tolist() == [answers[0]] * 2
    assert model.predict([{"tod": "12:30"}])[0] != answers[0]
    with pytest.raises(SchemaError, match=r"'tod' must hold times of day \(08:30:00\) or seconds.*'2026-01-01"):
        model.predict([{"tod": "2026-01-01 08:30"}])


def test_the_roles_a_user_gives_a_time_column(times: tuple[pd.DataFrame, Path]) -> None:
    df, folder = times
    for frame, shown in ((df, "08:00:00"), (load_table(folder / "tt.csv"), "'08:00:00'")):
        with pytest.raises(DataError) as e:
            infer_schema(frame, "y", {"tod": "datetime"})
        assert f"such as {shown})" in str(e.value) and "datetime.time" not in str(e.value)
        assert "role numeric" in str(e.value)
        col = infer_schema(frame, "y", {"tod": "numeric"})["tod"]
        assert col.role == ColumnRole.numeric and "seconds since midnight" in col.reason and col.max == 46740.0
    categories = infer_schema(df, "y", {"tod": "categorical"})["tod"]
    assert categories.categories is not None and "08:00:00" in categories.categories


def test_a_date_column_never_reads_a_time_alone_as_today() -> None:
    parsed = parse_datetime(pd.Series(["08:30:00", "8:30 pm", "2024-01-31 08:30", None], dtype=object), "mixed")
    assert parsed.isna().tolist() == [True, True, False, True] and parsed[2] == pd.Timestamp("2024-01-31 08:30")
    for fmt in (None, "mixed", "ISO8601", "%Y-%m-%d"):
        with pytest.raises(SchemaError) as e:
            conform_values(np.array([dt.time(8, 0)], dtype=object), "datetime", fmt, name="when", strict=True)
        assert "got 08:00:00 (a time of day alone" in str(e.value) and "datetime.time" not in str(e.value)
        with pytest.raises(SchemaError, match="got '08:30:00'"):
            conform_values(np.array(["08:30:00"], dtype=object), "datetime", fmt, name="when", strict=True)


# -- 5 and 12 from PostgreSQL: durations, times, dates, decimals, jsonb ------------------------------------------

@pytest.fixture(scope="module")
def pg_table() -> Iterator[tuple[str, str]]:
    from .test_sources_postgres import URL, connect

    engine, con = connect()
    name = f"kinds_{uuid.uuid4().hex[:8]}"
    with con:
        con.exec_driver_sql(
            f"CREATE TABLE {name} AS SELECT g AS id, (mod(g, 9) || ' days')::interval AS wait, "
            "TIME '08:00' + (mod(g * 7, 600) || ' minutes')::interval AS tod, DATE '2020-01-01' + mod(g, 300) AS day, "
            "(mod(g, 50) * 1.25)::numeric(8, 2) AS fee, jsonb_build_object('a', mod(g, 5), 'b', 'k' || mod(g, 3)) AS js, "
            "CASE WHEN mod(g, 9) + mod(g, 5) + mod(g * 7, 600) / 100.0 > 8 THEN 'hi' ELSE 'lo' END AS y "
            "FROM generate_series(1, 400) AS g")
        con.commit()
    yield URL, name
    with engine.connect() as con:
        con.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        con.commit()
    engine.dispose()


@pytest.mark.postgres
def test_postgres_kinds_train_and_predict_alike_from_sql_python_and_csv(pg_table: tuple[str, str],
                                                                         tmp_path: Path) -> None:
    url, name = pg_table
    query = f"SELECT * FROM {name} ORDER BY id"
    df = load_table("", sql=query, db=url)
    assert {"durations as seconds: wait", "times of day as seconds since midnight: tod"} <= set(
        describe_source(df.attrs["source"]))
    model = mlengineer.train(df, "y", time_budget=2, families=["linear"], track=False)
    reasons = {c.name: (c.role.value, c.reason) for c in model.schema.columns}
    assert reasons["wait"] == ("numeric", "durations, read as seconds")  # was: "9 distinct whole numbers: a code"
    assert reasons["tod"][0] == "numeric" and "seconds since midnight" in reasons["tod"][1]
    assert reasons["day"] == ("datetime", "dates (a date type)")  # was: "dates written as text (%Y-%m-%d)"
    assert reasons["fee"][0] == "numeric" and "text" not in reasons["fee"][1]
    assert {"js.a", "js.b"} <= set(model.feature_names)
    reference = np.asarray(model.predict_proba(df)["hi"])
    # pandas' own reading: timedelta durations, datetime.time, date objects and dicts (the Python API's door)
    sa = pytest.importorskip("sqlalchemy")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        pdf = pd.read_sql(query, engine)
    finally:
        engine.dispose()
    assert pd.api.types.is_timedelta64_dtype(pdf["wait"]) and isinstance(pdf["js"].iloc[0], dict)
    np.testing.assert_allclose(model.predict_proba(pdf)["hi"], reference, rtol=1e-6)
    np.testing.assert_allclose(model.predict_proba(pdf.head(3))["hi"], reference[:3], rtol=1e-6)
    assert infer_schema(as_read(pdf.drop(columns="js")), "y")["wait"].role == ColumnRole.numeric
    # a CSV export: the object as its JSON text, the time as text, the duration in seconds
    export = pdf.assign(js=pdf["js"].map(json.dumps), tod=pdf["tod"].astype(str),
                        wait=pdf["wait"].dt.total_seconds())
    export.to_csv(tmp_path / "export.csv", index=False)
    predict_to_file(model, tmp_path / "export.csv", tmp_path / "p.csv")
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv")["proba_hi"], reference, rtol=1e-6)


def test_a_timedelta_reaching_a_category_is_its_seconds() -> None:
    """A model whose duration column became categories (as bundles trained before did) reads a pandas timedelta
    as the seconds its categories hold."""
    values = np.array([pd.Timedelta(days=1), dt.timedelta(seconds=90), None], dtype=object)
    assert conform_values(values, "categorical").tolist() == ["86400", "90", None]
    assert conform_values(pd.to_timedelta(["1 day", None]).to_numpy(), "categorical").tolist() == ["86400", None]


def test_typed_parquet_columns_say_what_they_hold(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    n = 200
    table = pa.table({
        "price": pa.array([Decimal(f"{i}.25") for i in range(n)], pa.decimal128(8, 2)),
        "day": pa.array([dt.date(2021, 1, 1) + dt.timedelta(days=i) for i in range(n)], pa.date32()),
        "at": pa.array([dt.time(8, i % 60, i % 7) for i in range(n)], pa.time64("us")),
        "took": pa.array([dt.timedelta(minutes=i % 4) for i in range(n)], pa.duration("s")),
        "y": pa.array(np.arange(n, dtype=float)),
    })
    pq.write_table(table, tmp_path / "typed.parquet")
    schema = infer_schema(load_table(tmp_path / "typed.parquet"), "y")
    assert (schema["price"].role, schema["price"].reason) == (ColumnRole.numeric, "decimal numbers (a decimal type)")
    assert (schema["day"].role, schema["day"].reason) == (ColumnRole.datetime, "dates (a date type)")
    assert schema["at"].role == ColumnRole.numeric and schema["at"].reason.startswith("times of day (a time type)")
    assert (schema["took"].role, schema["took"].reason) == (ColumnRole.numeric, "durations, read as seconds")
    assert not any("written as text" in c.reason for c in schema.columns)
