"""What ``mlengineer predict --engine spark`` says of its input, as local ``predict`` says it: the categories a
column holds that the model never saw, and numbers far outside the training range (``serving.batch.InputNotes``,
its rule and its words).

The rows are counted where they lie: each batch on the executors goes through the local ``InputNotes.add``, one
row a column comes back (how many rows hold such a value, the first one, and where the batch begins), and one
aggregation sums them per column, keeping the example of the batch that comes first in the input's order (the
file each row came from, then its position): the one a chunk-by-chunk local run meets first. Only those few rows
reach the driver.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pandas as pd

from ..serving.batch import InputNotes
from .batches import map_batches
from .read import qcol

__all__ = ["input_notes"]

_FILE = "__mlengineer_file__"
_ROW = "__mlengineer_row__"
_FIELDS = [("kind", "string"), ("column", "string"), ("rows", "long"), ("text", "string"), ("number", "double"),
           (_FILE, "string"), (_ROW, "long")]


def input_notes(sdf: Any, model: Any) -> list[str]:
    """The lines local ``predict`` says of the rows of the Spark DataFrame ``sdf`` (``InputNotes.lines``):
    none when nothing was found, or the model checks no column ``sdf`` holds."""
    from pyspark.sql import functions as F

    notes = InputNotes(model)
    columns = [c for c in dict.fromkeys([*notes.categories, *notes.ranges]) if c in sdf.columns]
    if not columns:
        return []
    blank = copy.deepcopy(notes)  # what each batch counts with, shipped in the closure

    def count(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            first = (batch[_FILE].iloc[0], int(batch[_ROW].iloc[0]))
            part = copy.deepcopy(blank)
            part.add(batch.drop(columns=[_FILE, _ROW]).reset_index(drop=True))
            rows: list[tuple[str, str, int, str | None, float | None]] = [
                ("unseen", c, n, str(v), None) for c, (n, v) in part.unseen.items()]
            rows += [("far", c, n, None, float(v)) for c, (n, v) in part.far.items()]
            if rows:
                out = pd.DataFrame(rows, columns=[name for name, _ in _FIELDS[:5]])
                yield out.assign(**{_FILE: first[0], _ROW: first[1]})

    with_ids = sdf.select(*[qcol(c) for c in columns], F.input_file_name().alias(_FILE),
                          F.monotonically_increasing_id().alias(_ROW))
    counted = map_batches(with_ids, count, _FIELDS)
    # the example of the batch first in the input's order: min of a struct compares its fields in turn
    found = counted.groupBy("kind", "column").agg(
        F.sum("rows").alias("rows"),
        F.min(F.struct(qcol(_FILE), qcol(_ROW), F.col("text"), F.col("number"))).alias("first")).collect()
    got = {(r["kind"], r["column"]): (int(r["rows"]), r["first"]) for r in found}
    for c in columns:  # in the model's order of columns, as a file read in one chunk has them
        if ("unseen", c) in got:
            n, first = got["unseen", c]
            notes.unseen[c] = (n, first["text"])
        if ("far", c) in got:
            n, first = got["far", c]
            notes.far[c] = (n, float(first["number"]))
    return notes.lines()
