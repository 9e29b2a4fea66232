"""Monitoring a table too large for memory: Spark reads it where it lies and draws a random sample of rows
to the driver (bounded, however large the table), and ``monitoring.run.monitor_model`` judges that sample
against the bundle's reference as it judges any new rows. Drift tests, quality checks and performance
estimates on 200,000 rows drawn at random say what they would say on all of them, within their intervals.

    model, result = monitor_spark("price-model", "s3a://bucket/new/", master="spark://head:7077")
"""

from __future__ import annotations

from typing import Any

from ..bundle.rows import read_marks
from ..monitoring.run import monitor_model
from .read import check_source, driver_sample, read_table
from .session import spark_session

__all__ = ["MONITOR_ROWS", "monitor_spark"]

#: rows drawn to the driver for monitoring
MONITOR_ROWS = 200_000


def monitor_spark(spec: Any, data: str | None, *, sql: str | None = None, master: str | None = None,
                  conf: dict[str, str] | None = None, rows: int = MONITOR_ROWS, seed: int = 0,
                  **options: Any) -> tuple[Any, dict[str, Any]]:
    """Monitor the model ``spec`` names on ``data`` (or ``sql``) read by Spark: ``options`` are
    ``monitor_model``'s (labels, key, time_column, since, until, window, tracking_uri, ...). The table is read
    as the model's training file was: its thousands dots and decimal commas, its text-role columns as written."""
    counted: dict[str, int] = {}

    def read(model: Any) -> Any:
        marks = read_marks(model.metadata)
        found = check_source(data, marks)
        with spark_session(master, conf) as spark:
            table = read_table(spark, data, sql=sql, found=found, marks=marks)
            counted["n"] = n = table.frame.count()
            sample = driver_sample(table.frame, n, rows, seed=seed)
            counted["drawn"] = len(sample)
            return sample

    model, result = monitor_model(spec, read=read, **options)
    n, drawn = counted["n"], counted["drawn"]
    where = data or "the query"
    result["current"]["source"] = (f"{where} on Spark ({drawn:,} of {n:,} rows drawn at random)"
                                   if drawn < n else f"{where} on Spark")
    result["current"]["rows_in_table"] = n
    return model, result
