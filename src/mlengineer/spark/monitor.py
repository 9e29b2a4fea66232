"""Monitoring a table too large for memory: Spark reads it where it lies and draws a random sample of rows
to the driver (bounded, however large the table), and ``monitoring.run.monitor_model`` judges that sample
against the bundle's reference as it judges any new rows. Drift tests, quality checks and performance
estimates on 200,000 rows drawn at random say what they would say on all of them, within their intervals.

    model, result = monitor_spark("price-model", "s3a://bucket/new/", master="spark://head:7077")
"""

from __future__ import annotations

from typing import Any

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
    ``monitor_model``'s (labels, key, time_column, since, until, window, tracking_uri, ...)."""
    found = check_source(data)
    with spark_session(master, conf) as spark:
        table = read_table(spark, data, sql=sql, found=found)
        n = table.frame.count()
        sample = driver_sample(table.frame, n, rows, seed=seed)
    model, result = monitor_model(spec, data=sample, **options)
    where = data or "the query"
    result["current"]["source"] = (f"{where} on Spark ({len(sample):,} of {n:,} rows drawn at random)"
                                   if len(sample) < n else f"{where} on Spark")
    result["current"]["rows_in_table"] = n
    return model, result
