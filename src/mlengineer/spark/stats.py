"""The Schema of a table on Spark: roles inferred on a driver-side sample by the local code, then every
count, range and frequency replaced by Spark aggregations over all rows (approximate distinct counts for
numbers and text, exact category frequencies). Roles the sample cannot settle alone (an identifier, a
constant) are confirmed on every row.

Two passes: one aggregation over every column, one ``groupBy`` over the categorical columns stacked
together (value counts of all of them in one shuffle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..data.schema import (
    MAX_CATEGORIES_KEPT,
    MISSING_TOKENS,
    THOUSANDS_SEPARATOR,
    ColumnRole,
    Schema,
    category_key,
    infer_schema,
)
from ..errors import DataError
from ..tasks import Task, make_task
from .csv_files import TRIM
from .read import qcol

__all__ = ["MAX_TARGET_VALUES", "QUANTILES", "QUANTILE_ACCURACY", "TableStats", "census", "is_filled", "number_expr", "spark_schema", "text_number", "spark_task", "target_counts", "type_of"]

#: the quantiles of every numeric column the first pass takes (the audit's quartiles, the profile's bulk)
QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.99)
QUANTILE_ACCURACY = 1000  # rank error at most 0.1% of the rows
#: distinct target values collected to the driver at most (more: the target is a number to regress on)
MAX_TARGET_VALUES = 1000
_NUMERIC_TYPES = ("byte", "short", "int", "bigint", "long", "float", "double", "decimal")


@dataclass
class TableStats:
    """What the Spark passes counted: rows, and per column its filled rows and distinct values."""

    n_rows: int
    filled: dict[str, int] = field(default_factory=dict)
    distinct: dict[str, int] = field(default_factory=dict)
    #: per numeric column, its QUANTILES (approximate: rank error 1 / QUANTILE_ACCURACY)
    quantiles: dict[str, list[float]] = field(default_factory=dict)
    sample_rows: int = 0
    fingerprint: str = ""
    #: the target's classes with their rows, once counted (None: too many values to be classes)
    class_rows: dict[str, list[tuple[Any, int]] | None] = field(default_factory=dict)
    #: rows of the whole table when these statistics describe a random sample of it (0: every row)
    of_rows: int = 0
    #: with ``of_rows``: rows of the whole table without a target value
    of_unlabelled: int = 0

    def rows_words(self) -> str:
        """Which rows the counts are over, for a message: "all 2,000 rows", or "a random 1,000,000 of the
        10,000,000 rows"."""
        if self.of_rows:
            return f"a random {self.n_rows:,} of the {self.of_rows:,} rows"
        return f"all {self.n_rows:,} rows"

    def data_fingerprint(self, columns: list[str]) -> dict[str, Any]:
        """The bundle's fingerprint of the training table: shape, and a hash of every value (order-free)."""
        import hashlib

        text = f"{self.n_rows}:{','.join(columns)}:{self.fingerprint}"
        return {"rows": self.n_rows, "columns": len(columns), "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "how": "sum of 64-bit row hashes on Spark (independent of row order)"}


def type_of(frame: Any, name: str) -> str:
    """The Spark type of a column in short form: "double", "string", "timestamp", ..."""
    return str(frame.schema[name].dataType.simpleString())


def is_number_type(spark_type: str) -> bool:
    return spark_type.startswith(_NUMERIC_TYPES)


#: a number as Python's ``float`` reads one (Java also reads 1d, 0x1p3), inf and nan aside (those are null here)
_FLOAT = r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"
#: ``values._UNIT_NUMBER`` in Java's terms: (, -, currency, -, the number, currency or %, )
UNIT_NUMBER = (r"(?U)^(\()?\s*(-?)\s*([$€£¥])?\s*(-?)\s*([0-9][0-9,.]*|\.[0-9]+)\s*([$€£¥%])?\s*(\))?$")


def _float(text: Any) -> Any:
    """Text (stripped) as a double as Python's ``float`` reads it after ``THOUSANDS_SEPARATOR`` is taken out."""
    from pyspark.sql import functions as F

    plain = F.regexp_replace(text, THOUSANDS_SEPARATOR.pattern, "")
    return F.when(plain.rlike(_FLOAT), plain.try_cast("double"))


def text_number(c: Any) -> Any:
    """Text as a double as ``values.number_from_text`` reads it (null where it reads no number): thousands
    separators, and one currency symbol before or after the number or a percent sign after it (``unit_number``:
    "$1,200" is 1200, "(5.50 €)" is -5.5, "18.1%" is 18.1)."""
    from pyspark.sql import functions as F

    s = F.regexp_replace(c, TRIM, "")

    def part(i: int) -> Any:
        return F.regexp_extract(s, UNIT_NUMBER, i)

    opened, sign, pre, sign2, num, post, closed = (part(i) for i in range(1, 8))
    unit = F.when(s.rlike(UNIT_NUMBER) & ((pre != "") != (post != "")) & ((opened != "") == (closed != ""))
                  & (F.length(opened) + F.length(sign) + F.length(sign2) <= 1), _float(num))
    return F.coalesce(_float(s), F.when(F.length(opened) + F.length(sign) + F.length(sign2) > 0, -unit)
                      .otherwise(unit))


def number_expr(frame: Any, name: str) -> Any:
    """The column's values as finite doubles (null otherwise): numbers as they are, text read as the local
    path reads numbers written as text (``text_number``: thousands separators, a currency or percent sign)."""
    from pyspark.sql import functions as F

    c = qcol(name)
    kind = type_of(frame, name)
    if is_number_type(kind) or kind == "boolean":
        x = c.cast("double")
    elif kind == "string":
        x = text_number(c)
    else:
        return F.lit(None).cast("double")
    return F.when(~F.isnan(x) & (F.abs(x) != float("inf")), x)


def is_filled(frame: Any, name: str) -> Any:
    """Whether a row holds a value in the column ``name``, as pandas judges it (NaN is missing to pandas, a
    value to Spark)."""
    from pyspark.sql import functions as F

    c = qcol(name)
    return c.isNotNull() & ~F.isnan(c) if type_of(frame, name) in ("float", "double") else c.isNotNull()


def _filled_expr(frame: Any, name: str) -> Any:
    from pyspark.sql import functions as F

    return F.count(F.when(is_filled(frame, name), 1))


def census(frame: Any, target: str | None) -> tuple[int, str, int]:
    """(rows, an order-free hash of every value, rows with a target): one cheap pass over the whole table,
    for what a sample cannot stand in for (the bundle's data fingerprint, rows dropped for lack of a target)."""
    from pyspark.sql import functions as F

    row_hash = F.xxhash64(*[e for c in frame.columns for e in (qcol(c), qcol(c).isNull())])
    exprs = [F.count(F.lit(1)).alias("n"), F.sum(row_hash.cast("decimal(38,0)")).alias("h")]
    if target is not None:
        exprs.append(_filled_expr(frame, target).alias("t"))
    row = frame.agg(*exprs).first()
    n = int(row["n"])
    return n, str(row["h"]), int(row["t"]) if target is not None else n


def _first_pass(frame: Any, schema: Schema, *, fingerprint: bool) -> tuple[int, dict[str, Any]]:
    """Rows, and per column: filled rows; approximate distinct values (categories are counted exactly in
    the second pass); placeholders where they read as missing; for numbers, min/max/mean/std of the finite
    values; with ``fingerprint``, an order-free hash of every value. One aggregation."""
    from pyspark.sql import functions as F

    exprs = [F.count(F.lit(1)).alias("__rows")]
    if fingerprint:  # the sum of 64-bit row hashes, as a decimal, which cannot overflow
        row_hash = F.xxhash64(*[e for c in frame.columns for e in (qcol(c), qcol(c).isNull())])
        exprs.append(F.sum(row_hash.cast("decimal(38,0)")).alias("__hash"))
    tokens = sorted(MISSING_TOKENS)
    for i, name in enumerate(frame.columns):
        kind = type_of(frame, name)
        c = qcol(name)
        role = schema[name].role if name in schema else None
        exprs.append(_filled_expr(frame, name).alias(f"f{i}"))
        if role not in (ColumnRole.categorical, ColumnRole.boolean):
            exprs.append(F.approx_count_distinct(c).alias(f"d{i}"))
        if kind == "string" and role in (ColumnRole.numeric, ColumnRole.datetime, ColumnRole.boolean):
            exprs.append(F.count(F.when(F.lower(F.trim(c)).isin(tokens), 1)).alias(f"t{i}"))
        if role == ColumnRole.numeric:
            x = number_expr(frame, name)
            exprs += [F.min(x).alias(f"lo{i}"), F.max(x).alias(f"hi{i}"), F.avg(x).alias(f"mu{i}"),
                      F.stddev_pop(x).alias(f"sd{i}"),
                      F.percentile_approx(x, list(QUANTILES), QUANTILE_ACCURACY).alias(f"q{i}")]
        elif role == ColumnRole.datetime and kind in ("date", "timestamp", "timestamp_ntz"):
            exprs += [F.min(c).cast("string").alias(f"lo{i}"), F.max(c).cast("string").alias(f"hi{i}")]
    row = frame.agg(*exprs).collect()[0].asDict()
    row["__hash"] = str(row.get("__hash"))
    return int(row.pop("__rows")), row


def _category_counts(frame: Any, names: list[str]) -> dict[str, tuple[list[tuple[str, int]], int, int]]:
    """Per column: the most common values (by category key, at most MAX_CATEGORIES_KEPT) with their rows,
    how many distinct values it has, and its blank (whitespace) values; every column in one groupBy."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not names:
        return {}
    parts = []
    for name in names:
        kind = type_of(frame, name)
        c = qcol(name)
        text = c.cast("string") if kind in ("string", "boolean") else F.lit(None).cast("string")
        number = c.cast("double") if is_number_type(kind) else F.lit(None).cast("double")
        parts.append(F.struct(F.lit(name).alias("n"), text.alias("s"), number.alias("x")))
    stacked = frame.select(F.explode(F.array(*parts)).alias("v")).select("v.n", "v.s", "v.x")
    stacked = stacked.where(F.col("s").isNotNull() | (F.col("x").isNotNull() & ~F.isnan("x")))
    counts = stacked.groupBy("n", "s", "x").count()
    by_col = Window.partitionBy("n")
    ranked = (counts.withColumn("distinct", F.count(F.lit(1)).over(by_col))
              .withColumn("rank", F.row_number().over(by_col.orderBy(F.desc("count"), "s", "x")))
              .where(F.col("rank") <= 4 * MAX_CATEGORIES_KEPT))
    out: dict[str, tuple[dict[str, int], int]] = {n: ({}, 0) for n in names}
    blank: dict[str, int] = dict.fromkeys(names, 0)
    for r in ranked.collect():
        key = category_key(r["x"] if r["x"] is not None else r["s"])
        merged, _ = out[r["n"]]
        if key is not None:  # values sharing a key (3 and "3") counted as one
            merged[key] = merged.get(key, 0) + int(r["count"])
        else:  # blank text: no category
            blank[r["n"]] += int(r["count"])
        out[r["n"]] = (merged, int(r["distinct"]))
    # every value was collected when there were few: then the keys are counted exactly
    return {n: (sorted(m.items(), key=lambda kv: -kv[1])[:MAX_CATEGORIES_KEPT],
                len(m) if d <= 4 * MAX_CATEGORIES_KEPT else d, blank[n]) for n, (m, d) in out.items()}


def target_counts(frame: Any, target: str, stats: TableStats) -> list[tuple[Any, int]] | None:
    """The target's distinct values with their rows, when there are few enough to be classes (counted once
    per table: the task and the audit both ask)."""
    if target not in stats.class_rows:
        counts = None
        if stats.distinct.get(target, 0) <= MAX_TARGET_VALUES:
            rows = frame.where(qcol(target).isNotNull()).groupBy(qcol(target).alias("y")).count().collect()
            counts = [(r["y"], int(r["count"])) for r in rows] if len(rows) <= MAX_TARGET_VALUES else None
        stats.class_rows[target] = counts
    return stats.class_rows[target]


def _exact_distinct(frame: Any, schema: Schema, stats: TableStats) -> None:
    """Exact distinct counts for the columns the sample calls identifiers: an estimate cannot tell a column
    unique per row from one with a few repeats, and that is the whole question."""
    from pyspark.sql import functions as F

    names = [c.name for c in schema.columns if c.role == ColumnRole.identifier and c.name in frame.columns]
    if names:
        row = frame.agg(*[F.countDistinct(qcol(n)).alias(f"x{i}") for i, n in enumerate(names)]).first()
        for i, n in enumerate(names):
            stats.distinct[n] = int(row[f"x{i}"])


def _confirm_role(col: Any, kind: str, filled: int, distinct: int) -> None:
    """An identifier or constant judged on the sample, kept only if every row agrees (as the local rules
    say: numbers unique per row, text unique in all but 0.1% of rows)."""
    unique = distinct == filled if is_number_type(kind) else distinct >= 0.999 * filled
    if col.role == ColumnRole.identifier and filled and not unique:
        col.role = ColumnRole.numeric if is_number_type(kind) else ColumnRole.categorical
        col.reason = f"{distinct:,} distinct values in {filled:,} rows (unique in the sample, not in all rows)"
    elif col.role == ColumnRole.constant and distinct > 1 and filled:
        col.role = ColumnRole.numeric if is_number_type(kind) and distinct > 10 else ColumnRole.categorical
        col.reason = f"about {distinct:,} distinct values (one in the sample, more in all rows)"


def spark_schema(frame: Any, sample: pd.DataFrame, target: str | None = None,
                 overrides: dict[str, str] | None = None, *, fingerprint: bool = False) -> tuple[Schema, TableStats]:
    """The Schema of ``frame``: roles from ``sample`` (rows drawn from it), statistics from every row;
    ``fingerprint`` also hashes every value (for the bundle's data fingerprint)."""
    schema = infer_schema(sample, target, overrides)
    n, agg = _first_pass(frame, schema, fingerprint=fingerprint)
    if n == 0:
        raise DataError("The table holds no rows.")
    stats = TableStats(n_rows=n, sample_rows=len(sample), fingerprint=str(agg.pop("__hash")))
    for i, name in enumerate(frame.columns):
        stats.filled[name] = int(agg[f"f{i}"])
        # an estimate, never above the rows (categories get their exact count below)
        stats.distinct[name] = min(int(agg.get(f"d{i}") or 0), stats.filled[name])
    _exact_distinct(frame, schema, stats)
    for i, name in enumerate(frame.columns):
        if name == target:
            continue
        col = schema[name]
        kind = type_of(frame, name)
        filled, distinct = stats.filled[name], stats.distinct[name]
        if name not in (overrides or {}):
            _confirm_role(col, kind, filled, distinct)
        tokens = int(agg.get(f"t{i}") or 0) if col.role in (
            ColumnRole.numeric, ColumnRole.datetime, ColumnRole.boolean) else 0
        col.n_missing_tokens = tokens
        if not tokens:
            col.missing_tokens = None
        col.missing_fraction = (n - filled + tokens) / n
        col.n_unique = max(0, distinct - (1 if tokens else 0))
        if col.role == ColumnRole.numeric and agg.get(f"lo{i}") is not None:
            stats.quantiles[name] = [float(v) for v in agg[f"q{i}"]]
            col.min, col.max = float(agg[f"lo{i}"]), float(agg[f"hi{i}"])
            col.mean, col.std = float(agg[f"mu{i}"]), float(agg[f"sd{i}"] or 0.0)
        elif col.role == ColumnRole.datetime and agg.get(f"lo{i}") is not None:
            col.min, col.max = str(pd.Timestamp(agg[f"lo{i}"])), str(pd.Timestamp(agg[f"hi{i}"]))
    categorical = [c.name for c in schema.columns if c.name != target and c.name in frame.columns
                   and c.role in (ColumnRole.categorical, ColumnRole.boolean)]
    for name, (top, n_distinct, blank) in _category_counts(frame, categorical).items():
        col = schema[name]
        total = float(stats.filled[name] - blank) or 1.0
        col.categories = [k for k, _ in top]
        col.frequencies = [c / total for _, c in top]
        col.n_unique = n_distinct
        stats.distinct[name] = col.n_unique
    schema.n_rows = n
    return schema, stats


def spark_task(frame: Any, target: str, kind: str, sample: pd.DataFrame, stats: TableStats) -> Task:
    """The task (``kind``: auto, binary, multiclass or regression) from the target's distinct values over
    every row (the classes), or from the sample when there are too many to be classes."""
    if kind == "regression":
        return make_task(sample[target], "regression")
    counts = target_counts(frame, target, stats)
    if counts is None:
        if kind != "auto" or not pd.api.types.is_numeric_dtype(sample[target]):
            raise DataError(f"The target {target!r} has more than {MAX_TARGET_VALUES:,} distinct values: too many "
                            "to be classes. Use --task regression for numbers, or choose another target.")
        return make_task(sample[target], "regression")
    return make_task(pd.Series([v for v, _ in counts]), kind)
