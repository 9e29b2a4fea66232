"""A Spark session configured for mlengineer: workers use this interpreter, traffic stays on loopback."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import ConfigError

__all__ = ["get_spark"]


def _require_pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise ConfigError("Spark needs the spark extra: pip install 'mlengineer[spark]'.") from None
    return pyspark


def get_spark(master: str | None = None, app_name: str = "mlengineer") -> Any:
    """The active Spark session, or a new one on ``master`` (default ``local[*]``)."""
    _require_pyspark()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and (master is None or active.sparkContext.master == master):
        return active
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master or "local[*]")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.driver.host", os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"))
    )
    try:
        spark = builder.getOrCreate()
    except Exception as e:  # Java missing, port trouble: name it rather than dump a JVM trace
        raise ConfigError(f"Cannot start Spark on {master or 'local[*]'}: {str(e).splitlines()[0][:200]}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark
