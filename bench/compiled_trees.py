"""Single-row prediction of boosted trees: each library's own predictor against compiled forms.

    PYTHONPATH=<folder with lleaves, treelite, tl2cgen, onnxruntime, onnxmltools> .venv/bin/python bench/compiled_trees.py

LightGBM, XGBoost and CatBoost models (300 rounds, 31 leaves / depth 6, on 20,000 synthetic rows with 20
numbers) for a binary, a multiclass (5) and a regression task; for each, the median and p99 time of one
row (a (1, 20) float32 array) through: the native predictor; LightGBM's single-row C API
(``PredictForMatSingleRowFast``, what mlengineer's LightGBM row function calls); lleaves 1.3.0 (LightGBM only; LLVM);
Treelite 4.8.1 + TL2cgen 1.0.0 (C compiled by gcc into a shared library, in a child process cut after
COMPILE_LIMIT_S); ONNX Runtime (onnxmltools).
Also the time each compilation took, and the largest difference from the native prediction.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

ROWS, FEATURES, ROUNDS = 20_000, 20, 300
COMPILE_LIMIT_S = 240
LIBS = ("lightgbm", "xgboost", "catboost")


def timed(fn, X: np.ndarray, n: int = 2000) -> tuple[float, float]:
    for i in range(50):
        fn(X[i : i + 1])
    lat = []
    for i in range(n):
        row = X[i % len(X) : i % len(X) + 1]
        t = time.perf_counter()
        fn(row)
        lat.append(time.perf_counter() - t)
    return 1e6 * float(np.median(lat)), 1e6 * float(np.percentile(lat, 99))


def data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    s = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2]) + np.sin(np.nan_to_num(X[:, 3]))
    if kind == "binary":
        return X, (s + rng.normal(size=ROWS) > 0).astype(int)
    if kind == "multiclass":
        return X, np.digitize(s + rng.normal(size=ROWS) * 0.5, [-1.5, -0.5, 0.5, 1.5])
    return X, s + rng.normal(size=ROWS) * 0.3


def fit(lib: str, kind: str, X: np.ndarray, y: np.ndarray):
    if lib == "lightgbm":
        import lightgbm as lgb
        obj = {"binary": {"objective": "binary"}, "multiclass": {"objective": "multiclass", "num_class": 5},
               "regression": {"objective": "regression"}}[kind]
        b = lgb.train({**obj, "verbosity": -1, "num_leaves": 31, "num_threads": 2}, lgb.Dataset(X, y), ROUNDS)
        return b, lambda R: b.predict(R, num_threads=1)
    if lib == "xgboost":
        import xgboost as xgb
        obj = {"binary": {"objective": "binary:logistic"}, "multiclass": {"objective": "multi:softprob", "num_class": 5},
               "regression": {"objective": "reg:squarederror"}}[kind]
        b = xgb.train({**obj, "max_depth": 6, "nthread": 2, "tree_method": "hist"}, xgb.DMatrix(X, y), ROUNDS)
        b.set_param({"nthread": 1})
        return b, lambda R: b.inplace_predict(R)
    from catboost import CatBoostClassifier, CatBoostRegressor
    cls = CatBoostRegressor if kind == "regression" else CatBoostClassifier
    m = cls(iterations=ROUNDS, depth=6, verbose=0, thread_count=2, allow_writing_files=False).fit(X, y)
    if kind == "regression":
        return m, lambda R: m.predict(R, thread_count=1)
    return m, lambda R: m.predict_proba(R, thread_count=1)


def fast_row_fn(model, kind: str):
    """LightGBM's own PredictForMatSingleRowFast, as mlengineer's LightGBM row function calls it."""
    from mlengineer.training.models.lightgbm import _FastRow

    fast = _FastRow(model, None)
    k = 5 if kind == "multiclass" else 1
    return lambda R: fast.predict(R, k) if len(R) == 1 else np.vstack([fast.predict(R[i : i + 1], k)
                                                                       for i in range(len(R))])


def lleaves_fn(model, kind: str, tmp: Path):
    import lleaves
    path = tmp / "m.txt"
    model.save_model(str(path))
    ll = lleaves.Model(model_file=str(path))
    ll.compile(cache=str(tmp / "m.so"))
    return lambda R: ll.predict(np.asarray(R, dtype=np.float64), n_jobs=1)


def treelite_fn(lib: str, model, kind: str, tmp: Path):
    import tl2cgen
    import treelite
    if lib == "lightgbm":
        tm = treelite.frontend.from_lightgbm(model)
    elif lib == "xgboost":
        tm = treelite.frontend.from_xgboost(model)
    else:
        raise RuntimeError("Treelite has no CatBoost frontend")
    so, ckpt = tmp / f"{lib}-{kind}.so", tmp / f"{lib}-{kind}.tl"
    tm.serialize(str(ckpt))
    # gcc on the generated C, in a child process so that a compilation that takes too long is cut
    code = ("import sys, treelite, tl2cgen; m = treelite.Model.deserialize(sys.argv[1]); "
            "tl2cgen.export_lib(m, toolchain='gcc', libpath=sys.argv[2], params={'parallel_comp': 8}, nthread=2)")
    try:
        subprocess.run([sys.executable, "-c", code, str(ckpt), str(so)], check=True, timeout=COMPILE_LIMIT_S,
                       capture_output=True)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"gcc took over {COMPILE_LIMIT_S} s") from None
    pred = tl2cgen.Predictor(str(so), nthread=1)
    return lambda R: pred.predict(tl2cgen.DMatrix(R, dtype="float32"))


def onnx_fn(lib: str, model, kind: str):
    import onnxruntime as ort
    from onnxmltools.convert.common.data_types import FloatTensorType
    types = [("x", FloatTensorType([None, FEATURES]))]
    if lib == "lightgbm":
        from onnxmltools import convert_lightgbm
        onx = convert_lightgbm(model, initial_types=types, target_opset=15, zipmap=False)
    elif lib == "xgboost":
        import xgboost as xgb
        from onnxmltools import convert_xgboost
        est = (xgb.XGBRegressor if kind == "regression" else xgb.XGBClassifier)()
        est._Booster = model
        est.n_classes_ = {"binary": 2, "multiclass": 5}.get(kind)
        onx = convert_xgboost(model if False else est, initial_types=types, target_opset=15)
    else:
        path = Path(tempfile.mkdtemp()) / "m.onnx"
        model.save_model(str(path), format="onnx")
        onx = path.read_bytes()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(onx if isinstance(onx, bytes) else onx.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    out = names[-1] if kind != "regression" else names[0]
    feed = sess.get_inputs()[0].name  # "x" as named above; CatBoost's own export calls it "features"

    def run(R: np.ndarray):
        got = sess.run([out], {feed: R})[0]
        if isinstance(got, list) and got and isinstance(got[0], dict):  # CatBoost's classes as a map per row
            return np.asarray([[d[k] for k in sorted(d)] for d in got])
        return got

    return run


def main() -> None:
    global LIBS
    if len(sys.argv) > 1:  # e.g. "catboost": only those libraries
        LIBS = tuple(sys.argv[1].split(","))
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for lib in LIBS:
            for kind in ("binary", "multiclass", "regression"):
                X, y = data(kind)
                model, native = fit(lib, kind, X, y)
                test = X[:500]
                ref = np.asarray(native(test), dtype=np.float64).reshape(len(test), -1)
                med, p99 = timed(native, X)
                rows.append({"lib": lib, "task": kind, "engine": "native", "median_us": med, "p99_us": p99,
                             "compile_s": 0.0, "max_diff": 0.0})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                engines = {"treelite+tl2cgen": partial(treelite_fn, lib, model, kind, tmp),
                           "onnxruntime": partial(onnx_fn, lib, model, kind)}
                if lib == "lightgbm":
                    engines = {"single-row C API": partial(fast_row_fn, model, kind),
                               "lleaves": partial(lleaves_fn, model, kind, tmp), **engines}
                for name, make in engines.items():
                    t0 = time.perf_counter()
                    try:
                        fn = make()
                    except Exception as e:  # noqa: BLE001 - a row saying why, not a crash
                        rows.append({"lib": lib, "task": kind, "engine": name, "error": f"{type(e).__name__}: {e}"[:160]})
                        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                        continue
                    compile_s = time.perf_counter() - t0
                    got = np.asarray(fn(test), dtype=np.float64)
                    got = got.reshape(len(test), -1)
                    if got.shape != ref.shape and got.shape[1] == 2 and ref.shape[1] == 1:
                        got = got[:, 1:]
                    diff = float(np.max(np.abs(got - ref))) if got.shape == ref.shape else float("nan")
                    med, p99 = timed(fn, X)
                    rows.append({"lib": lib, "task": kind, "engine": name, "median_us": med, "p99_us": p99,
                                 "compile_s": compile_s, "max_diff": diff})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print("| library | task | engine | median us | p99 us | compile s | max diff from native |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['lib']} | {r['task']} | {r['engine']} | fails: {r['error']} | | | |")
        else:
            print(f"| {r['lib']} | {r['task']} | {r['engine']} | {r['median_us']:.1f} | {r['p99_us']:.1f} | "
                  f"{r['compile_s']:.1f} | {r['max_diff']:.1e} |")


if __name__ == "__main__":
    main()
