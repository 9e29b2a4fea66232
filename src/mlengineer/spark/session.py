"""A Spark session configured for mlengineer: workers use this interpreter, traffic stays on loopback, the
JVM's log stays quiet, and a cluster that does not answer is named within seconds rather than hung on.

    with spark_session("spark://head:7077", {"spark.executor.memory": "4g"}) as spark:
        ...  # stopped on the way out (when this block started it), errors or not
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, MLEngineerError

__all__ = ["JVM_LOG", "MASTER_TIMEOUT_S", "QUIET_LOGGERS", "get_spark", "parse_spark_conf", "spark_errors",
           "spark_session", "stop_spark"]

#: seconds to wait for a standalone master's port before saying it does not answer
MASTER_TIMEOUT_S = 5.0
_DEFAULTS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",  # mlengineer draws its own progress
    "spark.sql.session.timeZone": "UTC",  # dates read and written as the local path reads them
    # a standalone app whose master stops answering gives up after this rather than retrying for minutes
    "spark.network.timeout": "120s",
}
_LOG4J = """rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = warn
logger.hadoop.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop.level = error
"""
#: the JVM's own output (its log, native-library notes, the Python workers' output in local mode) goes to
#: this file instead of the terminal, where mlengineer says what happened in one line
JVM_LOG = Path(tempfile.gettempdir()) / f"mlengineer-spark-{os.getpid()}.log"
# no native BLAS on most machines: MLlib would print a failed dlopen of libblas on every start
_JAVA_OPTS = ("-Ddev.ludovic.netlib.blas.allowNative=false -Ddev.ludovic.netlib.lapack.allowNative=false "
              "-Ddev.ludovic.netlib.arpack.allowNative=false")


def require_pyspark() -> Any:
    """The pyspark module, or a one-line ConfigError naming the extra to install."""
    try:
        import pyspark
    except ImportError:
        raise ConfigError("Spark needs the spark extra: pip install 'mlengineer[spark]'.") from None
    return pyspark


def parse_spark_conf(items: list[str] | dict[str, str] | None) -> dict[str, str]:
    """``--spark-conf key=value`` options as a mapping (a mapping passes through)."""
    if isinstance(items, dict):
        return {str(k): str(v) for k, v in items.items()}
    conf: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--spark-conf takes KEY=VALUE (e.g. spark.executor.memory=4g); got {item!r}.")
        conf[key.strip()] = value.strip()
    return conf


def check_master(master: str, timeout: float = MASTER_TIMEOUT_S) -> None:
    """Fail fast, naming the URL, when a standalone master (``spark://host:port``) does not accept a
    connection: Spark itself would retry for a minute and more before giving up."""
    m = re.fullmatch(r"spark://([^:/]+):(\d+)/?", master.strip())
    if master.startswith("spark://") and m is None:
        raise ConfigError(f"--spark-master {master!r} is not a standalone master URL: use spark://HOST:PORT.")
    if m is None:
        return
    try:
        with socket.create_connection((m[1], int(m[2])), timeout=timeout):
            return
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__).lower()
        raise ConfigError(f"The Spark master {master} does not answer ({why} within {timeout:g} s): start it, "
                          "or check --spark-master.") from None


def _log_config() -> str:
    path = Path(tempfile.gettempdir()) / "mlengineer-spark-log4j2.properties"
    if not path.exists() or path.read_text() != _LOG4J:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(_LOG4J)
        tmp.replace(path)
    return str(path)


def get_spark(master: str | None = None, conf: dict[str, str] | None = None, app_name: str = "mlengineer") -> Any:
    """The active Spark session, or a new one on ``master`` (default ``local[*]``) with ``conf`` on top of
    mlengineer's defaults."""
    require_pyspark()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    _quiet_loggers()
    active = SparkSession.getActiveSession()
    if active is not None and (master is None or active.sparkContext.master == master):
        return active
    if master:
        check_master(master)
    settings = {**_DEFAULTS, "spark.driver.host": os.environ["SPARK_LOCAL_IP"], **(conf or {})}
    java_opts = f"-Dlog4j2.configurationFile=file:{_log_config()} {_JAVA_OPTS}"
    for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
        settings[key] = f"{settings[key]} {java_opts}" if key in settings else java_opts
    builder = SparkSession.builder.appName(app_name).master(master or "local[*]")
    for key, value in settings.items():
        builder = builder.config(key, value)
    if settings.get("spark.sql.catalogImplementation") == "hive":
        builder = builder.enableHiveSupport()
    start = JVM_LOG.stat().st_size if JVM_LOG.exists() else 0
    try:
        with _stderr_to(JVM_LOG):  # the JVM starts now and keeps the stderr it is given
            spark = builder.getOrCreate()
    except Exception as e:  # Java missing, port trouble: name it rather than dump a JVM trace
        raise ConfigError(f"Cannot start Spark on {master or 'local[*]'}: {_start_failure(e, start)} (Spark's "
                          f"log: {JVM_LOG})") from None
    if "spark.sql.shuffle.partitions" not in settings:
        # Spark's 200 is too many for local[2] and too few for a 1,000-core cluster: three per core, at
        # least 8 (adaptive execution merges the small ones)
        spark.conf.set("spark.sql.shuffle.partitions", str(max(8, 3 * spark.sparkContext.defaultParallelism)))
    return spark


#: Python loggers that would print what mlengineer says in one line: py4j's chatter, and PySpark's JSON records of
#: a failed query with its Java stack trace (the DataFrame API's and SQL's: a bad --sql logs through the latter)
QUIET_LOGGERS = ("pyspark", "py4j", "DataFrameQueryContextLogger", "SQLQueryContextLogger", "XGBoost-PySpark")


def _quiet_loggers() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _start_failure(e: BaseException, start: int) -> str:
    """Why a session did not start: what the JVM logged since ``start`` says more than py4j's exception
    ("Java gateway process exited", "stopped SparkContext")."""
    try:
        with JVM_LOG.open("rb") as f:
            f.seek(start)
            log = f.read(1 << 20).decode("utf-8", errors="replace")
    except OSError:
        log = ""
    if "Failed to connect to master" in log:
        return ("the master did not take the application (is that port a Spark master's? 7077 by default; "
                "8080 is its web page)")
    died = re.search(r'Exception in thread "main" [\w.$]+: (.+)', log)
    return died[1].strip() if died else first_line(e)


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """File descriptor 2 pointed at ``path`` for the block: processes started inside (the JVM) keep it,
    this process gets its own stderr back."""
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def stop_spark(spark: Any) -> None:
    """Stop ``spark`` and forget it, so that the next ``get_spark`` starts afresh."""
    with contextlib.suppress(Exception):  # stopping a session whose JVM is already gone
        spark.stop()


@contextlib.contextmanager
def spark_session(master: str | None = None, conf: dict[str, str] | None = None) -> Iterator[Any]:
    """A session for one command: errors from Spark become one-line mlengineer errors, and a session
    started here is stopped on the way out, whatever happens. A session already running is left running."""
    require_pyspark()
    from pyspark.sql import SparkSession

    started = SparkSession.getActiveSession() is None
    spark = None
    try:
        with spark_errors():
            spark = get_spark(master, conf)
            yield spark
    finally:
        if started and spark is not None:
            stop_spark(spark)


def first_line(e: BaseException, limit: int = 300) -> str:
    """An exception's first meaningful line: no JVM stack frames, no py4j preamble, no Java class names. A
    wrapper's line that says nothing ("Exception thrown in awaitResult:") gives way to the first line below
    it that names Spark's error class ("[FAILED_READ_FILE...] ...")."""
    lines = []
    for raw in str(e).strip().splitlines():
        line = raw.strip()
        if line.startswith("at ") or line.startswith("== "):
            continue
        line = re.sub(r"^An error occurred while calling \S+\.\s*", "", line)
        line = re.sub(r"^(Caused by:\s*)?:?\s*([\w$]+\.)+[\w$]*(Exception|Error):\s*", "", line)
        if line:
            lines.append(line)
    if not lines:
        return type(e).__name__
    if lines[0].endswith(":"):  # a wrapper announcing its cause
        return next((ln for ln in lines if _ERROR_CLASS.match(ln)), lines[0])[:limit]
    return lines[0][:limit]


_ERROR_CLASS = re.compile(r"\[[A-Z_.]+\]")


_NOT_FOUND = re.compile(r"\[PATH_NOT_FOUND\] Path does not exist: (\S+?)\.?(\s|$)")
_BAD_TYPE = re.compile(r"\[(PARQUET_TYPE_ILLEGAL|UNSUPPORTED_TIME_TYPE|PARQUET_TYPE_NOT_SUPPORTED|"
                       r"UNSUPPORTED_DATATYPE)\]\s*(.*?)(SQLSTATE|$)")


def explain_spark_error(e: BaseException) -> MLEngineerError | None:
    """A one-line mlengineer error for a failure that Spark reports about the data, None for others."""
    text = str(e)
    if (m := _NOT_FOUND.search(text)) is not None:
        return DataError(f"{m[1].removeprefix('file:')!r} does not exist: check the path.")
    if (m := _BAD_TYPE.search(text)) is not None:
        return DataError(f"Spark cannot read a column of this data: {m[2].strip().rstrip('.')}. Write that column "
                         "as a plain type (numbers, text, date, timestamp in microseconds), or drop it at the source.")
    cause = re.search(r"(SchemaError|DataError|ConfigError|ModelError): (.+)", text)
    if cause is not None:  # one of ours, raised inside a task on a worker
        from .. import errors

        kind = getattr(errors, cause[1])
        return kind(cause[2].strip().splitlines()[0])
    return None


@contextlib.contextmanager
def spark_errors() -> Iterator[None]:
    """Spark's exceptions (from the JVM or from a task) as one-line mlengineer errors."""
    try:
        yield
    except MLEngineerError:
        raise
    except Exception as e:
        module = type(e).__module__ or ""
        if not (module.startswith(("pyspark", "py4j")) or "Spark" in type(e).__name__):
            raise
        known = explain_spark_error(e)
        if known is not None:
            raise known from None
        raise DataError(f"Spark failed: {first_line(e)} (Spark's log: {JVM_LOG})") from None
