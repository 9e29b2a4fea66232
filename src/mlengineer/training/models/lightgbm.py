"""LightGBM: gradient-boosted trees, with native categorical splits and early stopping."""

from __future__ import annotations

import copy
import ctypes
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ._attribution import split_bias
from ._lgbwalk import BATCH_WORK, Packed, compiled_row, compiled_rows, pack
from .base import Attribution, Deadline, FitContext, FittedModel, ModelFamily, register

#: up to this many rows a kept member's trees are walked by the compiled loop (as one row is): LightGBM's own
#: call spends ~40 us on any call, the walk of 8 rows of a small model takes a few
SMALL_BATCH = 64


class LightGBMModel(FittedModel):
    #: the trees as flat arrays for the compiled walk of one row (``_lgbwalk.pack``), made by ``prepare`` for a
    #: kept member and saved with it; None (a search candidate, a bundle saved before): LightGBM's own call
    packed: Packed | None = None

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        n = self.best_iteration
        walked = self._walked_rows(len(X))
        if walked is not None:
            p = walked(X)
            p = p[:, 0] if p.shape[1] == 1 else p
        else:
            p = self.estimator.predict(X, num_iteration=n, num_threads=1) if len(X) < 512 else \
                self.estimator.predict(X, num_iteration=n)
        return self._proba(p) if self.task.is_classification else np.asarray(p, dtype=np.float64)

    def _walked_rows(self, n_rows: int) -> Callable[[np.ndarray], np.ndarray] | None:
        """The compiled walk of many rows (``_lgbwalk.compiled_rows``) for a kept member's large batch, where
        it is about twice as fast as LightGBM's own (a block of rows through each tree in turn), and for a few
        rows (the server's batches), where LightGBM's call costs ~40 us of its own; else None."""
        if self.packed is None or n_rows > SMALL_BATCH and n_rows * len(self.packed.root) < BATCH_WORK or \
                os.environ.get("MLENGINEER_TREE_WALK", "1") == "0":
            return None
        return compiled_rows(self.packed)

    def row_function(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """``predict_raw`` for one encoded row (1, f): the trees walked by a compiled loop (``_lgbwalk.py``,
        numba: LightGBM's rules and sums, the same numbers) once ``prepare`` packed them, else LightGBM's own single-row API (the booster's
        configuration parsed once, ``FastInit``, so a row costs one C call instead of ``predict``'s checks and
        arrays); None where neither is there. ``MLENGINEER_TREE_WALK=0`` keeps LightGBM's own call."""
        walked = None
        if self.packed is not None and os.environ.get("MLENGINEER_TREE_WALK", "1") != "0":
            walked = compiled_row(self.packed)
        fast = None if walked is not None else FastRow.create(self.estimator, self.best_iteration)
        if walked is None and fast is None:
            return None
        k = len(self.task.classes) if self.task.kind == "multiclass" else 1
        classification = self.task.is_classification

        def row(X: np.ndarray) -> np.ndarray:
            p = walked(X) if walked is not None else fast.predict(X, k)  # type: ignore[union-attr]
            if classification:
                return self._proba(p if k == 1 else p.reshape(1, k))
            return p

        return row

    def prepare(self) -> None:
        """Drop the rounds after the best one (early stopping's patience) from a model that is kept: a
        smaller bundle, and explanations that see only the trees that predict; then pack the trees for the
        one-row walk (``packed``, saved with the member). Slow for big models, so done once, for the final
        members only."""
        b = self.estimator
        if self.best_iteration and b.current_iteration() > self.best_iteration:
            text = b.model_to_string(num_iteration=self.best_iteration)
            b.model_from_string(text)
        else:
            text = b.model_to_string()
        # once, here: reading a big model's text takes ~1 s (5,200 trees), too dear for every search candidate
        self.packed = pack(text, self.best_iteration)

    def with_rounds(self, rounds: int) -> LightGBMModel:
        """The first ``rounds`` rounds as a booster of their own, packed for the walk (so the search times
        one row as the bundle will answer it)."""
        import lightgbm as lgb

        n = min(rounds, self.best_iteration or rounds)
        text = self.estimator.model_to_string(num_iteration=n)
        cut = copy.copy(self)
        cut.estimator = lgb.Booster(model_str=text)
        cut.best_iteration = n
        cut.packed = pack(text, n)
        return cut

    @property
    def resumable(self) -> bool:
        return bool(getattr(self.estimator, "valid_sets", None))

    def resume(self, units: int, *, learning_rate: float | None, deadline: Deadline) -> np.ndarray:
        """More rounds on the booster's own training and validation sets, kept by the fit (``keep_training``;
        no prediction of the rows by the trees so far, which LightGBM's ``init_model`` would cost: 13 s for
        poker's 64,000 rows and 10,800 trees), from the best round on, stopped early as the fit was: at the
        validation loss's best round, the rounds after it rolled back."""
        b = self.estimator
        while b.current_iteration() > (self.best_iteration or b.current_iteration()):
            b.rollback_one_iter()  # early stopping's patience after the best round
        if learning_rate:
            b.reset_parameter({"learning_rate": learning_rate, "verbosity": -1})  # LightGBM resets its log level
        # a booster many rounds in gains little a round, and the validation loss's noise hides it for longer
        # than the fit's patience: a twentieth of its rounds (poker, 1,527 rounds in at a step of 0.3: stopped
        # 53 rounds on by a patience of 20, its validation loss lower again a hundred rounds later)
        start = best = b.current_iteration()
        patience = _patience(float(learning_rate or self.params.get("learning_rate", 0.1)), start)
        least = _valid_loss(b)
        for _ in range(units):
            b.update()
            loss = _valid_loss(b)
            if loss < least:
                best, least = b.current_iteration(), loss
            if b.current_iteration() - best >= patience or deadline.passed():
                break
        self.rounds_run = (self.rounds_run or start) + b.current_iteration() - start
        self.stopped_by_time = self.stopped_by_time or deadline.hit
        while b.current_iteration() > best:
            b.rollback_one_iter()
        self.best_iteration = b.best_iteration = best
        got: list[np.ndarray] = []

        def output(p: np.ndarray, _: Any) -> tuple[str, float, bool]:  # the validation rows' output, as it is
            got.append(np.array(p, dtype=np.float64))
            return "output", 0.0, False

        b.eval_valid(feval=output)
        return self._proba(got[0]) if self.task.is_classification else got[0]

    def release(self) -> None:
        b = self.estimator
        if getattr(b, "train_set", None) is not None:  # as lgb.train does when it keeps nothing
            b.model_from_string(b.model_to_string()).free_dataset()

    def feature_importance(self) -> np.ndarray:
        return self.estimator.feature_importance(importance_type="gain")

    def contributions(self, X: np.ndarray, k: int, background: np.ndarray | None = None) -> Attribution:
        """LightGBM's own TreeSHAP (``pred_contrib``), in log-odds or raw scores."""
        raw = np.asarray(self.estimator.predict(X, pred_contrib=True), dtype=float)
        f = X.shape[1]
        if k > 2:
            raw = raw.reshape(len(X), k, f + 1)
        return Attribution(*split_bias(raw, f), "margin", "TreeSHAP")


def _patience(learning_rate: float, rounds: int = 0) -> int:
    """Rounds without a better validation loss after which boosting stops: more for smaller steps, and at
    least a twentieth of the ``rounds`` run (a booster many rounds in gains little a round, and the
    validation loss's noise hides it for longer)."""
    return max(int(max(20, min(200, 5 / learning_rate))), rounds // 20)


def _valid_loss(b: Any) -> float:
    """The booster's first metric on its validation set, lower better."""
    _, _, value, higher_better = b.eval_valid()[0]
    return -float(value) if higher_better else float(value)


class FastRow:
    """LightGBM's ``PredictForMatSingleRowFast`` on float32 rows, freed with the booster's handle; rebuilt
    when the booster's handle changes (``prepare`` reloads the model) and locked, since one configuration
    holds one row's buffers. ``leaves``: each tree's leaf index instead of the prediction (a forest's walk,
    ``_forestrow.py``)."""

    def __init__(self, booster: Any, iterations: int | None, *, leaves: bool = False) -> None:
        self.booster = booster
        self.iterations = -1 if not iterations else int(iterations)
        self.leaves = leaves
        self.handle: Any = None
        self.lock = threading.Lock()
        self.out_len = ctypes.c_int64(0)
        self.finalizer: Any = None
        self._init()

    @staticmethod
    def available() -> bool:
        """Whether this LightGBM has the single-row API."""
        from lightgbm import basic

        return hasattr(basic._LIB, "LGBM_BoosterPredictForMatSingleRowFastInit")

    @classmethod
    def create(cls, booster: Any, iterations: int | None, *, leaves: bool = False) -> FastRow | None:
        return cls(booster, iterations, leaves=leaves) if cls.available() else None

    def _init(self) -> None:
        from lightgbm import basic

        if self.finalizer is not None:
            self.finalizer()
        # the handle object itself, held: a reloaded booster gets a new one, whereas its address may be
        # reused by the allocator for the new booster and so cannot tell a reload
        self.source = self.booster._handle
        handle = ctypes.c_void_p()
        basic._safe_call(basic._LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            self.booster._handle,
            ctypes.c_int(basic._C_API_PREDICT_LEAF_INDEX if self.leaves else basic._C_API_PREDICT_NORMAL), ctypes.c_int(0),
            ctypes.c_int(self.iterations), ctypes.c_int(basic._C_API_DTYPE_FLOAT32),
            ctypes.c_int32(self.booster.num_feature()), basic._c_str("num_threads=1"), ctypes.byref(handle)))
        self.handle = handle
        self.finalizer = weakref.finalize(self, basic._LIB.LGBM_FastConfigFree, handle)

    def predict(self, X: np.ndarray, k: int) -> np.ndarray:
        from lightgbm import basic

        row = np.ascontiguousarray(X[0], dtype=np.float32)
        out = np.empty(k, dtype=np.float64)
        with self.lock:
            if self.booster._handle is not self.source:
                self._init()
            basic._safe_call(basic._LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self.handle, row.ctypes.data_as(ctypes.c_void_p), ctypes.byref(self.out_len),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
        return out


@register
class LightGBMFamily(ModelFamily):
    name = "lightgbm"
    target_range = "within"
    place = 0  # the strongest family per second spent: always tried first
    packages = ("lightgbm",)
    early_stopping = True

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        # large data (rows x classes, each class a tree a round): bigger steps, or the first model alone
        # would take a 60 s budget on 2 cores. Poker hands (80,000 rows, 8 classes), 30 ms a round: test log
        # loss 0.49 after 500 rounds at 0.1, 0.36 at 0.2 (0.28 and 0.25 after 2,000 and 1,000 rounds); 24 s
        # on its rows: 0.283 at 0.2, 0.246 at 0.3; the search at 60 s on the same costs 0.258 -> 0.249 (with
        # early stopping's patience growing with the rounds: a patience of 20 stopped it at 1,137 rounds)
        work = n_rows * max(len(task.classes), 1)
        lr = 0.3 if work > 500_000 else 0.1 if work > 100_000 else 0.05
        first: dict[str, Any] = {"learning_rate": lr, "num_leaves": 31, "min_data_in_leaf": 20, "feature_fraction": 0.9}
        if task.kind == "multiclass":
            # a rare class's leaves have tiny hessians (p(1-p) summed over few rows): without an L2 term their
            # values blow up within tens of rounds and early stopping ends the fit there (poker hands, 8
            # classes down to 15 rows: stopped at round 30 with validation log loss 0.91; with lambda_l2=1
            # still improving at round 3,000, 0.30)
            first["lambda_l2"] = 1.0
        return [
            first,
            {"learning_rate": 0.03, "num_leaves": 128, "min_data_in_leaf": 3, "feature_fraction": 0.9,
             "extra_trees": False, "lambda_l2": 1.0},
            {"learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 40, "feature_fraction": 0.5,
             "extra_trees": True, "lambda_l2": 3.0},
        ]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 2, 100, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
            "extra_trees": trial.suggest_categorical("extra_trees", [False, True]),
        }

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        import lightgbm as lgb

        num_rounds = int(params.pop("n_estimators", 10000 if X_val is not None else 300))
        # a search candidate continued at another rate (``continuation.py``): [the round it changed at, the rate]
        later = params.get("learning_rate_after")
        num_rounds = num_rounds if ctx.max_units is None else min(num_rounds, ctx.max_units)
        # deterministic needs the histogram layout fixed too: LightGBM otherwise picks it by timing both
        layout = "force_col_wise" if X.shape[1] > 100 else "force_row_wise"
        p: dict[str, Any] = {
            "verbosity": -1, "seed": ctx.seed, "num_threads": ctx.n_jobs, "deterministic": True, layout: True,
            "max_cat_to_onehot": 8, "cat_smooth": 10, "max_bin": 255,
        }
        if ctx.task.kind == "binary":
            p.update(objective="binary")
        elif ctx.task.kind == "multiclass":
            p.update(objective="multiclass", num_class=ctx.n_classes)
        else:
            p.update(objective="regression")
        if params.get("bagging_fraction", 1.0) < 1.0:
            p["bagging_freq"] = 1
        p.update({k: v for k, v in params.items() if k != "learning_rate_after"})
        categorical = list(ctx.categorical)
        train = lgb.Dataset(X, label=y, weight=ctx.sample_weight, categorical_feature=categorical or "auto",
                            free_raw_data=True, params={"max_bin": p["max_bin"]})
        deadline = ctx.deadline()
        ran = [0]  # rounds fitted: the booster keeps only the best ones, not early stopping's patience after them

        def stop_at_deadline(env: Any) -> None:
            ran[0] = env.iteration + 1
            if deadline.passed():
                raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

        callbacks: list[Any] = [stop_at_deadline]
        if later:
            first, then = float(p["learning_rate"]), float(later[1])
            callbacks.append(lgb.reset_parameter(learning_rate=lambda i: first if i < int(later[0]) else then))
        valid_sets = []
        if X_val is not None:
            valid_sets = [lgb.Dataset(X_val, label=y_val, weight=ctx.valid_weight, reference=train,
                                      categorical_feature=categorical or "auto")]
            stopping = lgb.early_stopping(_patience(p["learning_rate"]), first_metric_only=True, verbose=False)

            def wait_longer(env: Any) -> None:  # runs before ``stopping``: a function's callback order is lower
                stopping.stopping_rounds = _patience(p["learning_rate"], env.iteration + 1)

            callbacks += [wait_longer, stopping]
        booster = lgb.train(p, train, num_boost_round=num_rounds, valid_sets=valid_sets, callbacks=callbacks,
                            keep_training_booster=ctx.keep_training and X_val is not None)
        model = LightGBMModel(booster, {**params, "n_estimators": num_rounds}, ctx.task)
        best = booster.best_iteration or booster.current_iteration()
        model.best_iteration = int(best)
        model.rounds_run = max(int(ran[0]), int(booster.current_iteration()))
        return model
