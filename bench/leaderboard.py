"""One task of ../shared/bench at a budget: the test score and the run's leaderboard, planned against real.

    .venv/bin/python bench/leaderboard.py poker_hand --budget 60
    MLENGINEER_CACHE_DIR=$(mktemp -d) .venv/bin/python bench/leaderboard.py car --budget 60   # costs measured afresh

For looking into one task: each candidate's phase (portfolio, longer, tuning, restart), validation score, real fit
seconds beside the plan's (``planned_s``: what the search charged it), best round and parameters; the
ensemble's first row says which members were refit on all rows; last, the ensemble's weights, the run's seconds
(search, refit, total) and the plan's budgets. Nothing is written; bench/accuracy.py is the run that counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import BENCH, read_task, score  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("task")
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if not (BENCH / a.task / "task.json").is_file():
        print(f"No task {a.task!r} under {BENCH}", file=sys.stderr)
        return 2
    import mlengineer

    task, train, test = read_task(BENCH / a.task)
    t0 = time.perf_counter()
    model = mlengineer.train(train, task["target"], task=task["task"], time_budget=a.budget, seed=a.seed,
                             track=False)
    fit_s = time.perf_counter() - t0
    raw = model.predict_raw(test.drop(columns=[task["target"]]))
    print(f"{a.task}: test {task['metric']} {score(task, test[task['target']], raw, model.classes):.4f}, "
          f"trained in {fit_s:.1f} s of {a.budget:g}")
    print(f"  {'model':16s} {'phase':9s} {'score':>9s} {'fit s':>7s} {'plan s':>7s} {'round':>6s}  params")
    for r in model.metadata["leaderboard"]:
        params = {k: v for k, v in (r.get("params") or {}).items() if k != "weights"}
        cells = [r.get("score"), r.get("fit_s"), r.get("planned_s")]
        shown = [f"{c:>9.5g}" if isinstance(c, float) else f"{'-':>9s}" for c in cells[:1]]
        shown += [f"{c:>7.2f}" if isinstance(c, float) else f"{'-':>7s}" for c in cells[1:]]
        print(f"  {r['model']:16s} {r.get('phase', ''):9s} {' '.join(shown)} {r.get('best_iteration') or '-':>6}  "
              f"{json.dumps(params)[:160]}")
    timings = model.metadata.get("timings", {})
    plan = (model.metadata.get("reproducibility") or {}).get("plan", {})
    weights = (model.metadata["leaderboard"][0].get("params") or {}).get("weights", {})
    print("  weights: " + ", ".join(f"{n} {w:.3f}" for n, w in weights.items()))
    print("  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items() if isinstance(v, float)
                                    and k.endswith("_s")))
    print("  plan: " + ", ".join(f"{k} {plan[k]}" for k in ("prepare_s", "search_budget_s", "refit_budget_s",
                                                            "probe_s") if k in plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
