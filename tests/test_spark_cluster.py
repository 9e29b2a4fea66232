"""A real standalone cluster: a master and two workers started from pyspark's own scripts on 127.0.0.1.
A training job (engine and master from a YAML config) and a scoring job run there through the CLI, and a
worker killed in the middle of the scoring job does not lose it: Spark reruns the lost tasks on the other
worker and the output is whole, in order, and equal to local prediction row for row."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from .conftest import run_cli  # noqa: E402
from .spark_support import cluster_fixture, customers, write_parts  # noqa: E402, F401

# a master, two workers and a driver on two cores: about three minutes, so 'make test-long' runs these (and
# 'make test' does not), keeping 'make test' within its 30 minutes
pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.long]


@pytest.fixture(scope="module")
def cluster_model(cluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A churn model trained on the cluster through the CLI, the engine and the master named only by
    ``engine: spark`` and ``spark_master:`` in a YAML config; and the folder it was trained on."""
    root = tmp_path_factory.mktemp("cluster")
    data = write_parts(customers(4000, seed=7), root / "customers", parts=4)
    config = root / "train.yaml"
    config.write_text(f"target: churn\nengine: spark\nspark_master: {cluster.master_url}\ntime_budget: 45\n"
                      "families: [xgboost]\nspark_conf:\n  spark.sql.shuffle.partitions: '4'\n")
    out = root / "churn-model"
    r = run_cli("train", str(data), "--config", str(config), "--out", str(out), "--no-track", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Training on Spark" in r.stdout and "xgboost_spark" in r.stdout
    return out, data


def test_training_on_the_cluster(cluster_model: tuple[Path, Path], cluster) -> None:
    import mlengineer

    out, _ = cluster_model
    meta = mlengineer.load(out).metadata
    assert meta["spark"]["master"] == cluster.master_url and meta["spark"]["workers"] == 2
    assert meta["validation_score"] > 0.7
    finished = [a for a in cluster.state()["completedapps"] if a["state"] == "FINISHED"]
    assert finished, "the training job ran on the cluster"


def test_a_worker_killed_mid_job_does_not_lose_the_job(cluster_model: tuple[Path, Path], cluster,
                                                      tmp_path: Path) -> None:
    import mlengineer

    out, _ = cluster_model
    big = write_parts(customers(120_000, seed=8), tmp_path / "big", parts=12)
    scored = tmp_path / "scored"  # no suffix: a folder of Parquet parts, in the input's order
    exe = Path(sys.executable).parent / "mlengineer"
    proc = subprocess.Popen([str(exe), "predict", str(out), str(big), "--engine", "spark", "--spark-master",
                             cluster.master_url, "--out", str(scored)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # wait until the job's executors run on both workers, then let it get going
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if cluster.state().get("activeapps") and _executors(cluster) >= 2:
                break
            time.sleep(0.5)
        time.sleep(4)
        assert proc.poll() is None, "the job ended before a worker could be killed: give it more rows"
        cluster.kill_worker(0)
        assert _wait_workers(cluster, 1), "the master never noticed the lost worker"
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert "Scored 120,000 rows" in stdout
    assert scored.is_dir() and len(list(scored.glob("part-*.parquet"))) >= 1
    got = pd.read_parquet(scored)
    expected = mlengineer.load(out).predict_frame(pd.read_parquet(big))
    assert len(got) == 120_000 and (got["prediction"] == expected["prediction"]).all()
    np.testing.assert_allclose(got["proba_yes"], expected["proba_yes"], rtol=1e-9)


def _executors(cluster) -> int:
    """Executors of running apps, as the master reports them per worker."""
    return sum(1 for w in cluster.state().get("workers", []) if w.get("coresused", 0) > 0)


def _wait_workers(cluster, n: int, timeout: float = 120) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cluster.alive_workers() == n:
            return True
        time.sleep(1)
    return False
