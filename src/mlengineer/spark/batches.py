"""``mapInPandas`` over columns of any name.

Spark resolves the columns a ``mapInPandas`` reads and writes by their plain names, so a column named ``a.b``
is taken for the field ``b`` of a struct ``a`` and the plan fails (``UNRESOLVED_COLUMN ... `a`.`b```).
``map_batches`` hands Spark safe aliases on both sides and the function the real names, so the plan, the
encoder and the bundle keep the names the table has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from .read import qcol

__all__ = ["map_batches"]

Batches = Iterator[pd.DataFrame]


def map_batches(frame: Any, func: Callable[[Batches], Batches], fields: list[tuple[str, str]]) -> Any:
    """``frame.mapInPandas(func, ...)`` whatever its columns and the output's are named: ``func`` gets
    batches with ``frame``'s names and yields frames whose columns are named as ``fields`` ((name, Spark type
    such as ``double``), in order); the result has those names."""
    from pyspark.sql import functions as F

    names = list(frame.columns)
    inner = [f"_m{i}" for i in range(len(names))]
    outer = {name: f"_o{i}" for i, (name, _) in enumerate(fields)}

    def renamed(batches: Batches) -> Batches:
        for out in func(b.set_axis(names, axis=1) for b in batches):
            yield out.rename(columns=outer)

    safe = frame.select(*[qcol(n).alias(a) for n, a in zip(names, inner, strict=True)])
    schema = ", ".join(f"{outer[name]} {kind}" for name, kind in fields)
    return safe.mapInPandas(renamed, schema=schema).select(*[F.col(outer[n]).alias(n) for n, _ in fields])
