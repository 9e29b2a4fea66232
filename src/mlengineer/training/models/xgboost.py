"""XGBoost: gradient-boosted trees (histogram method), with native categorical splits and early stopping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._attribution import split_bias
from .base import Attribution, FitContext, FittedModel, ModelFamily, register

#: how far a compiled model's answer may stray from XGBoost's: probabilities absolutely; values relative to
#: the largest one checked (XGBoost answers in float32, whose steps at 1e5 are 0.008: absolute 1e-6 would
#: ask more than the native model itself can say)
COMPILED_TOLERANCE = 1e-6
_SESSION_LOCK = threading.Lock()
#: up to this many rows, a model with a compiled form answers through it (``compile`` checks it on such a
#: batch as well as row by row): XGBoost's ``inplace_predict`` spends ~100 us of its own on any call
SMALL_BATCH = 64


def _apart(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How far ``a`` is from ``b``, element by element: 0 where both are NaN, NaN where one only is."""
    return np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))


class XGBoostModel(FittedModel):
    """A booster; ``compile`` adds an ONNX form of it (``xgboost_onnx.py``) for one row at a time."""

    #: the compiled form's file suffix in a bundle (``bundle/compiled.py`` writes and reads it)
    compiled_suffix = ".onnx"
    #: the ONNX model's bytes once ``compile`` kept them or a bundle handed them back (not pickled)
    compiled: bytes | None = None
    _trees: Any = None  # its ONNX Runtime session, made on first use; False when it cannot be made

    def __getstate__(self) -> dict[str, Any]:
        # the compiled bytes live in their own file of the bundle, and a session cannot be pickled
        state = dict(self.__dict__)
        state.pop("compiled", None)
        state.pop("_trees", None)
        return state

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        trees = self._compiled_trees() if len(X) <= SMALL_BATCH else None
        if trees is not None:  # a few rows (the server's batches): ONNX Runtime's ~10 us against XGBoost's ~130
            return self._output(trees.predict(X))
        return self._output(self.estimator.inplace_predict(np.asarray(X, dtype=np.float32)))

    def _output(self, p: np.ndarray) -> np.ndarray:
        return self._proba(p) if self.task.is_classification else np.asarray(p, dtype=np.float64)

    def row_function(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """``predict_raw`` for one encoded row through the compiled trees (ONNX Runtime, ~10x faster than
        ``inplace_predict`` for one row); None without a compiled form or without onnxruntime."""
        trees = self._compiled_trees()
        if trees is None:
            return None
        return lambda X: self._output(trees.predict(X))

    def _compiled_trees(self) -> Any:
        data = self.compiled
        if data is None:
            return None
        with _SESSION_LOCK:  # one session per model, however many threads ask first
            trees = self._trees
            if trees is None:
                try:
                    from .xgboost_onnx import OnnxTrees

                    trees = OnnxTrees(data, self.task.kind)
                except Exception:  # noqa: BLE001 - no onnxruntime, or a session it refuses: XGBoost answers
                    trees = False
                self._trees = trees
        return trees or None

    def attach_compiled(self, data: bytes | None) -> None:
        """Use ``data`` (from ``compile``, read back from a bundle) for single rows; None: XGBoost's own."""
        self.compiled = data
        self._trees = None

    def compile(self, sample: np.ndarray | None) -> tuple[bytes | None, dict[str, Any]]:
        """The ONNX form of the booster, kept (and returned, with what was checked) only when it answers
        like ``predict_raw`` within ``COMPILED_TOLERANCE`` on ``sample`` (encoded rows) and on rows at every
        split threshold, one row at a time and in batches of ``SMALL_BATCH`` as it will be used; else None and
        the reason."""
        from . import xgboost_onnx as xo

        start = time.perf_counter()
        kept, self.compiled, self._trees = self.compiled, None, None  # XGBoost answers unless this succeeds
        try:
            import onnxruntime

            forest = xo.Forest(self.estimator)
            data = kept or forest.to_onnx()
            trees = xo.OnnxTrees(data, self.task.kind)
            rows = forest.boundary_rows(sample)
        except ImportError as e:
            return None, {"compiled": False, "reason": f"{e.name or 'onnx'} is not installed"}
        except xo.UnsupportedModel as e:
            return None, {"compiled": False, "reason": f"not expressible in ONNX: {e}"}
        except Exception as e:  # noqa: BLE001 - a converter's or runtime's failure only costs the speed-up
            return None, {"compiled": False, "reason": f"conversion failed ({type(e).__name__}: {str(e)[:160]})"}
        if sample is not None and len(sample):
            rows = np.vstack([np.asarray(sample, dtype=np.float32), rows])
        native = self.predict_raw(rows)
        compiled = np.concatenate([self._output(trees.predict(rows[i:i + 1])) for i in range(len(rows))])
        batched = np.concatenate([self._output(trees.predict(rows[i:i + SMALL_BATCH]))
                                  for i in range(0, len(rows), SMALL_BATCH)])  # as predict_raw takes a few rows
        finite = np.abs(native[np.isfinite(native)])
        scale = 1.0 if self.task.is_classification else max(1.0, float(np.max(finite, initial=0.0)))
        tolerance = COMPILED_TOLERANCE * scale
        diff = np.maximum(_apart(compiled, native), _apart(batched, native))
        worst = float(np.max(diff, initial=0.0))
        checked = {"rows_checked": len(rows), "max_diff": worst, "tolerance": tolerance,
                   "seconds": round(time.perf_counter() - start, 3)}
        if not np.all(diff <= tolerance):  # NaN on one side only fails too
            return None, {"compiled": False, "reason": f"answers differ from XGBoost's by up to {worst:.2g} "
                          f"(more than {tolerance:.2g})", **checked}
        self.compiled, self._trees = data, trees
        return data, {"compiled": True, "engine": f"onnxruntime {onnxruntime.__version__}", **checked}

    def feature_importance(self) -> np.ndarray:
        scores = self.estimator.get_score(importance_type="total_gain")
        names = self.estimator.feature_names or []
        return np.asarray([scores.get(n, 0.0) for n in names], dtype=np.float64)

    def contributions(self, X: np.ndarray, k: int, background: np.ndarray | None = None) -> Attribution:
        """XGBoost's own TreeSHAP (``pred_contribs``), in log-odds or raw scores."""
        import xgboost as xgb

        est = self.estimator
        booster = est.get_booster() if hasattr(est, "get_booster") else est
        types = booster.feature_types
        dm = xgb.DMatrix(np.asarray(X, dtype=np.float32), missing=np.nan, feature_names=booster.feature_names,
                         feature_types=types, enable_categorical=bool(types and "c" in types))
        raw = np.asarray(booster.predict(dm, pred_contribs=True), dtype=float)
        return Attribution(*split_bias(raw, X.shape[1]), "margin", "TreeSHAP")


@register
class XGBoostFamily(ModelFamily):
    name = "xgboost"
    target_range = "within"
    place = 5
    place_large = 4
    packages = ("xgboost-cpu",)
    early_stopping = True
    relative_cost = 1.3

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [
            {"eta": 0.08, "max_depth": 6, "min_child_weight": 1.0, "subsample": 1.0, "colsample_bytree": 0.8},
            {"eta": 0.05, "max_depth": 8, "min_child_weight": 2.0, "subsample": 0.8, "colsample_bytree": 0.6,
             "lambda": 3.0},
            {"eta": 0.05, "max_depth": 4, "min_child_weight": 1.0, "subsample": 0.9, "colsample_bytree": 0.9},
        ]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {
            "eta": trial.suggest_float("eta", 0.01, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 3, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
            "lambda": trial.suggest_float("lambda", 1e-3, 10.0, log=True),
            "alpha": trial.suggest_float("alpha", 1e-3, 10.0, log=True),
        }

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        import xgboost as xgb

        num_rounds = int(params.pop("n_estimators", 10000 if X_val is not None else 300))
        num_rounds = num_rounds if ctx.max_units is None else min(num_rounds, ctx.max_units)
        p: dict[str, Any] = {"tree_method": "hist", "nthread": ctx.n_jobs, "seed": ctx.seed, "verbosity": 0,
                             "max_cat_to_onehot": 8, "max_bin": 255}
        if ctx.task.kind == "binary":
            p.update(objective="binary:logistic", eval_metric="logloss")
        elif ctx.task.kind == "multiclass":
            p.update(objective="multi:softprob", num_class=ctx.n_classes, eval_metric="mlogloss")
        else:
            p.update(objective="reg:squarederror", eval_metric="rmse")
        p.update(params)
        cat = set(ctx.categorical)
        types = ["c" if j in cat else "q" for j in range(X.shape[1])]
        names = [f"f{j}" for j in range(X.shape[1])]

        def matrix(A: np.ndarray, label: np.ndarray | None, weight: np.ndarray | None = None) -> Any:
            return xgb.DMatrix(A, label=label, weight=weight, feature_types=types, feature_names=names,
                               enable_categorical=bool(cat), nthread=ctx.n_jobs)

        train = matrix(X, y, ctx.sample_weight)
        deadline = ctx.deadline()

        class StopAtDeadline(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return deadline.passed()

        callbacks: list[Any] = [StopAtDeadline()]
        evals = []
        if X_val is not None:
            evals = [(matrix(X_val, y_val, ctx.valid_weight), "valid")]
            patience = int(max(20, min(200, 5 / p["eta"])))
            callbacks.append(xgb.callback.EarlyStopping(rounds=patience, save_best=True))
        evals_result: dict[str, Any] = {}
        booster = xgb.train(p, train, num_boost_round=num_rounds, evals=evals, callbacks=callbacks,
                            verbose_eval=False, evals_result=evals_result)
        evals_log = evals_result.get("valid", {})
        best = run = booster.num_boosted_rounds()
        kept = booster.attr("best_iteration")
        if X_val is not None and kept is not None:
            best = int(kept) + 1
            run = max(run, len(next(iter(evals_log.values()), [])))
        booster.set_param({"nthread": 1})  # one row at a time is faster on one thread
        model = XGBoostModel(booster, {**params, "n_estimators": num_rounds}, ctx.task)
        model.best_iteration = int(best)
        model.rounds_run = int(run)
        return model
