"""A PyTorch multilayer perceptron with an embedding per categorical column (the ``deep`` extra).

Numbers are clipped, imputed and standardised (``OneHotScaler`` without its one-hot part); each category
code is embedded in a few learned dimensions. Trained with AdamW in mini-batches, stopped early on the
validation rows, and at the time limit. torch is imported only when the family is used.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...features.onehot import OneHotScaler
from .base import FitContext, FittedModel, ModelFamily, register

INSTALL_HINT = "the mlp family needs the deep extra: pip install 'mlengineer[deep]'"


#: up to this many rows ``predict_raw`` is the numpy forward pass (``row_function``): torch's per-call dispatch
#: costs 0.3-0.6 ms a call, so a small batch of a served request took 4 ms through five bagged networks
#: against 0.7 ms in numpy (float32 products as torch computes them; answers within 1e-7 of torch's)
NUMPY_ROWS = 64


class MLPModel(FittedModel):
    _numpy: tuple[Callable[[np.ndarray], np.ndarray] | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_numpy"}  # copies of the weights: rebuilt

    def _inputs(self, X: np.ndarray) -> tuple[Any, Any]:
        import torch

        prep = self.estimator["prep"]
        num = torch.from_numpy(prep.transform(X).astype(np.float32))
        codes = np.zeros((len(X), len(self.estimator["cat"])), dtype=np.int64)
        for i, (j, c) in enumerate(zip(self.estimator["cat"], self.estimator["cards"], strict=True)):
            col = X[:, j]
            codes[:, i] = np.where(np.isnan(col) | (col < 0) | (col >= c), c, np.nan_to_num(col, nan=0)).astype(np.int64)
        return num, torch.from_numpy(codes)

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        if len(X) <= NUMPY_ROWS:  # the weights are final once a model is returned from its fit
            if self._numpy is None:
                self._numpy = (self.row_function(),)
            forward = self._numpy[0]
            if forward is not None:
                return forward(X)
        import torch

        net = self.estimator["net"]
        net.eval()
        out = []
        with torch.inference_mode():
            for s in range(0, len(X), 8192):
                num, cat = self._inputs(X[s:s + 8192])
                out.append(net(num, cat))
        z = torch.cat(out).double()
        if self.task.is_classification:
            return torch.softmax(z, dim=1).numpy()
        return z[:, 0].numpy() * self.params["_y_scale"] + self.params["_y_mean"]

    def row_function(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """``predict_raw`` for a few encoded rows as a numpy forward pass: the trained weights are taken out
        of torch once, and a row costs a handful of float32 products (as torch computes them) instead of
        torch's per-call dispatch (~300-600 us a row). None when the network holds a layer it does not know."""
        net = self.estimator["net"]
        layers: list[tuple[np.ndarray, np.ndarray] | None] = []  # None: a ReLU
        for m in net.body:
            kind = type(m).__name__
            if kind == "Linear":
                layers.append((m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()))
            elif kind == "ReLU":
                layers.append(None)
            elif kind != "Dropout":  # dropout does nothing at prediction
                return None
        tables = [e.weight.detach().numpy().copy() for e in net.embeddings]
        write = self.estimator["prep"].row_writer()  # numbers and missing flags (the net embeds the categories)
        cat = np.asarray(self.estimator["cat"], dtype=np.int64)
        cards = np.asarray(self.estimator["cards"], dtype=np.float64)
        classification = self.task.is_classification
        y_scale, y_mean = float(self.params["_y_scale"]), float(self.params["_y_mean"])

        def row(X: np.ndarray) -> np.ndarray:
            x = np.asarray(X, dtype=np.float64)
            parts = [write(x)]
            if len(cat):  # a missing, negative or unseen code takes the embedding's extra last row
                c = x[:, cat]
                codes = np.where(np.isnan(c) | (c < 0) | (c >= cards), cards, np.nan_to_num(c)).astype(np.int64)
                parts += [t[codes[:, i]] for i, t in enumerate(tables)]
            h = np.concatenate(parts, axis=1)
            for layer in layers:
                if layer is None:
                    np.maximum(h, 0.0, out=h)
                else:
                    h = h @ layer[0] + layer[1]
            z = h.astype(np.float64)
            if classification:
                e = np.exp(z - z.max(axis=1, keepdims=True))
                return e / e.sum(axis=1, keepdims=True)
            return z[:, 0] * y_scale + y_mean

        return row


@register
class MLPFamily(ModelFamily):
    name = "mlp"
    place = 4
    place_large = 3  # a neural net gains most from the rows
    # before CatBoost with several classes (26 letters: 0.120 -> 0.080 test log loss at 60 s, the network
    # the best single model and left without a turn behind CatBoost)
    place_multiclass = 2.5
    packages = ("torch",)
    early_stopping = True
    bag_folds = True
    # an epoch is long enough to time on its own, but the difference of two fits of one and two epochs is not:
    # on car's table it read 0.044, 0.0625 and 0.088 s an epoch on the same day, and a network priced too dear
    # gets fewer epochs; over three epochs of difference the reads stay within one rounding step
    # (bench/RESULTS.md, "CatBoost's callback ...")
    probe_units = 4
    relative_cost = 4.0
    parallel_folds = False  # many small torch calls: two threads fight over the GIL (measured 1.7x slower)

    def available(self) -> bool:
        return importlib.util.find_spec("torch") is not None

    def unavailable_reason(self) -> str:
        return INSTALL_HINT

    def warm_up(self) -> None:
        from . import _torch_net  # noqa: F401 - imports torch

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [{"hidden": 256, "layers": 3, "dropout": 0.1, "lr": 3e-3, "weight_decay": 1e-5}]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {
            "hidden": trial.suggest_categorical("hidden", [128, 256, 512]),
            "layers": trial.suggest_int("layers", 2, 4),
            "dropout": trial.suggest_float("dropout", 0.0, 0.4),
            "lr": trial.suggest_float("lr", 5e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-7, 1e-3, log=True),
        }

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, ctx.n_jobs))
        try:
            return self._train(torch, X, y, ctx, params, X_val, y_val)
        finally:
            torch.set_num_threads(threads)

    def _train(self, torch: Any, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
               X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        deadline = ctx.deadline()
        torch.manual_seed(ctx.seed)
        rng = np.random.default_rng(ctx.seed)
        max_epochs = int(params.pop("n_estimators", 200 if X_val is not None else 30))
        max_epochs = max_epochs if ctx.max_units is None else min(max_epochs, ctx.max_units)
        # a refit on all rows replays the learning-rate drops that the validated fit made
        replay = list(params.pop("lr_drops", [])) if X_val is None else None
        drops: list[int] = []
        prep = OneHotScaler(ctx.categorical, ctx.cardinalities, onehot=False).fit(X)
        cards = [int(c) for c in ctx.cardinalities]
        regression = not ctx.task.is_classification
        y_mean = float(np.mean(y)) if regression else 0.0
        y_scale = float(np.std(y) or 1.0) if regression else 1.0
        from ._torch_net import AdamW, TabularMLP

        net = TabularMLP(prep.n_features_out_, cards, 1 if regression else ctx.n_classes,
                         hidden=int(params.get("hidden", 256)), layers=int(params.get("layers", 3)),
                         dropout=float(params.get("dropout", 0.1)))
        model = MLPModel({"net": net, "prep": prep, "cat": list(ctx.categorical), "cards": cards},
                         {**params, "_y_mean": y_mean, "_y_scale": y_scale}, ctx.task)
        num, cat = model._inputs(X)
        target = torch.from_numpy(((np.asarray(y) - y_mean) / y_scale).astype(np.float32) if regression
                                  else y.astype(np.int64))
        weight = None if ctx.sample_weight is None else torch.from_numpy(ctx.sample_weight.astype(np.float32))
        if X_val is not None and y_val is not None:
            vnum, vcat = model._inputs(X_val)
            vtarget = torch.from_numpy(((np.asarray(y_val) - y_mean) / y_scale).astype(np.float32) if regression
                                       else y_val.astype(np.int64))
        lr = float(params.get("lr", 3e-3))
        opt = AdamW(net.parameters(), lr=lr, weight_decay=float(params.get("weight_decay", 1e-5)))
        loss_fn = torch.nn.MSELoss(reduction="none") if regression else torch.nn.CrossEntropyLoss(reduction="none")
        n = len(X)
        batch = int(min(512, max(64, 2 ** round(math.log2(max(n / 16, 1))))))
        best_loss, best_state, best_epoch, stale = math.inf, None, 0, 0
        epoch = 0
        for epoch in range(1, max_epochs + 1):
            net.train()
            order = torch.from_numpy(rng.permutation(n))
            for s in range(0, n, batch):
                idx = order[s:s + batch]
                if len(idx) < 2:
                    continue
                out = net(num[idx], cat[idx])
                loss = loss_fn(out[:, 0] if regression else out, target[idx])
                loss = (loss * weight[idx]).sum() / weight[idx].sum() if weight is not None else loss.mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if deadline.passed():
                    break
            if replay is not None and epoch in replay:
                opt.lr *= 0.3
            if X_val is not None:
                net.eval()
                with torch.inference_mode():
                    out = net(vnum, vcat)
                    v = float(loss_fn(out[:, 0] if regression else out, vtarget).mean())
                if v < best_loss - 1e-6:
                    best_loss, best_state, best_epoch, stale = v, copy.deepcopy(net.state_dict()), epoch, 0
                else:
                    stale += 1
                    if stale in (5, 10):  # a plateau: take smaller steps before giving up
                        drops.append(epoch)
                        opt.lr *= 0.3
                    if stale >= 14:
                        break
            if deadline.passed():
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        model.best_iteration = best_epoch if X_val is not None else epoch
        model.rounds_run = epoch
        model.params["n_estimators"] = max_epochs
        model.params["lr_drops"] = [d for d in drops if d <= best_epoch] if X_val is not None else replay
        return model
