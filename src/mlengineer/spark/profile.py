"""The profile of a table on Spark: the same ``Profile`` the terminal table and the HTML page render.

``data.profile.profile_table`` runs on the driver's sample (the relation to the target, dates, text and
identifiers are judged on a sample on the local path too); every count, quantile and histogram is then
replaced by Spark aggregations over all rows: approximate quantiles (0.1% rank error) and distinct counts,
exact counts of missing values, zeros, negatives, duplicates and categories.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..data.findings import Finding
from ..data.profile import BINS, TOP_VALUES, ColumnProfile, Histogram, Profile, boolean_values, profile_table
from ..data.schema import Column, ColumnRole, Schema
from ..errors import DataError
from .audit import class_counts, duplicate_counts
from .stats import QUANTILE_ACCURACY, QUANTILES, TableStats, number_expr

__all__ = ["Examined", "examine", "profile_spark"]


def _number_stats(frame: Any, names: list[str], stats: TableStats) -> dict[str, dict[str, Any]]:
    """Per numeric column: moments, extremes, quartiles (from the first pass) and a histogram over the
    1st-99th percentiles, in one more aggregation and one groupBy."""
    from pyspark.sql import functions as F

    if not names:
        return {}
    xs = frame.select(*[number_expr(frame, n).alias(f"c{i}") for i, n in enumerate(names)])
    exprs = []
    for i, n in enumerate(names):
        x = F.col(f"c{i}")
        exprs += [F.avg(x).alias(f"mu{i}"), F.stddev_pop(x).alias(f"sd{i}"), F.min(x).alias(f"lo{i}"),
                  F.max(x).alias(f"hi{i}"), F.count(F.when(x == 0, 1)).alias(f"z{i}"),
                  F.count(F.when(x < 0, 1)).alias(f"neg{i}"), F.skewness(x).alias(f"sk{i}")]
        if n not in stats.quantiles:  # the target: the first pass did not know it was a number
            exprs.append(F.percentile_approx(x, list(QUANTILES), QUANTILE_ACCURACY).alias(f"q{i}"))
    agg = xs.agg(*exprs).first().asDict()
    for i, n in enumerate(names):
        if n not in stats.quantiles and agg.get(f"q{i}") is not None:
            stats.quantiles[n] = [float(v) for v in agg[f"q{i}"]]
    names_ok = {n for n in names if n in stats.quantiles}
    edges: dict[int, tuple[float, float]] = {}
    for i, n in enumerate(names):
        if n not in names_ok:
            continue
        lo, hi = stats.quantiles[n][0], stats.quantiles[n][-1]
        if hi <= lo and agg[f"lo{i}"] is not None:
            lo, hi = float(agg[f"lo{i}"]), float(agg[f"hi{i}"])
        if hi > lo:
            edges[i] = (lo, hi)
    counts = _histograms(xs, edges)
    out = {}
    for i, name in enumerate(names):
        if agg[f"mu{i}"] is None or name not in names_ok:
            continue
        q = stats.quantiles[name]
        values: dict[str, Any] = {"mean": float(agg[f"mu{i}"]), "std": float(agg[f"sd{i}"] or 0.0), "min": float(agg[f"lo{i}"]),
                  "max": float(agg[f"hi{i}"]), "p25": q[1], "median": q[2], "p75": q[3],
                  "n_zeros": int(agg[f"z{i}"]), "n_negative": int(agg[f"neg{i}"]), "skew": float(agg[f"sk{i}"] or 0.0)}
        if i in edges:
            lo, hi = edges[i]
            step = (hi - lo) / BINS
            edge_values: list[float | str] = [*(lo + k * step for k in range(BINS)), hi]
            values["histogram"] = Histogram(edges=edge_values, counts=[counts.get((i, k), 0) for k in range(BINS)])
        out[name] = values
    return out


def _histograms(xs: Any, edges: dict[int, tuple[float, float]]) -> dict[tuple[int, int], int]:
    """Counts per (column, bin) of values clipped into [lo, hi], every column in one groupBy."""
    from pyspark.sql import functions as F

    if not edges:
        return {}
    parts = []
    for i, (lo, hi) in edges.items():
        x = F.least(F.greatest(F.col(f"c{i}"), F.lit(lo)), F.lit(hi))
        b = F.least(F.floor((x - lo) / (hi - lo) * BINS), F.lit(BINS - 1)).cast("int")
        parts.append(F.struct(F.lit(i).alias("c"), F.when(F.col(f"c{i}").isNotNull(), b).alias("b")))
    rows = (xs.select(F.explode(F.array(*parts)).alias("v")).select("v.c", "v.b").where(F.col("b").isNotNull())
            .groupBy("c", "b").count().collect())
    return {(int(r["c"]), int(r["b"])): int(r["count"]) for r in rows}


def _every_row(p: ColumnProfile, col: Column, n: int, stats: TableStats, numbers: dict[str, Any]) -> None:
    p.n_missing = int(round(col.missing_fraction * n))
    p.missing_fraction = col.missing_fraction
    p.n_unique = col.n_unique
    if p.name in numbers:
        for key, value in numbers[p.name].items():
            setattr(p, key, value)
    if col.categories and col.frequencies and col.role not in (ColumnRole.text, ColumnRole.identifier):
        filled = stats.filled.get(p.name, 0)
        p.top_values = [(c, int(round(f * filled))) for c, f in zip(col.categories[:TOP_VALUES], col.frequencies,
                                                                     strict=False)]
        if col.role == ColumnRole.boolean:  # as the cleaning reads it, as the local profile says it
            p.top_values, p.spellings = boolean_values(dict(p.top_values))
            p.n_unique = len(p.top_values)


def profile_spark(frame: Any, schema: Schema, stats: TableStats, sample: pd.DataFrame, *, target: str | None,
                  task_kind: str | None, source: dict[str, Any] | None = None) -> Profile:
    """The profile of ``frame`` (``schema`` and ``stats`` from ``spark_schema``, ``sample`` drawn from it)."""
    profile = profile_table(sample, target=target, schema=schema, task_kind=task_kind)
    n = stats.n_rows
    numeric = [c.name for c in schema.columns if c.role == ColumnRole.numeric and c.name in frame.columns
               and c.name != target]
    if target is not None and task_kind == "regression":
        numeric.append(target)
    numbers = _number_stats(frame, numeric, stats)
    for p in profile.columns:
        _every_row(p, schema[p.name], n, stats, numbers)
    t = profile.target_profile
    if t is not None and target is not None:
        t.n_missing = n - stats.filled[target]
        t.missing_fraction = t.n_missing / n
        t.n_unique = stats.distinct[target]
        if target in numbers:
            for key, value in numbers[target].items():
                setattr(t, key, value)
        counts = class_counts(frame, target, stats) if task_kind in ("binary", "multiclass") else None
        if counts is not None:
            t.top_values = [(str(k), int(v)) for k, v in counts.iloc[:TOP_VALUES].items()]
            t.n_unique = len(counts)
    profile.n_rows = n
    profile.memory_bytes = int(profile.memory_bytes * n / max(len(sample), 1))
    profile.n_duplicate_rows = duplicate_counts(frame, None)[0]
    profile.source = {**(source or {}), "engine": "spark", "sample_rows": len(sample)}
    return profile


def _task_kind(frame: Any, target: str, task: str, sample: pd.DataFrame, stats: TableStats) -> str | None:
    """The task kind to audit and profile by. A target training would refuse (one class, an identifier, no
    values) is what the audit is there to say, so it gets the kind the local audit gives it, not an error."""
    from .stats import spark_task, target_counts

    try:
        return spark_task(frame, target, task, sample, stats).kind
    except DataError:
        if not stats.filled.get(target):
            return None
        counts = target_counts(frame, target, stats)
        if task != "auto" or (counts is not None and len(counts) == 1):
            return task if task != "auto" else "multiclass"
        if counts is None and not pd.api.types.is_numeric_dtype(sample[target]):
            return "multiclass"  # text with more values than classes can be: the audit names it
        raise


@dataclass
class Examined:
    """What ``profile`` and ``audit`` show about a table read on Spark."""

    rows: int
    columns: int
    where: str
    how: list[str]
    schema: Schema
    task_kind: str | None
    profile: Profile | None = None
    findings: list[Finding] | None = None
    dropped: dict[str, str] = field(default_factory=dict)


def examine(data: str | None, *, sql: str | None = None, target: str | None = None, task: str = "auto",
            column_roles: dict[str, str] | None = None, master: str | None = None,
            conf: dict[str, str] | None = None, profile: bool = False, findings: bool = False,
            sample_rows: int = 100_000, seed: int = 0, progress: Callable[[str], None] = lambda stage: None
            ) -> Examined:
    """Read ``data`` on Spark and profile it, audit it, or both (``findings``), in one session;
    ``progress`` hears the name of each stage as it starts."""
    from ..data.clean import fit_cleaning_plan
    from ..data.formats import written_marks
    from .audit import audit_spark
    from .read import check_source, driver_sample, read_table
    from .session import spark_session
    from .stats import spark_schema

    found = check_source(data, written_marks(None, column_roles))  # a role's text as written, as in memory
    progress("starting Spark")
    with spark_session(master, conf) as spark:
        progress("reading")
        table = read_table(spark, data, sql=sql, found=found)
        frame = table.frame
        if target is not None and target not in frame.columns:
            raise DataError(f"Target column {target!r} is not in {table.where}; its columns are: "
                            f"{', '.join(frame.columns[:30])}.")
        progress("counting values")
        n = frame.count()
        sample = driver_sample(frame, n, sample_rows, seed=seed)
        schema, stats = spark_schema(frame, sample, target, column_roles)
        kind = _task_kind(frame, target, task, sample, stats) if target is not None else None
        out = Examined(rows=n, columns=len(frame.columns), where=table.where, how=table.how, schema=schema,
                       task_kind=kind)
        if findings:
            progress("auditing")
            out.findings = audit_spark(frame, schema, stats, sample, task_kind=kind, seed=seed, source=table.source)
            try:
                out.dropped = fit_cleaning_plan(sample, schema, findings=out.findings).dropped_columns
            except DataError:  # nothing left to learn from: the findings say why
                out.dropped = {}
        if profile:
            progress("profiling")
            out.profile = profile_spark(frame, schema, stats, sample, target=target, task_kind=kind,
                                        source=table.source)
        return out
