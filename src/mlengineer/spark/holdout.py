"""The held-out rows of Spark training, marked on the cluster by the rules the local split follows
(``training.validation.split_keys``): the latest rows by ``time_column``, whole groups by ``group_column``, else
rows at random; rows that repeat another exactly (every cleaned feature and the target) on the side of their
copies where the table has at least ``FEW_DISTINCT`` distinct rows and ``DISTINCT_SHARE`` of its rows are
distinct; and under a time column, each group (of the user's, or of copies) whole, on the side of its first time.

A row's copies are found by a 64-bit hash of the columns the cleaning plan keeps once cleaned (``cleaned_key``: the
plan's own ``apply`` in a pandas UDF, so rows equal only after cleaning are copies, as in memory), counted by one
aggregation (which also counts the weight column's problems, ``Tally``); the split is a hash of the key that must
stay whole, or a window's first time per key, so the same rows come back held out in every later pass and nothing
but counts reaches the driver. Groups that copies link are joined on the driver from at most ``MAX_LINKED`` links;
past that each group stays whole unjoined, and the split's words say so (``unjoined_words``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..data.clean import CleaningPlan, Conform, DropMissingTarget, conform_column
from ..data.conform import is_missing
from ..data.schema import Schema
from ..data.split import DISTINCT_SHARE, FEW_DISTINCT, merge_groups
from ..data.values import parse_datetime
from ..errors import DataError
from ..training.config import TrainConfig
from ..training.validation import split_words
from .read import qcol
from .stats import is_filled, is_number_type, number_expr, type_of

__all__ = ["MAX_LINKED", "MAX_VALID_ROWS", "SparkSplit", "Tally", "cleaned_key", "content_key", "has_target", "spark_split",
           "split_column", "time_key", "unjoined_words"]

#: the held-out rows are capped at this many: more adds time to every boosting round, not accuracy
MAX_VALID_ROWS = 1_000_000
#: at most this many (group, copy) links between groups that copies join are brought to the driver to merge
MAX_LINKED = 100_000


@dataclass(frozen=True)
class SparkSplit:
    """The held-out mark (a column of ``frame``; it may hold a window, so select it rather than filter by it),
    the split's words, and what ``split_words`` adds to them."""

    valid: Any
    words: str
    copies: int
    user_groups: bool
    timed: bool
    #: rows repeating another exactly whose groups were left unjoined (more than ``MAX_LINKED`` links): each
    #: group whole, but a copy may lie on the other side from one in another group
    unjoined: int = 0
    #: the row of the one aggregation over the labelled rows (``spark_split``'s ``tally`` columns in it), or None
    counts: Any = None

    def strategy(self, n_valid: int, *, classification: bool) -> str:
        """The validation strategy in the local run's words, with the held-out rows counted."""
        return split_words(f"{self.words}, on Spark ({n_valid:,} rows)", copies=self.copies,
                           user_groups=self.user_groups, timed=self.timed, classification=classification
                           ) + unjoined_words(self.unjoined)


def unjoined_words(n: int) -> str:
    """What the split says of ``n`` copies whose groups were too many to join (none: nothing)."""
    if not n:
        return ""
    return (f"; {n:,} row{'s' if n > 1 else ''} repeating another exactly kept with their own group only: the "
            f"groups copies link were not joined (more than {MAX_LINKED:,} links), so a copy may lie on the other "
            "side from one in another group")


def split_column(frame: Any, config: TrainConfig, n_rows: int, *, schema: Schema | None = None,
                 plan: CleaningPlan | None = None) -> tuple[Any, str]:
    """``spark_split``'s mark and its words (with what ``split_words`` adds)."""
    s = spark_split(frame, config, n_rows, schema=schema, plan=plan)
    return s.valid, split_words(s.words, copies=s.copies, user_groups=s.user_groups, timed=s.timed,
                                classification=False) + unjoined_words(s.unjoined)


class Tally(Protocol):
    """More aggregations over the labelled rows (``aggs``), made by the split's own pass, and what reads their
    row (``judge``: it may refuse the table)."""

    aggs: list[Any]

    def judge(self, row: Any) -> None: ...


def spark_split(frame: Any, config: TrainConfig, n_rows: int, *, schema: Schema | None = None,
                plan: CleaningPlan | None = None, tally: Tally | None = None) -> SparkSplit:
    """The held-out mark, computed on the cluster. With ``plan`` (the fitted cleaning plan), rows repeating
    another exactly are kept on the side of their copies as in memory. Times written as text are read with the
    format ``schema`` found for the column, as the plan reads them; a row without one (empty, or text no time)
    trains, as in memory. ``tally``'s aggregations are made by the pass that counts the copies (with ``plan``;
    else by one of their own) and judged before the split goes on."""
    from pyspark.sql import functions as F

    share = min(config.holdout_fraction, max(0.01, MAX_VALID_ROWS / max(n_rows, 1)))
    target = config.target
    labelled = has_target(frame, plan, target) if plan is not None and target in frame.columns else F.lit(True)
    also = tally.aggs if tally is not None else []
    key, repeats, kept, counts = (_copies(frame, plan, target, labelled, also) if plan is not None
                                  else (None, 0, False, frame.where(labelled).agg(*also).first() if also else None))
    if tally is not None:
        tally.judge(counts)
    copies, unjoined = (repeats if kept else 0), 0
    # a hash of the row's values rather than rand(): the same rows come back held out in every later pass; copies
    # of a row fall on one side only where they are kept together (else the row's place tells them apart)
    values = [e for c in frame.columns for e in (qcol(c), qcol(c).isNull())]
    own = F.xxhash64(F.lit(config.seed), *values)
    row = F.xxhash64(own, F.monotonically_increasing_id()) if repeats and not kept else own
    unit = None  # what stays whole: the user's group (a row without a key alone), copies, or both joined
    if config.group_column:
        g = qcol(config.group_column)
        unit = F.when(g.isNull(), own).otherwise(F.xxhash64(g))
        joined = _joined(frame, unit, key, labelled) if copies else unit
        unit, copies, unjoined = (unit, 0, copies) if joined is None else (joined, copies, 0)
    elif copies and key is not None:
        unit = F.xxhash64(F.lit(config.seed), key)
    user_groups, timed = config.group_column is not None, config.time_column is not None
    if config.time_column:
        valid, words = _time_split(frame, config, schema, share, unit, labelled)
        return SparkSplit(valid, words, copies, user_groups, timed, unjoined, counts)
    if config.group_column:  # a row without a key is a group of its own: its place tells its copies apart
        bucket = F.abs(F.when(qcol(config.group_column).isNull() & F.lit(not copies), row).otherwise(unit) % 10_000)
        return SparkSplit(bucket < int(share * 10_000), f"grouped holdout: {share:.0%} of the "
                          f"{config.group_column!r} groups", copies, user_groups, timed, unjoined, counts)
    return SparkSplit(F.abs((row if unit is None else unit) % 10_000) < int(share * 10_000),
                      f"holdout of {share:.0%} of rows at random (by row hash)", copies, user_groups, timed, unjoined,
                      counts)


def _time_split(frame: Any, config: TrainConfig, schema: Schema | None, share: float, unit: Any,
                labelled: Any) -> tuple[Any, str]:
    """The latest ``share`` of the labelled rows by the time column; with ``unit``, each unit's rows take its
    first time (a window per unit), so a unit is held out whole or not at all."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    name = str(config.time_column)
    col = schema[name] if schema is not None and name in schema else None
    when = time_key(frame, name, col.datetime_format if col is not None else None)
    if unit is not None:
        when = F.min(F.when(labelled, when)).over(Window.partitionBy(unit))
    row = (frame.select(when.alias("w"), labelled.alias("l"), qcol(name).cast("string").alias("e")).where("l")
           .agg(F.count("w").alias("n"), F.percentile_approx("w", 1 - share, 1000).alias("cut"),
                F.first("e", ignorenulls=True).alias("e")).first())
    if not row["n"]:
        example = f" (e.g. {row['e']!r})" if row["e"] is not None else ""
        raise DataError(f"The --time-column {name!r} holds no dates or times{example} to order the rows by: "
                        "name a column of dates, times or numbers that grow with time.")
    if row["n"] < 2:
        raise DataError("The time column has fewer than 2 rows with a time: a time-ordered split needs them.")
    return F.coalesce(when >= F.lit(row["cut"]), F.lit(False)), (
        f"time-ordered holdout: the latest {share:.0%} of rows by {name!r}")


def content_key(frame: Any, columns: list[str]) -> Any:
    """A 64-bit hash of a row's values in ``columns`` (missing values alike, NaN as null, as pandas sees them):
    rows that repeat each other there share it."""
    from pyspark.sql import functions as F

    parts = []
    for c in columns:
        x = qcol(c)
        if type_of(frame, c) in ("float", "double"):
            x = F.nanvl(x, F.lit(None).cast(type_of(frame, c)))
        parts += [x, x.isNull()]  # null adds nothing to the hash: the flag tells (null, 1) from (1, null)
    return F.xxhash64(*parts)


def cleaned_key(frame: Any, plan: CleaningPlan, columns: list[str]) -> Any:
    """A 64-bit key of a row's values in ``columns`` once cleaned by ``plan`` (its ``Conform`` step, not strict: a
    value unreadable as its role's type is missing, as in training): rows that training in memory calls copies
    (``data.split.row_content_keys`` of the cleaned rows: "1.0" and "1" in a number column, " a" and "a" in a
    category, "Yes" and "yes" in a yes/no column) share it. Columns that cleaning leaves as they are (the target,
    numbers stored as numbers, whole numbers as categories) are hashed by Spark; the others are cleaned by the
    plan's own ``conform_column`` on the executors, in a pandas UDF, and hashed there, each in one type whatever
    a batch holds, so batches agree."""
    from pyspark.sql import functions as F

    conform = next((step for step in plan.steps if isinstance(step, Conform)), None)
    roles = conform.roles if conform is not None else {}
    cleaned = [c for c in columns if not _as_is(type_of(frame, c), roles.get(c))]
    direct = [c for c in columns if c not in cleaned]
    if not cleaned or conform is None:
        return content_key(frame, columns)

    def keys(batch: pd.DataFrame) -> pd.Series:
        clean = {c: _canonical(conform_column(batch[a], roles[c], conform.datetime_formats.get(c), name=c,
                                              placeholders=conform.placeholders_of(c)))
                 for c, a in zip(cleaned, batch.columns, strict=True)}
        hashed = pd.util.hash_pandas_object(pd.DataFrame(clean, index=batch.index), index=False)
        return pd.Series(hashed.to_numpy(dtype=np.uint64).view(np.int64), index=batch.index)

    struct = F.struct(*[qcol(c).alias(f"c{i}") for i, c in enumerate(cleaned)])
    udf = F.pandas_udf(keys, "long")(struct)  # type: ignore[call-overload]
    return F.xxhash64(content_key(frame, direct), udf) if direct else udf


def _as_is(kind: str, role: str | None) -> bool:
    """Whether cleaning leaves a column of Spark type ``kind`` and role ``role`` equal where its values are: no
    role (the target), numbers or yes/no values stored as numbers or booleans, whole numbers as categories."""
    if role is None:
        return True
    if role in ("numeric", "boolean"):
        return is_number_type(kind) or kind == "boolean"
    return role == "categorical" and kind in ("tinyint", "smallint", "int", "bigint")


def _canonical(s: pd.Series) -> pd.Series:
    """``s`` in one type for every batch: numbers (a target read as integers in one batch and as doubles, for a
    null, in another) as doubles, times as their integers, anything else as objects with None for missing."""
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return pd.Series(s.to_numpy(dtype=np.float64, na_value=np.nan), index=s.index)
    if pd.api.types.is_datetime64_any_dtype(s):
        return pd.Series(pd.to_datetime(s).to_numpy(dtype="datetime64[ns]").view(np.int64), index=s.index)
    values = s.to_numpy(dtype=object, na_value=None)
    return pd.Series([None if is_missing(v) else v for v in values], index=s.index, dtype=object)


def _copies(frame: Any, plan: CleaningPlan, target: str, labelled: Any,
            also: list[Any]) -> tuple[Any, int, bool, Any]:
    """(the copy key of each row, how many labelled rows repeat another, whether copies are kept together, the
    aggregation's row, with ``also``'s columns): by ``data.split.copy_groups``' rule, where at least
    ``FEW_DISTINCT`` rows are distinct, and ``DISTINCT_SHARE``. The key is of the cleaned values, as in memory
    (``cleaned_key``); where a column the plan reads is not in ``frame``, of the raw ones (``content_key``)."""
    from pyspark.sql import functions as F

    columns = list(dict.fromkeys([*plan.feature_columns, target]))
    present = [c for c in columns if c in frame.columns]
    key = cleaned_key(frame, plan, columns) if present == columns else content_key(frame, present)
    row = frame.where(labelled).agg(F.count(F.lit(1)).alias("n"), F.count_distinct(key).alias("d"), *also).first()
    n, distinct = int(row["n"]), int(row["d"])
    return key, n - distinct, distinct < n and distinct >= FEW_DISTINCT and distinct >= DISTINCT_SHARE * n, row


def _joined(frame: Any, group: Any, key: Any, labelled: Any) -> Any | None:
    """Each row's group joined with the groups its copies are in (``data.split.merge_groups``): the groups no copy
    links keep their key; the links (distinct group and copy pairs whose copy is in several groups, counted on the
    cluster) are joined on the driver. None where more than ``MAX_LINKED`` links would come."""
    from pyspark.sql import functions as F

    pairs = frame.where(labelled).select(group.alias("g"), key.alias("k")).distinct()
    spanning = pairs.groupBy("k").count().where(F.col("count") > 1).select("k")
    links = pairs.join(spanning, "k").limit(MAX_LINKED + 1).toPandas()
    if len(links) > MAX_LINKED:
        return None
    if not len(links):
        return group
    label = merge_groups(links["g"].to_numpy(), pd.factorize(links["k"])[0])
    first = links.groupby(label)["g"].transform("min").to_numpy()  # each joined group named by its smallest key
    joined = dict(zip(links["g"].to_numpy(dtype=np.int64).tolist(), first.astype(np.int64).tolist(), strict=True))
    to = F.create_map(*[F.lit(v) for kv in joined.items() for v in kv])
    return F.coalesce(to[group], group)


def has_target(frame: Any, plan: CleaningPlan, target: str) -> Any:
    """Whether a row has a target, as the plan's ``DropMissingTarget`` judges it (NaN and its placeholders for
    "no target" included)."""
    from pyspark.sql import functions as F

    c, kind = qcol(target), type_of(frame, target)
    has = is_filled(frame, target)
    drop = next((s for s in plan.steps if isinstance(s, DropMissingTarget)), None)
    if drop is not None and drop.tokens and kind == "string":
        has = has & ~F.lower(F.trim(c)).isin(list(drop.tokens))
    return has


def time_key(frame: Any, name: str, fmt: str | None) -> Any:
    """The column ``name`` as sortable numbers, null where a row has no time: numbers as they are, dates and
    timestamps as microseconds, text parsed on the workers by ``parse_datetime`` with the format ``fmt``
    (what cleaning reads it with: unreadable text is no time, not an error)."""
    from pyspark.sql import functions as F

    kind, t = type_of(frame, name), qcol(name)
    if kind.startswith(("date", "timest")):
        return F.unix_micros(t.cast("timestamp")).cast("double")
    if kind != "string":
        return number_expr(frame, name)

    def micros(s: pd.Series) -> pd.Series:
        parsed = pd.Series(parse_datetime(s, fmt)).to_numpy(dtype="datetime64[us]")
        return pd.Series(np.where(np.isnat(parsed), np.nan, parsed.astype(np.int64)), index=s.index)

    return F.pandas_udf(micros, "double")(t)  # type: ignore[call-overload]
