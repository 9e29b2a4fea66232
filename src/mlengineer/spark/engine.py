"""Which engine a command runs on: what the user said (``--engine local|spark``, ``engine:`` in a config),
or, left to ``auto``, Spark for a table too large for memory when the spark extra is installed, and a clear
message with the command to run when it is not.

The share of memory a table may take is ``data.load.MEMORY_SHARE`` (a quarter of what is available) to
audit, score or monitor it, and ``TRAIN_MEMORY_SHARE`` to train on it (training holds about five times the
table at its peak: measured in bench/RESULTS.md, "Spark at scale"); ``MLENGINEER_MEMORY_SHARE`` in the
environment sets both.
"""

from __future__ import annotations

import os
import re

from ..data.load import MEMORY_SHARE, memory_verdict
from ..errors import ConfigError, DataError
from .session import require_pyspark

__all__ = ["ENGINES", "TRAIN_MEMORY_SHARE", "choose_engine"]

ENGINES = ("auto", "local", "spark")
_REMOTE = re.compile(r"^(s3a?|hdfs|gs|abfss?|wasbs?|dbfs)://")


#: the share of available memory a table may take to be trained on in memory
TRAIN_MEMORY_SHARE = 0.15


def _share(command: str) -> float:
    raw = os.environ.get("MLENGINEER_MEMORY_SHARE")
    if not raw:
        return TRAIN_MEMORY_SHARE if command == "train" else MEMORY_SHARE
    try:
        share = float(raw)
    except ValueError:
        raise ConfigError(f"MLENGINEER_MEMORY_SHARE must be a number between 0 and 1; got {raw!r}.") from None
    if not 0 < share <= 1:
        raise ConfigError(f"MLENGINEER_MEMORY_SHARE must be a number between 0 and 1; got {raw!r}.")
    return share


def choose_engine(engine: str, data: str | None, *, command: str, db: str | None = None) -> tuple[str, str]:
    """("local" or "spark", a line to tell the user when the choice was made for them, else "")."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine must be {', '.join(ENGINES)}; got {engine!r}.")
    if engine != "auto":
        if engine == "spark" and db:
            raise ConfigError("--db reads through SQLAlchemy or DuckDB, not Spark: drop --engine spark, or name a "
                              "table in Spark's catalog with --sql alone.")
        return engine, ""
    if not data or db:
        return "local", ""
    if _REMOTE.match(data):
        require_pyspark()
        return "spark", f"{data} is remote storage: reading it with Spark."
    fits, why = memory_verdict(data, share=_share(command))
    if fits:
        return "local", ""
    try:
        require_pyspark()
    except ConfigError:
        raise DataError(f"{why}: too large to {command} in memory. Install Spark and run it there: pip install "
                        f"'mlengineer[spark]', then mlengineer {command} {data} --engine spark ...") from None
    return "spark", f"{why}: running on Spark (--engine local to insist on memory)."
