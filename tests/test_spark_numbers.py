"""Spark reads numbers written as people write them as the local readers do: a currency symbol or a percent
sign around a number ($1,200, 18.1%, (5,50 €)), and, in a CSV written with decimal commas, thousands dots
(1.234,5) and a currency among the numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from mlengineer.data.load import load_table  # noqa: E402
from mlengineer.data.values import numbers_from_text  # noqa: E402

from .spark_support import spark_fixture  # noqa: E402, F401

pytestmark = [pytest.mark.slow, pytest.mark.spark]

TRICKY = ["1", " 2.5 ", "1,234", "1,234,567.25", "1,23", "$1,200", "-$5.50", "$-5.50", "($5.50)", "(5.50)",
          "12 €", "12€", "€ 3", "£7", "¥1000", "18.1%", "-18%", "(3%)", "$5%", "$", "%", "5 $ $", "--$5",
          "-($5)", "($5", "$5)", "1.2.3$", "$.5", "$5.", "1.5d", "0x10", "1e3", "-1E-2", ".5", "5.", "+3",
          "inf", "nan", "?", "NA", "", "abc", "1_000", "$1_000", "\u00a03,5 €", "12\u00a0€", "1,2345$", "$ 1,234.5"]


def _same(a, b) -> None:
    a, b = np.array(a, dtype=float), np.array(b, dtype=float)
    a[~np.isfinite(a)] = np.nan
    b[~np.isfinite(b)] = np.nan
    np.testing.assert_array_equal(a, b, err_msg=str(list(zip(a, b, TRICKY, strict=False))))


def test_number_expr_reads_text_as_numbers_from_text(spark) -> None:
    from mlengineer.spark.stats import number_expr

    frame = spark.createDataFrame([(i, t) for i, t in enumerate(TRICKY)], "i int, x string")
    got = [r[0] for r in frame.orderBy("i").select(number_expr(frame, "x")).collect()]
    want = numbers_from_text(pd.Series(TRICKY, dtype=object))
    _same([np.nan if v is None else v for v in got], want)
    assert got[TRICKY.index("$1,200")] == 1200 and got[TRICKY.index("18.1%")] == 18.1
    assert got[TRICKY.index("($5.50)")] == -5.5


def test_the_spark_audit_finds_no_text_in_a_column_of_dollars(spark) -> None:
    from mlengineer.data.findings import Finding
    from mlengineer.data.schema import ColumnRole
    from mlengineer.spark.audit import _mixed_types

    values = ["$1,200", "$35.50", "($12)", "18%", "$0.99", None, "n/a"]
    frame = spark.createDataFrame([(v,) for v in values], "price string")

    class Col:
        name, role = "price", ColumnRole.numeric

    f = Finding.model_construct(check="mixed_types", column="price", message="", value=1.0)
    assert _mixed_types(frame, Col(), f) == []
    assert len(_mixed_types(spark.createDataFrame([("$1",), ("lots",)], "price string"), Col(), f)) == 1


def test_a_csv_with_decimal_commas_thousands_dots_and_euros_reads_as_in_memory(spark, tmp_path: Path) -> None:
    from mlengineer.spark.read import check_source, read_table

    rows = ["a;b;c;d;e;f",
            "1,5;1.234,5;3,50 €;1,5;x;1.000",
            "2,25;12,0;-1,00 €;?;y;2.500",
            "NA;2.000;NA;2,5;z;12.345",
            "-0,5;1.000.000,25;(4,00 €);?;w;7",
            "3;7;12 €;4,75;v;999"]
    path = tmp_path / "euro.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    local = load_table(str(path))
    table = read_table(spark, str(path), found=check_source(str(path)))
    got = table.frame.toPandas()
    assert list(got.columns) == list(local.columns)
    for c in local.columns:
        _same(numbers_from_text(got[c].astype(object).astype(str)), numbers_from_text(local[c].astype(object).astype(str)))
    assert got["b"].tolist()[:2] == [1234.5, 12.0] and got["f"].tolist()[:2] == [1000.0, 2500.0]
    assert numbers_from_text(got["c"].astype(str)).tolist()[:2] == [3.5, -1.0]
    assert got["e"].tolist() == local["e"].tolist()
