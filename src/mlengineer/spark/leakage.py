"""Target leakage on Spark: the local checks (``data.leakage``) find candidates on the driver's sample;
here each one is confirmed, or not, on every row, and "filled only when the target is known" is counted on
every row outright (as the local path does on the whole table).

Confirmation asks the same question of all rows: does the column alone still tell the target (a pure
class per value or per quantile bin of its numbers; a variance explained by bin means), does it still equal
it, do its groups still cover disjoint ranges, is it still filled for one outcome only. A candidate that
does not hold on every row stays a warning, and the column is kept.
"""

from __future__ import annotations

import math
from typing import Any

from ..data.findings import Finding
from ..data.leakage import CHANCE, CLASS_ERROR_RATIO, REGRESSION_R2
from ..data.schema import ColumnRole, Schema
from .read import qcol
from .stats import TableStats, is_number_type, number_expr, type_of

__all__ = ["confirm_leakage"]

_BINS = 1000  # quantile bins of a numeric column when its purity is judged on every row
_SKIP = (ColumnRole.identifier, ColumnRole.constant, ColumnRole.ignore)


def confirm_leakage(frame: Any, schema: Schema, stats: TableStats, sampled: list[Finding], *,
                    task_kind: str | None) -> list[Finding]:
    """The leakage findings for ``frame``: the sample's candidates confirmed or turned into warnings, and
    columns filled only when the target is known, from every row."""
    target = schema.target
    if target is None or task_kind is None:
        return []
    out = _filled_when_known(frame, schema, stats)
    flagged = {f.column for f in out}
    for f in sampled:
        if f.check == "leakage_filled_when_known" or f.column in flagged or f.column not in frame.columns:
            continue
        if f.severity != "error":
            out.append(f)
            continue
        holds, detail = _check(frame, schema, f, task_kind)
        if holds is None:
            out.append(f.model_copy(update={"message": f"{f.message} (judged on a sample: {detail})"}))
        elif holds:
            out.append(f.model_copy(update={"message": f"{f.message} Confirmed on {stats.rows_words()}."}))
        else:
            out.append(f.model_copy(update={
                "severity": "warning", "action": "none",
                "message": f"{f.message} (on a sample; on {stats.rows_words()} it does not hold: {detail}; "
                "the column is kept)"}))
    return out


def _filled(frame: Any, name: str) -> Any:
    from pyspark.sql import functions as F

    c = qcol(name)
    return c.isNotNull() & ~F.isnan(c) if type_of(frame, name) in ("float", "double") else c.isNotNull()


def _filled_when_known(frame: Any, schema: Schema, stats: TableStats) -> list[Finding]:
    from pyspark.sql import functions as F

    target = str(schema.target)
    unknown = stats.n_rows - stats.filled[target]
    if unknown < 5 or unknown == stats.n_rows:
        return []
    names = [c.name for c in schema.columns if c.name != target and c.role not in _SKIP and c.name in frame.columns]
    known = _filled(frame, target)
    exprs = []
    for i, name in enumerate(names):
        exprs += [F.count(F.when(~known & _filled(frame, name), 1)).alias(f"u{i}"),
                  F.count(F.when(known & _filled(frame, name), 1)).alias(f"k{i}")]
    if not exprs:
        return []
    agg = frame.agg(*exprs).first().asDict()
    out = []
    for i, name in enumerate(names):
        if agg[f"u{i}"]:
            continue
        share = agg[f"k{i}"] / max(stats.n_rows - unknown, 1)
        if share < 0.5 or unknown * math.log(max(1 - share, 1e-12)) > math.log(CHANCE):
            continue
        out.append(Finding(
            check="leakage_filled_when_known", severity="error", column=name, value=share, action="drop_column",
            message=f"is empty in all {unknown} rows without a target and filled in {share:.0%} of the others: it "
            "is recorded with the outcome.",
            suggestion=f"Check how {name!r} is recorded: if it is known only once the outcome is, leave it out (it "
            f"is dropped); if it is a genuine input, keep it with --keep {name}."))
    return out


def _groups(frame: Any, schema: Schema, name: str, *, bins: int = _BINS) -> Any:
    """The column as group labels: quantile bins of its numbers, or its values."""
    from pyspark.ml.feature import Bucketizer
    from pyspark.sql import functions as F

    col = schema[name]
    kind = type_of(frame, name)
    if col.role == ColumnRole.numeric or (col.role == ColumnRole.datetime and kind != "string"):
        x = number_expr(frame, name) if is_number_type(kind) or kind == "string" else F.unix_micros(
            qcol(name).cast("timestamp")).cast("double")
        xs = frame.withColumn("__x", x)
        edges = sorted(set(xs.approxQuantile("__x", [i / bins for i in range(bins + 1)], 1 / (4 * bins))))
        if len(edges) >= 2:
            edges = [-float("inf"), *edges[1:-1], float("inf")]
            return Bucketizer(splits=edges, inputCol="__x", outputCol="__g", handleInvalid="keep").transform(
                xs).withColumn("__g", F.coalesce(F.col("__g").cast("string"), F.lit("missing")))
        return xs.withColumn("__g", F.coalesce(F.col("__x").cast("string"), F.lit("missing")))
    return frame.withColumn("__g", F.coalesce(qcol(name).cast("string"), F.lit("missing")))


def _check(frame: Any, schema: Schema, f: Finding, task_kind: str) -> tuple[bool | None, str]:
    """Whether the finding holds on every row (None: it cannot be judged there), and what was seen."""
    from pyspark.sql import functions as F

    target, name = str(schema.target), str(f.column)
    labelled = frame.where(_filled(frame, target))
    y = number_expr(frame, target) if task_kind == "regression" else qcol(target).cast("string")
    if f.check == "leakage_copy":
        x = number_expr(frame, name)
        row = labelled.agg(F.count(F.when(x.isNotNull() & y.isNotNull(), 1)).alias("n"),
                           F.count(F.when(F.abs(x - y) <= 1e-9 * F.abs(y), 1)).alias("same")).first()
        share = row["same"] / max(row["n"], 1)
        return share >= 0.5, f"equal in {share:.0%} of rows"
    if f.check == "leakage_filled_for_outcome":
        row = labelled.agg(F.countDistinct(F.when(_filled(frame, name), y)).alias("filled"),
                           F.countDistinct(F.when(~_filled(frame, name), y)).alias("empty")).first()
        return min(row["filled"] or 99, row["empty"] or 99) == 1, (
            f"{row['filled']} classes where filled, {row['empty']} where empty")
    grouped = _groups(labelled, schema, name).withColumn("__y", y)
    if f.check == "leakage_bands":
        bands = grouped.groupBy("__g").agg(F.min("__y").alias("lo"), F.max("__y").alias("hi")).orderBy("lo").collect()
        disjoint = all(a["hi"] < b["lo"] for a, b in zip(bands[:-1], bands[1:], strict=True))
        return disjoint, f"{len(bands)} groups{'' if disjoint else ' whose target ranges overlap'}"
    if task_kind == "regression":
        by = grouped.groupBy("__g").agg(F.count("__y").alias("n"), F.avg("__y").alias("m"))
        sse = grouped.join(by, "__g").agg(F.sum((F.col("__y") - F.col("m")) ** 2).alias("sse"),
                                          F.var_pop("__y").alias("v"), F.count("__y").alias("n")).first()
        r2 = 1 - float(sse["sse"] or 0) / max(float(sse["v"] or 0) * sse["n"], 1e-300)
        return r2 >= REGRESSION_R2, f"its {_BINS} quantile bins explain {r2:.1%} of the target's variance"
    cells = grouped.groupBy("__g", "__y").count()
    per_group = cells.groupBy("__g").agg(F.max("count").alias("top"), F.sum("count").alias("n"))
    row = per_group.agg(F.sum("top").alias("right"), F.sum("n").alias("n"), F.count(F.lit(1)).alias("groups")).first()
    n = int(row["n"] or 0)
    if row["groups"] > 0.05 * n:
        return None, f"{row['groups']:,} distinct values in {n:,} rows are too many to judge on the rows themselves"
    top_class = cells.groupBy("__y").agg(F.sum("count").alias("c")).agg(F.max("c")).first()[0] or 0
    errors, baseline = n - int(row["right"] or 0), n - int(top_class)
    holds = baseline > 0 and errors <= CLASS_ERROR_RATIO * baseline
    return holds, f"{errors:,} errors where the most common class alone makes {baseline:,}"
