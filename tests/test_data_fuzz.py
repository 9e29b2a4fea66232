"""Fuzzing the readers and the audit: malformed CSV, wrong encodings, ragged rows, binary junk, all-null
columns, one row, ten thousand columns. Whatever comes in ends in a table or in one of mlengineer's own clear
errors, never in another exception."""

from __future__ import annotations

import gzip
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlengineer.data.clean import fit_cleaning_plan
from mlengineer.data.load import load_table
from mlengineer.data.profile import profile_table
from mlengineer.data.quality import audit
from mlengineer.data.schema import infer_schema
from mlengineer.errors import MLEngineerError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
SUFFIXES = [".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet", ".xlsx", ".csv.gz", ".csv.zst", ""]
KINDS = ["binary", "multiclass", "regression", None]


def whole_stage(df: pd.DataFrame, target: str | None, kind: str | None, *, profile: bool = True) -> None:
    """Everything the data stage does with a table; only mlengineer's errors may escape."""
    try:
        schema = infer_schema(df, target)
        findings = audit(df, schema, task_kind=kind)
        if profile:
            profile_table(df, target=target, schema=schema, task_kind=kind)
        plan = fit_cleaning_plan(df, schema, findings=findings)
        plan.apply(df, training=True)
        features = [c for c in df.columns if c != target]
        if features:
            plan.apply(df[features].head(3), strict=False)
    except MLEngineerError as e:
        assert str(e) and "\n" not in str(e)


def read(path: Path) -> pd.DataFrame | None:
    try:
        return load_table(path)
    except MLEngineerError as e:
        assert str(path.name) in str(e) or "Folder" in str(e), str(e)
        assert "\n" not in str(e)
        return None


@FUZZ
@given(data=st.binary(min_size=1, max_size=3000), suffix=st.sampled_from(SUFFIXES))
def test_binary_junk(tmp_path_factory: pytest.TempPathFactory, data: bytes, suffix: str) -> None:
    p = tmp_path_factory.mktemp("junk") / f"junk{suffix}"
    p.write_bytes(data)
    df = read(p)
    if df is not None:
        whole_stage(df, None, None)


_cell = st.one_of(
    st.text(alphabet=string.printable + "éüßøÆ€“”\u00a0\ufeff\x00", max_size=12),
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "NA", "?", "null", "None", "1,234", "2024-01-31", "12/31/2023", "TRUE", "no", '"', '""', "\n"]),
)


@FUZZ
@given(
    header=st.lists(st.text(alphabet=string.ascii_letters + " ,;\t|\"'#", min_size=0, max_size=8), min_size=1,
                    max_size=6),
    rows=st.lists(st.lists(_cell, min_size=0, max_size=8), min_size=0, max_size=25),
    sep=st.sampled_from([",", ";", "\t", "|", " "]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1", "shift_jis", "utf-32"]),
    compress=st.booleans(),
    kind=st.sampled_from(KINDS),
)
def test_malformed_delimited_text(tmp_path_factory: pytest.TempPathFactory, header: list[str],
                                  rows: list[list[str]], sep: str, encoding: str, compress: bool,
                                  kind: str | None) -> None:
    text = "\n".join(sep.join(r) for r in [header, *rows]) + "\n"
    data = text.encode(encoding, errors="replace")
    p = tmp_path_factory.mktemp("csv") / ("t.csv.gz" if compress else "t.csv")
    p.write_bytes(gzip.compress(data) if compress else data)
    df = read(p)
    if df is not None:
        whole_stage(df, str(df.columns[-1]), kind)


_columns = st.sampled_from([
    "ints", "floats", "floats_with_nan_inf", "text", "tokens", "bools", "mixed_objects", "all_null", "dates",
    "one_value", "numbers_as_text", "long_text",
])


def make_column(kind: str, n: int, rng: np.random.Generator) -> list | np.ndarray:
    if kind == "ints":
        return rng.integers(-5, 5, n)
    if kind == "floats":
        return rng.normal(size=n)
    if kind == "floats_with_nan_inf":
        return rng.choice([0.5, np.nan, np.inf, -np.inf, 1e300, -0.0], n)
    if kind == "text":
        return rng.choice(["a", "b", " a ", "", "B"], n).tolist()
    if kind == "tokens":
        return rng.choice(["NA", "?", "1", "2.5", "n/a", "-"], n).tolist()
    if kind == "bools":
        return rng.choice([True, False], n)
    if kind == "mixed_objects":
        pool: list = [1, "1", 1.0, None, "x", b"y", (1, 2), ["l"], {"k": 1}]
        return [pool[i] for i in rng.integers(0, len(pool), n)]
    if kind == "all_null":
        return [None] * n
    if kind == "dates":
        return rng.choice(["2024-01-01", "2024-02-30", "01/13/2024", "yesterday", None], n).tolist()
    if kind == "one_value":
        return ["same"] * n
    if kind == "numbers_as_text":
        return [f"{v:,.2f}" for v in rng.normal(1000, 500, n)]
    return [" ".join(rng.choice(["the", "quick", "fox", "jumps", "over"], 8)) for _ in range(n)]


@FUZZ
@given(n=st.integers(1, 80), kinds=st.lists(_columns, min_size=1, max_size=7), target_kind=_columns,
       kind=st.sampled_from(KINDS), seed=st.integers(0, 2**16))
def test_odd_frames_through_the_whole_stage(n: int, kinds: list[str], target_kind: str, kind: str | None,
                                            seed: int) -> None:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"c{i}_{k}": make_column(k, n, rng) for i, k in enumerate(kinds)})
    df["target"] = make_column(target_kind, n, rng)
    whole_stage(df, "target", kind)


@pytest.mark.long
@pytest.mark.slow
def test_ten_thousand_columns(tmp_path: Path) -> None:
    """What training does with a very wide table: read, roles, audit, cleaning plan."""
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.integers(0, 3, (30, 10_000)), columns=[f"f{i}" for i in range(10_000)])
    wide["y"] = rng.choice(["a", "b"], 30)
    p = tmp_path / "wide.csv"
    wide.to_csv(p, index=False)
    df = load_table(p)
    assert df.shape == (30, 10_001)
    whole_stage(df, "y", "binary", profile=False)
    whole_stage(df.iloc[:, -100:], "y", "binary")  # and a profile of 100 of them (each column alone is measured)


def test_one_row_and_all_null_tables(tmp_path: Path) -> None:
    p = tmp_path / "one.csv"
    p.write_text("a,b,c\n1,x,\n")
    df = load_table(p)
    assert df.shape == (1, 3)
    whole_stage(df, "a", "regression")
    whole_stage(pd.DataFrame({"a": [None] * 4, "b": [np.nan] * 4, "y": [None] * 4}), "y", "binary")
