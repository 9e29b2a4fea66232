"""The data audit on Spark: the same Findings as ``data.quality.audit``, with the counts taken over every row
(or, when training a large table, over a random sample of it: ``TableStats.of_rows``).

The local audit runs on the driver's sample against the Schema whose statistics came from every row
(``stats.py``), so the column checks it makes from the schema (identifiers, constants, missing values,
placeholders) already speak for the whole table. What depends on counting rows is redone with Spark:
duplicate and conflicting rows (from 64-bit row hashes, one shuffle of 16 bytes a row), outliers (approximate
quartiles, then exact counts), the target's classes, many-valued categories; and what the sample can only
suggest is confirmed on every row (duplicate columns, nearly constant numbers, text among numbers, leakage).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..data.findings import SEVERITY_ORDER, Finding, renamed_column_findings
from ..data.quality import audit, pct
from ..data.schema import MISSING_TOKENS, ColumnRole, Schema, category_key
from ..data.targets import (
    case_variant_findings,
    class_count_findings,
    label_variant_findings,
    missing_target_findings,
    orderable,
    sorted_findings,
    target_identifier_finding,
)
from .leakage import confirm_leakage
from .read import qcol
from .stats import TableStats, is_number_type, number_expr, target_counts, type_of

__all__ = ["audit_spark", "class_counts", "duplicate_counts", "label_runs"]

#: checks the sample's audit makes from the schema's every-row statistics: kept as they are
_FROM_SCHEMA = {"identifier", "constant", "mostly_missing", "missing_placeholders"}
_SENTINELS = (0.0, -1.0, -9.0, -99.0, -999.0, -9999.0, -99999.0, 99.0, 999.0, 9999.0, 99999.0, 999999.0, 9999999.0)


def _show(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v) if isinstance(v, str) else str(v)


def audit_spark(frame: Any, schema: Schema, stats: TableStats, sample: pd.DataFrame, *, task_kind: str | None,
                seed: int = 0, source: dict[str, Any] | None = None) -> list[Finding]:
    """Every check of the local audit on ``frame`` (the table ``schema`` and ``stats`` describe; ``sample``
    holds rows drawn from it), most severe first. ``source`` says how the table was read (``SparkTable.source``,
    the keys of the local reader's ``df.attrs["source"]``): a column the CSV header names twice is found there."""
    target = schema.target
    local = audit(sample, schema, task_kind=task_kind, seed=seed)
    findings = [f for f in local if f.check in _FROM_SCHEMA] + renamed_column_findings(dict(source or {}))
    findings += _confirm_sampled(frame, schema, stats, local)
    if stats.of_rows:  # repeats in a sample say little about the table's: a pair survives a 10% draw 1 time in 100
        findings.append(Finding(
            check="sampled_audit", severity="info", value=float(stats.n_rows),
            message=f"audited on {stats.rows_words()} to keep within the time budget; repeated rows were not "
            "counted.",
            suggestion="Run mlengineer audit on the table with --engine spark to count over every row."))
    else:
        findings += _duplicate_rows(frame, target, task_kind, stats.n_rows)
    findings += _high_cardinality(schema, stats.n_rows)
    findings += _case_variants(schema, sample)
    findings += _outliers(frame, schema, stats)
    if target is not None and target in frame.columns:
        findings += _target_checks(frame, target, stats, task_kind)
        findings += confirm_leakage(frame, schema, stats, [f for f in local if f.check.startswith("leakage_")],
                                    task_kind=task_kind)
    if stats.n_rows < 100:
        findings.append(Finding(check="few_rows", severity="warning", value=float(stats.n_rows),
                                message=f"only {stats.n_rows} rows: validation scores on so few rows are rough.",
                                suggestion="Collect more rows if you can; prefer cross-validation over one holdout."))
    return sorted(findings, key=lambda f: -SEVERITY_ORDER[f.severity])


def _confirm_sampled(frame: Any, schema: Schema, stats: TableStats, local: list[Finding]) -> list[Finding]:
    """The sample's duplicate columns, nearly constant numbers and text among numbers, counted on every row."""
    from pyspark.sql import functions as F

    out = []
    for f in local:
        col = schema[f.column] if f.column and f.column in schema else None
        if f.check == "duplicate_columns" and f.column:
            first = f.message.split("'")[1] if "'" in f.message else ""
            if first in frame.columns and _same_columns(frame, f.column, first, relabel="relabelled" in f.message):
                out.append(f)
        elif f.check == "near_constant" and col is not None and col.role == ColumnRole.numeric and not col.categories:
            x = number_expr(frame, col.name)
            top = frame.where(x.isNotNull()).groupBy(x.alias("v")).count().orderBy(F.desc("count")).first()
            filled = stats.filled[col.name] - col.n_missing_tokens
            share = float(top["count"]) / filled if top is not None and filled else 0.0
            if share >= 0.99:
                out.append(f.model_copy(update={"value": share, "message": f"is nearly constant: {_show(top['v'])} "
                                                f"in {pct(share)} of filled rows."}))
        elif f.check == "near_constant":
            out.append(f)  # from the schema's category frequencies, counted on every row
        elif f.check == "mixed_types":
            out += _mixed_types(frame, col, f) if col is not None else []
    return out


def _case_variants(schema: Schema, sample: pd.DataFrame) -> list[Finding]:
    """Category values written in several cases, among the sample's values and the most common values of
    every row (the schema's categories): a spelling too rare for the sample is still found when common."""
    names = [c.name for c in schema.columns if c.role == ColumnRole.categorical and c.name in sample.columns]
    if not names:
        return []
    kept = pd.DataFrame({n: pd.Series(schema[n].categories or [], dtype=object) for n in names})
    return case_variant_findings(pd.concat([sample[names].astype(object), kept], ignore_index=True), schema)


def _same_columns(frame: Any, a: str, b: str, *, relabel: bool) -> bool:
    """Whether ``a`` repeats ``b`` on every row: value for value, or one to one under other names."""
    if not relabel:
        return bool(frame.where(~qcol(a).eqNullSafe(qcol(b))).limit(1).count() == 0)
    pairs = frame.select(qcol(a).alias("a"), qcol(b).alias("b")).distinct().cache()
    try:
        n = pairs.count()
        return bool(n == pairs.select("a").distinct().count() == pairs.select("b").distinct().count())
    finally:
        pairs.unpersist()


def _mixed_types(frame: Any, col: Any, f: Finding) -> list[Finding]:
    """Text in a column of numbers, counted on every row (other mixes are judged from the sample's share)."""
    from pyspark.sql import functions as F

    if col.role != ColumnRole.numeric or type_of(frame, col.name) != "string":
        return [f]
    c = qcol(col.name)
    bad = frame.where(c.isNotNull() & number_expr(frame, col.name).isNull()
                      & ~F.lower(F.trim(c)).isin(sorted(MISSING_TOKENS)))
    n_bad = bad.count()
    if not n_bad:
        return []
    examples = ", ".join(repr(r[0]) for r in bad.select(c).distinct().limit(3).collect())
    return [f.model_copy(update={"value": float(n_bad), "message": f"holds numbers, but {n_bad:,} rows hold text "
                                 f"({examples}); those are read as missing."})]


def duplicate_counts(frame: Any, target: str | None) -> tuple[int, int, int]:
    """(rows that repeat an earlier row exactly, groups of rows whose features repeat with another target,
    rows in those groups), from 64-bit hashes of each row's features and of its target: one shuffle of 16
    bytes a row. Two different rows share a hash by chance about once in 300,000 tables of 10 million rows."""
    from pyspark.sql import functions as F

    features = [c for c in frame.columns if c != target]
    if not features:
        return 0, 0, 0
    row = F.xxhash64(*[e for c in features for e in (qcol(c), qcol(c).isNull())])
    y, labelled = F.lit(0), F.lit(False)
    if target is not None and target in frame.columns:
        y, labelled = F.xxhash64(qcol(target), qcol(target).isNull()), qcol(target).isNotNull()
    pairs = frame.select(row.alias("x"), y.alias("y"), labelled.alias("l")).groupBy("x", "y", "l").count()
    groups = pairs.groupBy("x").agg(F.sum(F.col("count") - 1).alias("dup"),
                                    F.count(F.when(F.col("l"), 1)).alias("targets"),
                                    F.sum(F.when(F.col("l"), F.col("count"))).alias("rows"))
    total = groups.agg(F.sum("dup").alias("dup"), F.count(F.when(F.col("targets") > 1, 1)).alias("conflicts"),
                       F.sum(F.when(F.col("targets") > 1, F.col("rows"))).alias("hit")).first()
    return int(total["dup"] or 0), int(total["conflicts"] or 0), int(total["hit"] or 0)


def _duplicate_rows(frame: Any, target: str | None, task_kind: str | None, n: int) -> list[Finding]:
    """Exact repeats, and rows whose features repeat with another target."""
    dup, conflicts, hit = duplicate_counts(frame, target)
    out = []
    if dup:
        out.append(Finding(
            check="duplicate_rows", severity="warning" if dup / n > 0.05 else "info", value=float(dup),
            message=f"{dup:,} rows ({pct(dup / n)}) repeat an earlier row exactly.",
            suggestion="Check whether they are real repeats; copies of a row on both sides of a validation "
            "split make the score look better than it is."))
    if target is not None and task_kind in ("binary", "multiclass") and conflicts:
        out.append(Finding(
            check="conflicting_labels", severity="warning" if hit / n > 0.01 else "info", value=float(hit),
            message=f"{hit:,} rows share all their feature values with a row whose target differs "
            f"({conflicts:,} such groups): no model can tell them apart.",
            suggestion="Check for labelling mistakes, or a feature that is missing from the table."))
    return out


def _high_cardinality(schema: Schema, n: int) -> list[Finding]:
    return [Finding(
        check="high_cardinality", severity="info" if col.n_unique < 0.5 * n else "warning", column=col.name,
        value=float(col.n_unique),
        message=f"is categorical with {col.n_unique:,} distinct values; values seen once share one code.",
        suggestion=f"If it is an identifier or free text, say so with --column-role {col.name}=identifier (or =text).")
        for col in schema.columns
        if col.name != schema.target and col.role == ColumnRole.categorical and col.n_unique > max(50, 0.2 * n)]


def _outliers(frame: Any, schema: Schema, stats: TableStats) -> list[Finding]:
    """Values beyond 3 interquartile ranges of the quartiles (the first pass's approximate quartiles, exact
    counts here), and round placeholder numbers (-999, 9999) repeated far from every other value."""
    from pyspark.sql import functions as F

    names = [c.name for c in schema.columns if c.role == ColumnRole.numeric and c.name != schema.target
             and c.name in stats.quantiles and is_number_type(type_of(frame, c.name))]
    if not names:
        return []
    xs = frame.select(*[number_expr(frame, n).alias(f"c{i}") for i, n in enumerate(names)])
    exprs, bounds = [], {}
    for i, (q1, med, q3) in enumerate(stats.quantiles[n][1:4] for n in names):
        if q3 - q1 <= 0:
            continue
        low, high = q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)
        bounds[i] = (q1, med, q3, low, high)
        x = F.col(f"c{i}")
        outside = (x < low) | (x > high)
        exprs += [F.count(x).alias(f"n{i}"), F.count(F.when(outside, 1)).alias(f"o{i}"),
                  F.max_by(x, F.when(outside, F.abs(x - med))).alias(f"e{i}")]
        exprs += [F.count(F.when(x == s, 1)).alias(f"s{i}_{j}") for j, s in enumerate(_SENTINELS)
                  if not low <= s <= high]  # only a placeholder far outside the bulk counts
    if not exprs:
        return []
    agg = xs.agg(*exprs).first().asDict()
    out = []
    for i, (q1, _, q3, _low, _high) in bounds.items():
        n_fin, n_out = int(agg[f"n{i}"]), int(agg[f"o{i}"])
        if n_fin < 50 or not n_out:
            continue
        counts = [int(agg.get(f"s{i}_{j}") or 0) for j in range(len(_SENTINELS))]
        j = max(range(len(counts)), key=counts.__getitem__)
        if counts[j] >= 3 and counts[j] * 2 > n_out:  # the repeated sentinel is most of what lies outside
            v = _SENTINELS[j]
            gap = xs.where(F.col(f"c{i}") != v).agg(F.min(F.abs(F.col(f"c{i}") - v))).first()[0]
            if gap is not None and gap > 3 * (q3 - q1):
                out.append(Finding(
                    check="placeholder_number", severity="warning", column=names[i], value=float(counts[j]),
                    message=f"holds {_show(v)} in {counts[j]:,} rows, far from all its other values: probably a "
                    "code for a missing value.",
                    suggestion=f"Replace {_show(v)} with an empty cell at the source, so it is read as missing."))
                continue
        share = n_out / n_fin
        if share > 0.01 or n_out <= 5e-6 * n_fin:
            continue
        out.append(Finding(
            check="outliers", severity="info", column=names[i], value=float(n_out),
            message=f"{n_out:,} value{'s' if n_out > 1 else ''} ({pct(share)}) {'lie' if n_out > 1 else 'lies'} far "
            f"outside the bulk ({q1:.4g} to {q3:.4g}); the most extreme is {float(agg[f'e{i}']):.4g}.",
            suggestion="Tree models are unaffected; check that they are real and not unit or typing errors."))
    return out


def class_counts(frame: Any, target: str, stats: TableStats) -> pd.Series | None:
    """Rows per class (by category key, so 3 and "3" are one), most common first; None for a number target."""
    counts = target_counts(frame, target, stats)
    if counts is None:
        return None
    merged: dict[str, int] = {}
    for value, c in counts:
        key = category_key(value)
        if key is not None:
            merged[key] = merged.get(key, 0) + c
    return pd.Series(merged, dtype="int64").sort_values(ascending=False, kind="stable")


def _target_checks(frame: Any, target: str, stats: TableStats, task_kind: str | None) -> list[Finding]:
    missing = stats.of_unlabelled if stats.of_rows else stats.n_rows - stats.filled[target]
    out = missing_target_findings(int(missing), target)
    if task_kind not in ("binary", "multiclass"):
        return out
    raw = target_counts(frame, target, stats)
    if raw is None:  # more values than classes can be: the local audit's verdict, counted exactly
        from pyspark.sql import functions as F

        n_distinct = int(frame.agg(F.countDistinct(qcol(target))).first()[0])
        return [*out, target_identifier_finding(target, n_distinct, stats.filled[target])]
    written = pd.Series(dict(raw), dtype="int64") if raw else pd.Series(dtype="int64")
    out += label_variant_findings(written.sort_values(ascending=False, kind="stable"), target)
    counts = class_counts(frame, target, stats)
    if counts is None or not len(counts):
        return out
    out += class_count_findings(counts, target, one_value=len(raw) == 1)
    if orderable(len(counts), int(counts.sum())):
        out += sorted_findings(label_runs(frame, target), len(counts), target)
    return out


def label_runs(frame: Any, target: str) -> int:
    """Runs of one class (by category key, missing labels passed over) in the rows' order: each file's rows in
    their order, the files by name, as the table is read in memory. One pass, no shuffle: each partition
    reports its stretches of one file (first and last label, changes between), put in order on the driver
    (a file split over several partitions has its splits in partition order)."""
    from pyspark.sql import functions as F

    rows = frame.select(qcol(target).alias("y"), F.input_file_name().alias("f"), F.spark_partition_id().alias("p"))
    schema = "p int, s int, f string, first string, last string, changes long"
    stretches = sorted(rows.mapInPandas(_stretches, schema).collect(), key=lambda r: (r["f"], r["p"], r["s"]))
    runs, last = 0, None
    for r in stretches:
        runs += int(r["changes"]) + (r["first"] != last)
        last = r["last"]
    return runs


def _stretches(batches: Any) -> Any:
    import numpy as np

    out: list[list[Any]] = []  # [p, s, f, first, last, changes]: one a stretch of one file in this partition
    for b in batches:
        codes, uniques = pd.factorize(b["y"], use_na_sentinel=True)
        keys = np.array([category_key(u) for u in uniques] + [None], dtype=object)[np.where(codes >= 0, codes, -1)]
        labelled = np.array([k is not None for k in keys], dtype=bool)
        keys, files, parts = keys[labelled], b["f"].to_numpy()[labelled], b["p"].to_numpy()[labelled]
        for start in np.flatnonzero(np.r_[True, files[1:] != files[:-1]]) if len(keys) else []:
            end = start + int(np.argmax(np.r_[files[start + 1:] != files[start], True])) + 1
            k = keys[start:end]
            changes = int((k[1:] != k[:-1]).sum())
            if out and out[-1][2] == files[start]:  # the stretch the last batch ended in goes on
                out[-1][5] += changes + int(out[-1][4] != k[0])
                out[-1][4] = k[-1]
            else:
                out.append([int(parts[start]), len(out), files[start], k[0], k[-1], changes])
    yield pd.DataFrame(out, columns=["p", "s", "f", "first", "last", "changes"])
