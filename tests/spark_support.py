"""What the Spark tests share: ONE local[2] session for the whole run, ONE standalone cluster (a master and
two workers started from pyspark's own scripts on 127.0.0.1) for the cluster tests, and small tables.

The fixtures ``spark`` and ``cluster`` are imported by each test_spark_* module (as ``spark_fixture`` and
``cluster_fixture``); the session and the cluster live in this module's globals, so however many modules
import them, one of each is started per run.
"""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

_SHARED: dict[str, Any] = {}


@pytest.fixture(scope="session", name="spark")
def spark_fixture() -> Any:
    """The run's one local[2] session (a warehouse folder of its own, for catalog tables)."""
    if "spark" not in _SHARED:
        from mlengineer.spark.session import get_spark

        warehouse = tempfile.mkdtemp(prefix="mlengineer-warehouse-")
        _SHARED["spark"] = get_spark("local[2]", {"spark.sql.warehouse.dir": warehouse,
                                                  "spark.sql.shuffle.partitions": "4"})
    return _SHARED["spark"]


@pytest.fixture(scope="session", name="cluster")
def cluster_fixture() -> Any:
    """The run's one standalone cluster: a master and two one-core workers on 127.0.0.1."""
    if "cluster" not in _SHARED:
        from mlengineer.spark.cluster import LocalCluster

        _SHARED["cluster"] = LocalCluster(2, cores=1, memory="2g").start()
        atexit.register(_SHARED["cluster"].stop)
    cl = _SHARED["cluster"]
    if cl.alive_workers() < 2:  # a test killed one: bring the cluster back to two workers
        cl.stop()
        from mlengineer.spark.cluster import LocalCluster

        cl = _SHARED["cluster"] = LocalCluster(2, cores=1, memory="2g").start()
        atexit.register(cl.stop)
    return cl


def customers(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Synthetic customers with a binary target that depends on numbers, a category and a date."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "premium"], n, p=[0.5, 0.3, 0.2])
    fee = np.round(rng.gamma(4, 15, n), 2)
    tenure = rng.integers(0, 72, n)
    signup = (pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")).strftime("%Y-%m-%d")
    logit = 0.03 * (fee - 60) - 0.05 * (tenure - 36) + np.where(plan == "premium", -1.0, 0.3)
    df = pd.DataFrame({
        "customer_id": [f"C{100000 + i}" for i in range(n)],
        "age": rng.integers(18, 80, n),
        "plan": plan,
        "monthly_fee": np.where(rng.random(n) < 0.05, np.nan, fee),
        "tenure_months": tenure,
        "region": rng.choice(["north", "south", "east", "west"], n),
        "signup_date": signup,
    })
    df["churn"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return df


def with_issues(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A table with one of each thing the audit looks for: a copy, a constant, a nearly constant column, a
    placeholder number, a mostly empty column, a leak, a column filled only for one outcome, missing
    targets and repeated rows."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"age": rng.integers(18, 80, n).astype(float), "plan": rng.choice(["a", "b", "c"], n),
                       "fee": rng.normal(50, 10, n), "const": "x",
                       "almost": np.where(rng.random(n) < 0.995, "k", "z"),
                       "income": np.where(rng.random(n) < 0.01, -999.0, rng.normal(1000, 100, n)),
                       "mostly": np.where(rng.random(n) < 0.7, None, "v")})
    df["y"] = np.where(df["fee"] + rng.normal(0, 5, n) > 52, "yes", "no")
    df["leak"] = np.where(df["y"] == "yes", "Y", "N")
    df["fee_copy"] = df["fee"]
    df.loc[:40, "y"] = None
    return pd.concat([df, df.iloc[:30]], ignore_index=True)


def write_parts(df: pd.DataFrame, folder: Path, parts: int = 3, fmt: str = "parquet") -> Path:
    """``df`` split into ``parts`` files in ``folder``, with a ``_SUCCESS`` marker as Spark writes."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(df)), parts)):
        part = df.iloc[chunk]
        if fmt == "parquet":
            part.to_parquet(folder / f"part-{i:05d}.parquet", index=False)
        else:
            part.to_csv(folder / f"part-{i:05d}.csv", index=False)
    (folder / "_SUCCESS").write_text("")
    return folder
