"""The reliability suite, long form: what production safety looks like in counts.

    .venv/bin/python bench/reliability.py [--kills 24] [--out bench/results/reliability-DATE.json]

Parts (each case is tried, and counted as mishandled when it does not end as it should):
- bad files and options into every command (tests/reliability.py bad_cli_cases): exit 2, one line, no traceback;
- bundles damaged in every way of tests/reliability.py DAMAGES: refused in one line, nothing unpickled;
- kill -9 at random points of train, register and promote: afterwards the store opens, no run is left
  RUNNING, the next save leaves no staging folder, and every bundle that exists loads (nothing half-written);
- concurrent trainings on a fresh store and on one that has runs already: all succeed;
- a server probe: malformed, oversized, slow, abandoned, lone-surrogate, NaN and browser-simple bodies,
  then SIGTERM under load: every answer a 4xx (or 499 for an abandoned body) and every request in flight
  finished.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability import DAMAGES, FIXTURES, PWNED, bad_cli_cases, check_cli  # noqa: E402

EXE = str(Path(sys.executable).parent / "mlengineer")
CHURN = FIXTURES / "churn_800.csv"
ENV = {**os.environ, "COLUMNS": "200", "MLFLOW_DISABLE_TELEMETRY": "true"}


def _train(out: Path, budget: float = 4, cwd: Path | None = None) -> list[str]:
    return [EXE, "train", str(CHURN), "--target", "churn", "--time-budget", str(budget),
            "--families", "linear,lightgbm", "--out", str(out)]


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def part_cli(work: Path, model: Path) -> dict:
    cases = bad_cli_cases(work / "cli", model)
    problems = [p for c in cases if (p := check_cli(c, cwd=work / "cli")) is not None]
    return {"tried": len(cases), "commands": sorted({c.args[0] for c in cases}), "mishandled": len(problems),
            "problems": problems}


def part_bundles(work: Path, model: Path, other: Path) -> dict:
    import mlengineer
    from mlengineer.errors import ModelError

    problems = []
    for name, damage in DAMAGES:
        bundle = work / "damaged" / name.replace(" ", "_")
        shutil.rmtree(bundle.parent, ignore_errors=True)
        bundle.parent.mkdir(parents=True)
        shutil.copytree(model, bundle)
        damage(bundle, other)
        try:
            mlengineer.load(bundle)
            problems.append(f"{name}: loaded")
        except ModelError as e:
            if "\n" in str(e):
                problems.append(f"{name}: more than one line")
        except Exception as e:  # noqa: BLE001 - what the suite is looking for
            problems.append(f"{name}: {type(e).__name__}: {e}")
        if (bundle.parent / PWNED).exists():
            problems.append(f"{name}: the pickle ran")
        r = _run([EXE, "predict", str(bundle), str(CHURN)], cwd=bundle.parent)
        if r.returncode != 2 or "Traceback" in r.stderr:
            problems.append(f"{name}: predict exit {r.returncode}")
    return {"tried": len(DAMAGES), "mishandled": len(problems), "problems": problems}


def _store_ok(cwd: Path) -> str | None:
    r = _run([EXE, "runs"], cwd=cwd)
    if r.returncode != 0:
        return f"runs failed: {r.stderr.strip()[-300:]}"
    if "RUNNING" in r.stdout:
        return "a run is left RUNNING"
    return None


def part_kills(work: Path, model: Path, n: int, seed: int = 0) -> dict:
    """kill -9 at a random moment of train / register / promote; then check what is left."""
    import mlengineer
    from mlengineer.errors import ModelError

    rng = random.Random(seed)
    problems, tried = [], 0
    cwd = work / "kills"
    cwd.mkdir(parents=True, exist_ok=True)
    assert _run([EXE, "register", str(model), "--name", "k"], cwd=cwd).returncode == 0
    for i in range(n):
        kind = ("train", "register", "promote")[i % 3]
        out = cwd / f"m{i % 4}"
        args = {"train": _train(out, 3), "register": [EXE, "register", str(model), "--name", "k"],
                "promote": [EXE, "promote", "k", "1"]}[kind]
        delay = rng.uniform(0.5, {"train": 9.0, "register": 4.0, "promote": 3.5}[kind])
        proc = subprocess.Popen(args, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        tried += 1
        if (p := _store_ok(cwd)) is not None:
            problems.append(f"{kind} #{i} killed at {delay:.2f}s: {p}")
        if out.exists():
            try:
                mlengineer.load(out)
            except ModelError as e:
                problems.append(f"{kind} #{i}: the bundle at {out.name} does not load: {e}")
        if kind == "train":  # the next save to the same place sweeps what the killed one left
            r = _run(_train(out, 2), cwd=cwd)
            left = [p.name for p in cwd.iterdir() if p.name.startswith(f".{out.name}.")]
            if r.returncode != 0 or left:
                problems.append(f"train #{i}: after a new save: exit {r.returncode}, left {left}")
    return {"tried": tried, "mishandled": len(problems), "problems": problems}


def part_concurrent(work: Path, n: int = 4) -> dict:
    problems = []
    for label in ("fresh store", "store with runs"):
        cwd = work / "concurrent"
        if label == "fresh store":
            shutil.rmtree(cwd, ignore_errors=True)
        cwd.mkdir(parents=True, exist_ok=True)
        procs = [subprocess.Popen(_train(cwd / f"{label[0]}{i}", 4), cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(n)]
        for i, p in enumerate(procs):
            _, err = p.communicate(timeout=600)
            if p.returncode != 0:
                problems.append(f"{label} #{i}: exit {p.returncode}: {err.strip()[-300:]}")
        if (p := _store_ok(cwd)) is not None:
            problems.append(f"{label}: {p}")
    return {"tried": 2 * n, "mishandled": len(problems), "problems": problems}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raw(port: int, data: bytes, *, read: bool = True, pause: float = 0) -> int:
    """Send raw bytes; the status of the answer (0 when the server gave none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        if pause:
            s.sendall(data[: len(data) // 2])
            time.sleep(pause)
            return 0
        s.sendall(data)
        if not read:
            return 0
        head = s.recv(65536).decode("latin-1")
    try:
        return int(head.split()[1])
    except (IndexError, ValueError):
        return 0


def _post(path: str, body: bytes, ctype: str = "application/json", length: int | None = None) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: "
            f"{len(body) if length is None else length}\r\nConnection: close\r\n\r\n").encode() + body


def part_server(work: Path, model: Path) -> dict:
    import httpx
    import pandas as pd

    port = _free_port()
    log = work / "server.log"
    cwd = work / "server"
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([EXE, "serve", str(model), "--port", str(port), "--max-body-mb", "1"], cwd=cwd,
                            env=ENV, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    row = pd.read_csv(CHURN).drop(columns=["churn"]).head(1).to_dict(orient="records")[0]
    good = json.dumps({"records": [row]}).encode()
    bodies = {
        "not JSON": (_post("/predict", b"{oops"), 400), "empty": (_post("/predict", b""), 400),
        "a list": (_post("/predict", b"[1,2]"), 422),
        "NaN": (_post("/predict", good.replace(b'"age": ', b'"age": NaN, "x": ')), 422),
        "Infinity": (_post("/predict", json.dumps({"records": [{**row, "age": 1}]}).encode().replace(
            b'"age": 1', b'"age": Infinity')), 422),
        "lone surrogate": (_post("/predict", json.dumps({"records": [{**row, "plan": "X"}]}).encode().replace(
            b'"X"', b'"\\ud800"')), 400),
        "surrogate to /explain": (_post("/explain", json.dumps({"records": [{**row, "plan": "X"}]}).encode().replace(
            b'"X"', b'"\\ud800"')), 400),
        "text/plain": (_post("/predict", good, "text/plain"), 415),
        "form": (_post("/predict", good, "application/x-www-form-urlencoded"), 415),
        "oversized by length": (_post("/predict", b"", length=5_000_000), 413),
        "oversized streamed": (_post("/predict", b"[" + b"1," * 600_000 + b"1]"), 413),
        "unknown column": (_post("/predict", json.dumps({"records": [{**row, "zzz": 1}]}).encode()), 422),
        "/invocations csv junk": (_post("/invocations", b"\x00\x01\x02", "text/csv"), 422),
        "OIP bad tensor": (_post("/v2/models/x/infer", b'{"inputs": 3}'), 404),
    }
    problems = []
    for name, (raw, want) in bodies.items():
        got = _raw(port, raw)
        if got != want:
            problems.append(f"{name}: {got}, wanted {want}")
    for _ in range(3):  # slow and abandoned bodies
        _raw(port, _post("/predict", good), pause=0.5)
    # SIGTERM under load: every request in flight gets its answer
    results: list[int] = []

    def client() -> None:
        with httpx.Client(timeout=30) as c:
            for _ in range(200):
                try:
                    results.append(c.post(f"{url}/predict", content=good,
                                          headers={"content-type": "application/json"}).status_code)
                except httpx.HTTPError:
                    return  # the server stopped accepting: expected after SIGTERM
    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    for t in threads:
        t.join()
    text = log.read_text(errors="replace")
    if code != 0:
        problems.append(f"SIGTERM: exit {code}")
    if any(s != 200 for s in results):
        problems.append(f"under load: statuses {sorted(set(results))}")
    if "Traceback" in text:
        problems.append("a traceback in the server log")
    if '"status":499' not in text:
        problems.append("abandoned bodies not logged as 499")
    return {"tried": len(bodies) + 3 + 1, "requests_under_sigterm": len(results), "mishandled": len(problems),
            "problems": problems}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=24)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import pandas as pd

    import mlengineer

    work = Path(tempfile.mkdtemp(prefix="mlengineer-reliability-"))
    os.chdir(work)
    model, other = work / "model", work / "other"
    mlengineer.train(CHURN, "churn", time_budget=6, out=model, track=False)
    mlengineer.train(pd.read_csv(CHURN).drop(columns=["age", "plan"]), "churn", time_budget=3,
                     families=["linear"], out=other, track=False)
    report: dict = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": platform.platform(),
                    "cpus": os.cpu_count(), "command": " ".join(sys.argv)}
    for name, fn in [("cli", lambda: part_cli(work, model)), ("bundles", lambda: part_bundles(work, model, other)),
                     ("kills", lambda: part_kills(work, model, args.kills)),
                     ("concurrent", lambda: part_concurrent(work)), ("server", lambda: part_server(work, model))]:
        t0 = time.perf_counter()
        report[name] = fn()
        report[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"{name:11s} tried {report[name]['tried']:4d}  mishandled {report[name]['mishandled']:3d}  "
              f"({report[name]['seconds']} s)", flush=True)
        for p in report[name]["problems"]:
            print("   ", p)
    out = Path(args.out or ROOT / "bench" / "results" / f"reliability-{dt.datetime.now():%Y%m%d-%H%M}.json")
    out.write_text(json.dumps(report, indent=1))
    print(f"written {out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
