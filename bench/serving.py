"""Serving benchmark: mlengineer serve side by side with MLflow's `mlflow models serve` on the same bundle.

    .venv/bin/python bench/serving.py                 # everything: layers, load, fixed rate, soak
    .venv/bin/python bench/serving.py --duration 5 --soak 0 --skip-mlflow   # a quick look

Load comes from wrk (Debian's package) on 127.0.0.1 with bench/wrk/post.lua: single-row POST /invocations
requests in MLflow's dataframe_split format, which both servers read, at 1, 16 and 64 connections. Then a
fixed rate of 500 requests/s (wrk paced by a per-request pause) for the latency goal, and a soak at 300
requests/s that samples the resident memory of the server's processes. The pauses are drawn from an
exponential (Poisson arrivals, `--arrivals poisson`, the default): with equal pauses (`--arrivals even`) the
50 connections stay in step and send their requests in bursts of 50 a cycle, a queue no independent clients
would make (measured on one LightGBM bundle: p99 17-25 ms with equal pauses, 7-10 ms with Poisson arrivals). MLflow runs from its own virtual
environment (created on first use under ~/.cache/mlengineer-peers/mlflow, with mlengineer installed from this
checkout so the bundle's pyfunc loads); it is used for this benchmark only.

mlengineer runs as a user would run it in production: the JSON access log (to a file) and the prediction log
on. Results go to bench/results/serving-<time>.json and a Markdown summary to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "wrk" / "post.lua"
PEER = Path(os.environ.get("PEERS_HOME", Path.home() / ".cache" / "mlengineer-peers")) / "mlflow"
FIXTURE = ROOT / "tests" / "fixtures" / "churn_800.csv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_mlflow() -> Path:
    """The peer's mlflow executable, installing full MLflow (and this mlengineer) in its own venv if needed."""
    exe = PEER / "bin" / "mlflow"
    if exe.exists():
        # the bundle's pyfunc imports this checkout's mlengineer: refresh it, or an older copy fails to load it
        subprocess.run([str(PEER / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
                        str(ROOT)], check=True)
        return exe
    print(f"setting up MLflow in {PEER} (once) ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(PEER)], check=True)
    pip = [str(PEER / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "mlflow>=3,<4", str(ROOT)], check=True)
    return exe


def install_bundle_requirements(model_dir: Path) -> None:
    """What the bundle's requirements.txt lists (torch when a neural network is one of its models), as a user
    of `mlflow models serve --env-manager local` would install it; mlengineer itself came from this checkout."""
    reqs = [r.strip() for r in (model_dir / "requirements.txt").read_text().splitlines()
            if r.strip() and not r.startswith("mlengineer")]
    # only what is missing: full MLflow keeps its own pins of the shared libraries (pyarrow, for one)
    have = subprocess.run([str(PEER / "bin" / "python"), "-c", "import importlib.metadata as m; "
                           "print('\\n'.join(d.metadata['Name'].lower() for d in m.distributions()))"],
                          check=True, capture_output=True, text=True).stdout.split()
    missing = [r for r in reqs if r.split("==")[0].lower() not in have]
    if missing:
        subprocess.run([str(PEER / "bin" / "python"), "-m", "pip", "install", "-q", *missing], check=True)


def train_model(dest: Path) -> Path:
    import mlengineer

    mlengineer.train(FIXTURE, "churn", time_budget=20, out=dest, track=False)
    return dest


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in KiB."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants: a cost per request that does
    not depend on how busy the machine is, unlike wall-clock throughput."""
    ticks = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    return os.getloadavg()[0]


class Server:
    def __init__(self, name: str, cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.port, self.log = name, port, log
        self.url = f"http://127.0.0.1:{port}"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                         start_new_session=True)

    def wait(self, body: bytes, timeout: float = 180) -> None:
        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                r = httpx.post(f"{self.url}/invocations", content=body, headers={"content-type": "application/json"},
                               timeout=5)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not answer in {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


#: how paced requests arrive: "poisson" (exponential pauses) or "even" (equal pauses); set by --arrivals
ARRIVALS = "poisson"


def wrk(url: str, body_file: Path, *, connections: int, seconds: float, pause_ms: float = 0) -> dict[str, Any]:
    threads = min(2, connections)
    env = {**os.environ, "WRK_BODY": str(body_file), "WRK_PATH": "/invocations",
           "WRK_DELAY_MS": str(max(0, int(round(pause_ms)))), "WRK_ARRIVALS": ARRIVALS}
    r = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s",
                        "-s", str(LUA), url], capture_output=True, text=True, env=env, timeout=seconds + 60)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk said: {r.stdout}\n{r.stderr}")
    res = json.loads(line.removeprefix("WRK_JSON "))
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["errors"] = sum(res[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return res


def layers(model_dir: Path, body: bytes) -> dict[str, float]:
    """Microseconds per call of each layer of one request, in this process."""
    from mlengineer.serving.protocols import columns_from_mlflow, parse_json
    from mlengineer.serving.runtime import load_served
    from mlengineer.serving.settings import ServeSettings

    served = load_served(ServeSettings(model=str(model_dir)))

    def per_call(fn: Any, n: int = 200) -> float:
        fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n * 1e6

    cols, n = columns_from_mlflow(parse_json(body))
    item = served.validator.validate(cols, n)
    out = {"parse_json": per_call(lambda: parse_json(body)),
           "decode_dataframe_split": per_call(lambda: columns_from_mlflow(parse_json(body))),
           "validate": per_call(lambda: served.validator.validate(cols, n))}
    for k in (1, 16, 64):
        out[f"model_{k}_rows"] = per_call(lambda k=k: served.predict_many([item] * k), 50)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="A bundle to serve (default: a churn model trained now, 20 s).")
    ap.add_argument("--duration", type=float, default=10, help="Seconds per load level.")
    ap.add_argument("--workers", type=int, default=2, help="Worker processes for both servers.")
    ap.add_argument("--rate", type=int, default=500, help="Fixed request rate for the latency goal.")
    ap.add_argument("--soak", type=float, default=60, help="Soak seconds at --soak-rate (0: no soak).")
    ap.add_argument("--soak-rate", type=int, default=300)
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                    help="One more argument for `mlengineer serve`, e.g. --serve-arg=--no-access-log "
                         "(--serve-arg=--no-prediction-log drops the prediction log this benchmark turns on)")
    ap.add_argument("--arrivals", choices=["poisson", "even"], default="poisson",
                    help="Paced requests: exponential pauses (Poisson arrivals) or equal ones.")
    args = ap.parse_args()
    global ARRIVALS
    ARRIVALS = args.arrivals
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (or make system)")
    work = Path(tempfile.mkdtemp(prefix="mlengineer-bench-serving-"))
    model_dir = args.model or train_model(work / "churn-model")
    import pandas as pd

    first = pd.read_csv(FIXTURE).drop(columns=["churn", "customer_id"]).head(1)
    body = json.dumps({"dataframe_split": json.loads(first.to_json(orient="split", index=False))}).encode()
    body_file = work / "body.json"
    body_file.write_bytes(body)
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores",
                              "workers": args.workers, "duration_s": args.duration, "model": str(model_dir),
                              "arrivals": args.arrivals, "serve_args": args.serve_arg,
                              "layers_us": layers(model_dir, body), "servers": {}}
    mlengineer_exe = Path(sys.executable).parent / "mlengineer"
    servers: list[tuple[str, list[str], dict[str, str]]] = [(
        "mlengineer", [str(mlengineer_exe), "serve", str(model_dir), "--workers", str(args.workers),
                       *([] if "--no-prediction-log" in args.serve_arg else ["--prediction-log", str(work / "predictions")]),
                       *args.serve_arg], {})]
    if not args.skip_mlflow:
        exe = ensure_mlflow()
        install_bundle_requirements(Path(model_dir))
        servers.append(("mlflow", [str(exe), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                                   "--host", "127.0.0.1", "-w", str(args.workers)],
                        # MLflow starts `uvicorn` from PATH: its own venv's
                        {"MLFLOW_DISABLE_TELEMETRY": "true", "PATH": f"{exe.parent}:{os.environ.get('PATH', '')}"}))
    for name, cmd, env in servers:
        port = free_port()
        cmd = [*cmd, "--port", str(port)] if name == "mlengineer" else [*cmd, "-p", str(port)]
        srv = Server(name, cmd, port, work / f"{name}.log", env)
        try:
            srv.wait(body)
            wrk(srv.url, body_file, connections=4, seconds=3)  # warm-up
            res: dict[str, Any] = {"load": {}}
            for c in (1, 16, 64):
                time.sleep(2)
                cpu0 = tree_cpu_s(srv.proc.pid)
                res["load"][c] = wrk(srv.url, body_file, connections=c, seconds=args.duration)
                res["load"][c]["cpu_ms_per_request"] = 1000 * (tree_cpu_s(srv.proc.pid) - cpu0) / res["load"][c]["requests"]
                res["load"][c]["load_average"] = load_average()
                print(f"{name:>10} c={c:<3} {res['load'][c]['rps']:8.0f} req/s  p50 {res['load'][c]['p50_us'] / 1e3:6.1f} ms"
                      f"  p99 {res['load'][c]['p99_us'] / 1e3:7.1f} ms  errors {res['load'][c]['errors']}", file=sys.stderr)
            conns = 50
            pause = 1000 * conns / args.rate - res["load"][1]["p50_us"] / 1e3
            time.sleep(3)  # let the overload of the last level drain
            warm = wrk(srv.url, body_file, connections=conns, seconds=3, pause_ms=pause)
            # closed-loop pacing: each connection's cycle is its pause plus the answer's latency under this load;
            # correct the pause by what the warm-up measured, so that the achieved rate meets the target
            latency_ms = 1000 * conns / warm["rps"] - pause
            pause = max(0.0, 1000 * conns / args.rate - latency_ms)
            res["fixed_rate"] = {"target_rps": args.rate, **wrk(srv.url, body_file, connections=conns,
                                                                 seconds=args.duration, pause_ms=pause),
                                 "load_average": load_average()}
            fr = res["fixed_rate"]
            print(f"{name:>10} at {args.rate}/s: {fr['rps']:.0f} req/s p50 {fr['p50_us'] / 1e3:.1f} ms "
                  f"p99 {fr['p99_us'] / 1e3:.1f} ms errors {fr['errors']}", file=sys.stderr)
            if name == "mlengineer" and args.soak > 0:
                res["soak"] = soak(srv, body_file, seconds=args.soak, rate=args.soak_rate, p50_ms=res["load"][1]["p50_us"] / 1e3)
                print(f"{name:>10} soak: {res['soak']}", file=sys.stderr)
            result["servers"][name] = res
        finally:
            srv.stop()
    out = ROOT / "bench" / "results" / f"serving-{time.strftime('%Y%m%d-%H%M')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    print(f"\n(raw results: {out.relative_to(ROOT)})")


def soak(srv: Server, body_file: Path, *, seconds: float, rate: int, p50_ms: float) -> dict[str, Any]:
    import threading

    conns = 30
    pause = 1000 * conns / rate - p50_ms
    wrk(srv.url, body_file, connections=conns, seconds=10, pause_ms=pause)  # reach a steady state first
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(tree_rss_kib(srv.proc.pid))
            stop.wait(1.0)

    t = threading.Thread(target=sample)
    t.start()
    try:
        res = wrk(srv.url, body_file, connections=conns, seconds=seconds, pause_ms=pause)
    finally:
        stop.set()
        t.join()
    start, end, peak = samples[0], samples[-1], max(samples)
    return {"seconds": seconds, "target_rps": rate, "rps": res["rps"], "requests": res["requests"],
            "errors": res["errors"], "p50_us": res["p50_us"], "p99_us": res["p99_us"],
            "rss_start_mib": start / 1024, "rss_end_mib": end / 1024, "rss_peak_mib": peak / 1024,
            "rss_growth_pct": 100 * (end - start) / start}


def markdown(r: dict[str, Any]) -> str:
    lines = [f"Serving benchmark, {r['date']}, {r['machine']}, {r['workers']} workers each, {r['duration_s']:g} s per level",
             "", "| server | connections | req/s | p50 ms | p99 ms | errors | server CPU ms/request | load avg |",
             "|---|---|---|---|---|---|---|---|"]
    for name, res in r["servers"].items():
        for c, x in res["load"].items():
            lines.append(f"| {name} | {c} | {x['rps']:.0f} | {x['p50_us'] / 1e3:.1f} | {x['p99_us'] / 1e3:.1f} | {x['errors']} "
                         f"| {x['cpu_ms_per_request']:.2f} | {x['load_average']:.1f} |")
    lines += ["", f"Fixed rate ({r.get('arrivals', 'even')} arrivals):", "",
              "| server | target req/s | achieved req/s | p50 ms | p99 ms | errors | load avg |",
              "|---|---|---|---|---|---|---|"]
    for name, res in r["servers"].items():
        x = res["fixed_rate"]
        lines.append(f"| {name} | {x['target_rps']} | {x['rps']:.0f} | {x['p50_us'] / 1e3:.1f} | {x['p99_us'] / 1e3:.1f} "
                     f"| {x['errors']} | {x['load_average']:.1f} |")
    if "mlflow" in r["servers"]:
        ours, theirs = r["servers"]["mlengineer"]["load"], r["servers"]["mlflow"]["load"]
        ratio = ", ".join(f"c={c}: {ours[c]['rps'] / theirs[c]['rps']:.1f}x" for c in ours)
        lines += ["", f"Throughput, mlengineer / MLflow: {ratio}"]
    s = r["servers"]["mlengineer"].get("soak")
    if s:
        lines += ["", f"Soak: {s['seconds']:g} s at {s['target_rps']} req/s target ({s['rps']:.0f} achieved, "
                      f"{s['requests']:,} requests): {s['errors']} errors, p99 {s['p99_us'] / 1e3:.1f} ms, resident memory "
                      f"{s['rss_start_mib']:.0f} -> {s['rss_end_mib']:.0f} MiB ({s['rss_growth_pct']:+.1f}%, peak "
                      f"{s['rss_peak_mib']:.0f} MiB)"]
    lines += ["", "Per-request layers in-process (us): " + ", ".join(f"{k} {v:.0f}" for k, v in r["layers_us"].items())]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
