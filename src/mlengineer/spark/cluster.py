"""A standalone Spark cluster on one machine, started from pyspark's own scripts: a master and N workers
on 127.0.0.1. For trying ``--spark-master`` without a cluster, for tests and for benchmarks.

    with LocalCluster(workers=2) as cluster:
        run(["mlengineer", "train", "big.parquet", "--engine", "spark", "--spark-master", cluster.master_url])

    python -m mlengineer.spark.cluster --workers 2     # prints the master URL; Ctrl-C stops it

Each worker runs in its own process group, so ``kill_worker`` takes its executors and Python workers down
with it, as losing a machine would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import ServingError
from .session import require_pyspark

__all__ = ["LocalCluster"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """A master and ``workers`` workers of ``cores`` cores and ``memory`` each, on this machine."""

    def __init__(self, workers: int = 2, *, cores: int = 1, memory: str = "2g", work_dir: str | Path | None = None,
                 host: str = "127.0.0.1") -> None:
        self.n_workers, self.cores, self.memory, self.host = workers, cores, memory, host
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="mlengineer-cluster-"))
        self.port, self.ui_port = _free_port(), _free_port()
        self.master: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes] | None] = []

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        pyspark_home = Path(require_pyspark().__file__).parent
        env = {**os.environ, "SPARK_HOME": str(pyspark_home), "SPARK_LOCAL_IP": self.host,
               "PYSPARK_PYTHON": sys.executable, "SPARK_NO_DAEMONIZE": "1"}
        log = (self.work_dir / f"{name}.log").open("ab")
        return subprocess.Popen([str(pyspark_home / "bin" / "spark-class"), *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 120.0) -> LocalCluster:
        """Start the master and the workers; return once every worker has registered."""
        self.master = self._start("master", ["org.apache.spark.deploy.master.Master", "--host", self.host,
                                              "--port", str(self.port), "--webui-port", str(self.ui_port)])
        for i in range(self.n_workers):
            folder = self.work_dir / f"worker-{i}"
            folder.mkdir(parents=True, exist_ok=True)
            self.workers.append(self._start(f"worker-{i}", [
                "org.apache.spark.deploy.worker.Worker", "--host", self.host, "--cores", str(self.cores),
                "--memory", self.memory, "--webui-port", str(_free_port()), "--work-dir", str(folder),
                self.master_url]))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.alive_workers() == self.n_workers:
                return self
            if self.master.poll() is not None:
                break
            time.sleep(0.5)
        self.stop()
        raise ServingError(f"The local Spark cluster did not come up within {timeout:g} s: see the logs in "
                           f"{self.work_dir}.")

    def state(self) -> dict[str, Any]:
        """The master's view of the cluster (its web UI's JSON): workers, running and finished apps."""
        with urllib.request.urlopen(f"http://{self.host}:{self.ui_port}/json/", timeout=5) as r:
            return dict(json.load(r))

    def alive_workers(self) -> int:
        try:
            return int(self.state().get("aliveworkers", 0))
        except (OSError, ValueError):
            return 0

    def kill_worker(self, i: int) -> None:
        """Kill worker ``i`` with its executors at once (SIGKILL to its process group): a lost machine."""
        proc = self.workers[i]
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.workers[i] = None

    def stop(self) -> None:
        """Stop the workers, then the master (their executors go with their process groups)."""
        for i in range(len(self.workers)):
            self.kill_worker(i)
        if self.master is not None and self.master.poll() is None:
            os.killpg(self.master.pid, signal.SIGTERM)
            try:
                self.master.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.master.pid, signal.SIGKILL)
                self.master.wait()
        self.master = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="A standalone Spark cluster on 127.0.0.1, until Ctrl-C.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--memory", default="2g")
    args = parser.parse_args(argv)
    with LocalCluster(args.workers, cores=args.cores, memory=args.memory) as cluster:
        print(f"Spark master: {cluster.master_url} (logs in {cluster.work_dir}); Ctrl-C stops it.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
