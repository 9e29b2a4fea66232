"""BLAS's own threads against one, for the commands that work on a trained model (issue 16).

    .venv/bin/python bench/blas_commands.py                        # bike_sharing and adult, 60 s bundles
    .venv/bin/python bench/blas_commands.py --tasks adult --repeats 3 --busy busy --only predict,monitor
    .venv/bin/python bench/blas_commands.py --steps --repeats 5   # their work alone, in one process

Each task of ``../shared/bench`` (or ``synthetic_text``, a table with a column of free text) is trained once
with the Python API (kept in ``--folder``, reused on later runs), then each command runs whole, as a user runs it
(``mlengineer predict``, ``predict --interval``, ``evaluate``, ``calibrate``, ``monitor``, ``explain``, ``report``
on the task's test rows), with BLAS at its own threads (``OPENBLAS_NUM_THREADS`` = the cores, OpenBLAS's default)
and at one (``OPENBLAS_NUM_THREADS=1``; ``--settings cores,none,1`` adds a column with no setting at all), on
quiet cores and beside one busy process (``python -c 'while 1: pass'``). Seconds per whole run on the clock and
of CPU (all the run's threads), the median and the range; a table per task. ``--steps`` times the commands' work
alone in this process (predicting ``--copies`` times the test rows, evaluating them, explaining 50 rows, a text
column's drift), BLAS's threads set by threadpoolctl and as a user's setting, which the commands keep.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent.parent / "shared" / "bench"
CLI = str(Path(sys.executable).with_name("mlengineer"))
#: the settings a user may have made, cleared before each run
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: the runs compared: a column's title and the OPENBLAS_NUM_THREADS they run with (None: none set, what a user
#: gets). OpenBLAS's own default is a thread a core, so ``cores`` is BLAS left as it is
SETTINGS = {"cores": (f"OPENBLAS_NUM_THREADS={os.cpu_count()} (BLAS's own default)", str(os.cpu_count())),
            "none": ("none set", None), "1": ("OPENBLAS_NUM_THREADS=1", "1")}


def text_task(rows: int = 4000) -> tuple[dict[str, str], Any, Any]:
    """A two-class table with a column of free text (``synthetic_text``): its drift is measured by a domain
    classifier (a logistic regression on TF-IDF), the one solver that ``monitor`` runs. The test rows' words are
    drawn a little differently."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(30_000)])

    def table(n: int, shift: int) -> Any:
        x = rng.normal(size=n)
        text = [" ".join(vocab[(rng.zipf(1.3, size=30) + shift) % len(vocab)]) for _ in range(n)]
        return pd.DataFrame({"note": text, "x": x, "y": np.where(x + rng.normal(size=n) > 0, "yes", "no")})

    return {"target": "y", "task": "binary"}, table(rows, 0), table(rows // 2, 7)


def bundle(task: str, folder: Path, budget: float) -> tuple[Path, Path, Path]:
    """The task's bundle (trained here the first time), its test rows and 50 of them to explain."""
    sys.path.insert(0, str(HERE))
    from accuracy import read_task

    out = folder / task
    test, head = folder / f"{task}-test.csv", folder / f"{task}-head.csv"
    if not (out / "MLmodel").exists():
        import mlengineer

        spec, train, test_df = text_task() if task == "synthetic_text" else read_task(BENCH / task)
        model = mlengineer.train(train, spec["target"], task=spec["task"], time_budget=budget, seed=0, track=False)
        model.save(out)
        test_df.to_csv(test, index=False)
        members = ", ".join(m["model"] for m in model.metadata.get("ensemble", []))
        print(f"{task}: trained in {budget:g} s, {len(train):,} rows; ensemble {members}", flush=True)
    if not head.exists():
        import pandas as pd

        target = "y" if task == "synthetic_text" else json.loads((BENCH / task / "task.json").read_text())["target"]
        pd.read_csv(test, nrows=50).drop(columns=[target]).to_csv(head, index=False)
    return out, test, head


def commands(model: Path, test: Path, head: Path, scratch: Path) -> dict[str, list[str]]:
    calibrated = scratch / "calibrated"
    return {
        "predict": ["predict", str(model), str(test), "-o", str(scratch / "p.csv")],
        "predict --interval 0.9": ["predict", str(model), str(test), "--interval", "0.9", "-o", str(scratch / "i.csv")],
        "evaluate": ["evaluate", str(model), str(test), "--json"],
        "calibrate": ["calibrate", str(model), "--data", str(test), "--out", str(calibrated)],
        "monitor": ["monitor", str(model), "--data", str(test), "--json"],
        "explain (50 rows)": ["explain", str(model), str(head), "--limit", "0", "-o", str(scratch / "e.json")],
        "report": ["report", str(model), "--data", str(test), "-o", str(scratch / "r.html")],
    }


def run(args: list[str], threads: str | None, scratch: Path) -> tuple[float, float]:
    """Seconds of one whole run of ``mlengineer ARGS``, BLAS's threads set to ``threads`` (None: no setting): on the
    clock, and of CPU time (all its threads'; BLAS's threads waiting for each other spin, and count)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", MLFLOW_TRACKING_URI=f"sqlite:///{scratch / 'mlruns.db'}")
    if threads is not None:
        env["OPENBLAS_NUM_THREADS"] = threads
    shutil.rmtree(scratch / "calibrated", ignore_errors=True)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run([CLI, *args], env=env, cwd=scratch, capture_output=True, text=True)
    took = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"mlengineer {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return took, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime


def spread(times: list[float]) -> str:
    if len(times) == 1:
        return f"{times[0]:.2f}"
    return f"{statistics.median(times):.2f} ({min(times):.2f}-{max(times):.2f})"


def measure(task: str, cmds: dict[str, list[str]], settings: list[str], repeats: int, busy: bool,
            scratch: Path) -> None:
    hog = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if busy else None
    try:
        print(f"\n{task}, {'beside one busy process' if busy else 'quiet'}, {repeats} runs each, seconds on the clock "
              f"and of CPU (median, range), load average {os.getloadavg()[0]:.1f} at the start\n", flush=True)
        print("| command | " + " | ".join(SETTINGS[s][0] for s in settings) + " |\n" + "|---" * (len(settings) + 1) + "|")
        for name, args in cmds.items():
            times: dict[str, list[tuple[float, float]]] = {s: [] for s in settings}
            run(args, "1", scratch)  # a first run untimed: files read into the page cache, caches of compiled code
            for _ in range(repeats):
                for s in settings:  # interleaved: a change of load falls on all of them
                    times[s].append(run(args, SETTINGS[s][1], scratch))
            cells = [f"{spread([w for w, _ in times[s]])}; CPU {spread([c for _, c in times[s]])}" for s in settings]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def steps(task: str, model_dir: Path, test: Path, head: Path, repeats: int, busy: bool, copies: int) -> None:
    """The commands' work without their start (imports, reading the bundle): in this process, BLAS's threads set
    by threadpoolctl and as a user's setting (which the hold keeps), a thread a core against one."""
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    import mlengineer
    from mlengineer.evaluation.evaluate import evaluate
    from mlengineer.explain.contributions import explain_rows
    from mlengineer.monitoring.columns import Prepared
    from mlengineer.monitoring.drift import compare_column

    model, rows = mlengineer.load(model_dir), pd.concat([pd.read_csv(test)] * copies, ignore_index=True)
    few = pd.read_csv(head)
    _, ref, cur = text_task()  # the same words on both sides: the domain classifier's longest fits
    texts = [Prepared("note", "text", "text", np.asarray(f["note"], dtype=object)) for f in (ref, ref.sample(2000))]
    work = {f"predict ({len(rows):,} rows)": lambda: model.predict(rows),
            f"evaluate ({len(rows):,} rows)": lambda: evaluate(model, rows),
            "explain (50 rows)": lambda: explain_rows(model, few, top=5),
            "monitor: a text column's drift (4,000 / 2,000 rows)": lambda: compare_column(*texts)}
    hog = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if busy else None
    try:
        print(f"\n{task}, in process, {'beside one busy process' if busy else 'quiet'}, {repeats} runs each, seconds on "
              f"the clock and of CPU (median, range), load average {os.getloadavg()[0]:.1f}\n\n| step | BLAS "
              f"{os.cpu_count()} threads | BLAS 1 thread |\n|---|---|---|", flush=True)
        for name, fn in work.items():
            fn()  # a first run untimed
            times: dict[int, list[tuple[float, float]]] = {os.cpu_count() or 1: [], 1: []}
            for _ in range(repeats):
                for n, got in times.items():
                    os.environ["OPENBLAS_NUM_THREADS"] = str(n)  # a user's setting: kept by the hold
                    with threadpool_limits(n, user_api="blas"):
                        t, cpu = time.perf_counter(), time.process_time()
                        fn()
                        got.append((time.perf_counter() - t, time.process_time() - cpu))
            cells = [f"{spread([w for w, _ in v])}; CPU {spread([c for _, c in v])}" for v in times.values()]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    finally:
        os.environ.pop("OPENBLAS_NUM_THREADS", None)
        if hog is not None:
            hog.kill()
            hog.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="bike_sharing,adult", help="tasks of ../shared/bench, comma separated")
    ap.add_argument("--budget", type=float, default=60, help="training seconds of each bundle (trained once)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--busy", choices=("quiet", "busy", "both"), default="both")
    ap.add_argument("--settings", default="cores,1", help=f"columns, comma separated, of {', '.join(SETTINGS)}")
    ap.add_argument("--only", default=None, help="only these commands (names as printed), comma separated")
    ap.add_argument("--steps", action="store_true", help="time the work in this process instead of whole commands")
    ap.add_argument("--copies", type=int, default=15, help="with --steps: predict the test rows this many times over")
    ap.add_argument("--folder", type=Path, default=Path("/tmp/blas_commands"), help="bundles and outputs")
    args = ap.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    for task in args.tasks.split(","):
        model, test, head = bundle(task, args.folder, args.budget)
        if args.steps:
            for busy in {"quiet": [False], "busy": [True], "both": [False, True]}[args.busy]:
                steps(task, model, test, head, args.repeats, busy, args.copies)
            continue
        scratch = args.folder / f"{task}-runs"
        scratch.mkdir(exist_ok=True)
        cmds = commands(model, test, head, scratch)
        if args.only:
            cmds = {k: v for k, v in cmds.items() if k in args.only.split(",")}
        for busy in {"quiet": [False], "busy": [True], "both": [False, True]}[args.busy]:
            measure(task, cmds, args.settings.split(","), args.repeats, busy, scratch)


if __name__ == "__main__":
    main()
