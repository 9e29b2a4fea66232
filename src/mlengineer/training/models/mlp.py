"""A PyTorch multilayer perceptron with an embedding per categorical column (the ``deep`` extra).

Numbers are clipped, imputed and standardised (``OneHotScaler`` without its one-hot part); each category
code is embedded in a few learned dimensions. Trained with AdamW in mini-batches, stopped early on the
validation rows, and at the time limit. torch is imported only when the family is used.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ...features.onehot import OneHotScaler, scale_numbers
from ._mlp_loop import EpochLoop
from .base import Deadline, FitContext, FittedModel, ModelFamily, register

INSTALL_HINT = "the mlp family needs the deep extra: pip install 'mlengineer[deep]'"


#: up to this many rows ``predict_raw`` is the numpy forward pass (``row_function``): torch's per-call dispatch
#: costs 0.3-0.6 ms a call, so a small batch of a served request took 4 ms through five bagged networks
#: against 0.7 ms in numpy (float32 products as torch computes them; answers within 1e-7 of torch's)
NUMPY_ROWS = 64


class MLPModel(FittedModel):
    _numpy: tuple[Callable[[np.ndarray], np.ndarray] | None] | None = None
    #: the search's fit kept to go on (``resume``): its epochs' state, its validation rows and threads
    _loop: EpochLoop | None = None
    _going_on: tuple[np.ndarray, int] | None = None

    def __getstate__(self) -> dict[str, Any]:  # the numpy weights are rebuilt; what was kept to go on is not kept
        return {k: v for k, v in self.__dict__.items() if k not in ("_numpy", "_loop", "_going_on")}

    def finished(self, loop: EpochLoop) -> None:
        """What the epochs so far made of the model: its best epoch, the epochs run, the step's drops up to
        the best epoch (a refit on all rows replays them)."""
        valid = loop.valid is not None
        self.best_iteration = loop.best_epoch if valid else loop.epoch
        self.rounds_run = loop.epoch
        self.params["lr_drops"] = [d for d in loop.drops if d <= loop.best_epoch] if valid else loop.replay
        self._numpy = None  # the weights changed

    @property
    def resumable(self) -> bool:
        return self._loop is not None and not self._loop.stopped_early

    def resume(self, units: int, *, learning_rate: float | None, deadline: Deadline) -> np.ndarray:
        """Up to ``units`` more epochs from the last one (``EpochLoop``: the optimiser's state and the random
        streams as they were), stopped early on the validation rows as the fit was; ``learning_rate`` is a
        booster's and not used. Answers ``predict_raw`` for the validation rows."""
        import torch

        assert self._loop is not None and self._going_on is not None
        X_val, threads = self._going_on
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            self._loop.run(units, deadline)
        finally:
            torch.set_num_threads(before)
        self.finished(self._loop)
        self.stopped_by_time = self.stopped_by_time or deadline.hit
        return self.predict_raw(X_val)

    def release(self) -> None:
        self._loop = self._going_on = None

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
        if net.members == 1:
            z = z[:, None]  # (rows, members, outputs)
        if self.task.is_classification:
            return torch.softmax(z, dim=-1).mean(dim=1).numpy()
        return z[..., 0].mean(dim=1).numpy() * self.params["_y_scale"] + self.params["_y_mean"]

    def _numpy_net(self) -> _NumpyNet | None:
        """The trained weights taken out of torch (float32, as torch keeps them); None when the network
        holds a layer the numpy pass does not know."""
        net = self.estimator["net"]
        layers: list[tuple[np.ndarray, np.ndarray] | None] = []  # None: a ReLU
        for m in net.body:
            kind = type(m).__name__
            if kind == "Linear":
                layers.append((m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()))
            elif kind == "ReLU":
                layers.append(None)
            elif not kind.endswith("Dropout"):  # dropout does nothing at prediction
                return None
        if not layers or layers[0] is None:
            return None
        members = net.members > 1
        return _NumpyNet(write=self.estimator["prep"].row_writer(),  # numbers and missing flags
                         tables=[e.weight.detach().numpy().copy() for e in net.embeddings],
                         cat=np.asarray(self.estimator["cat"], dtype=np.int64),
                         cards=np.asarray(self.estimator["cards"], dtype=np.float64), layers=layers,
                         y_scale=float(self.params["_y_scale"]), y_mean=float(self.params["_y_mean"]),
                         adapter=net.adapter.detach().numpy().copy() if members else None,
                         head=(net.head_weight.detach().numpy().copy(), net.head_bias.detach().numpy().copy())
                         if members else None)

    def row_function(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """``predict_raw`` for a few encoded rows as a numpy forward pass: the trained weights are taken out
        of torch once, and a row costs a handful of float32 products (as torch computes them) instead of
        torch's per-call dispatch (~300-600 us a row). None when the network holds a layer it does not know."""
        numpy_net = self._numpy_net()
        if numpy_net is None:
            return None
        classification = self.task.is_classification

        def row(X: np.ndarray) -> np.ndarray:
            x = np.asarray(X, dtype=np.float64)
            h = _hidden(numpy_net.first(x, numpy_net.codes(x)), numpy_net.layers[1:])
            if numpy_net.head is None:
                return _output(h.astype(np.float64), classification, numpy_net.y_scale, numpy_net.y_mean)
            return _mean_answer(h, numpy_net.head, classification, numpy_net.y_scale, numpy_net.y_mean, 0)

        return row

    @staticmethod
    def stacked_function(models: list[MLPModel]) -> tuple[Callable[[np.ndarray], np.ndarray], int] | None:
        """A bag's networks (its fold models, ``ensemble.Bag``) forward at once, for up to ``NUMPY_ROWS``
        rows: each its own input writer and first layer, then every later layer of all of them in one
        batched product (``np.matmul`` on the networks stacked), and the mean of their answers, as the bag
        takes it. Five networks cost about a third of their one-by-one time (numpy's per-call cost is most of
        a small batch's). None where the networks differ in shape after their first layer or in their
        categorical columns, or one has a layer the numpy pass does not know. Networks of several members
        (``tabm``) stack as their members: five networks of eight members, one row, 650 -> 250 us."""
        nets = [m._numpy_net() for m in models]
        if len(nets) < 2 or any(n is None for n in nets):
            return None
        ready = [n for n in nets if n is not None]
        first = ready[0]
        shapes = [[None if layer is None else layer[0].shape for layer in n.layers[1:]] for n in ready]
        heads = [None if n.head is None else n.head[0].shape for n in ready]
        if any(s != shapes[0] for s in shapes) or any(h != heads[0] for h in heads) or any(
                not np.array_equal(n.cat, first.cat) or not np.array_equal(n.cards, first.cards) for n in ready):
            return None
        # (networks, members, rows, width) throughout: a network of k members is k first layers, then the
        # later layers shared, then k output layers
        alone = [m for n in ready for m in n.members()]
        k = len(alone) // len(ready)
        rest: list[tuple[np.ndarray, np.ndarray] | None] = []  # the later layers, stacked (None: a ReLU)
        for i in range(1, len(first.layers)):
            same = [n.layers[i] for n in ready]
            weights = [w for w in same if w is not None]  # the shapes agree: all layers or all ReLUs
            rest.append((np.stack([w[0] for w in weights])[:, None], np.stack([w[1] for w in weights])[:, None, None, :])
                        if weights else None)
        head = None if first.head is None else (np.stack([n.head[0] for n in ready]),  # type: ignore[index]
                                                np.stack([n.head[1] for n in ready]))  # type: ignore[index]
        classification = models[0].task.is_classification
        y_scale = np.asarray([n.y_scale for n in ready])[:, None, None]
        y_mean = np.asarray([n.y_mean for n in ready])[:, None, None]

        fused = _fused_first([m for m in models for _ in range(k)], alone)

        def bag(X: np.ndarray) -> np.ndarray:
            x = np.asarray(X, dtype=np.float64)
            codes = first.codes(x)
            h = fused(x, codes) if fused is not None else np.stack([n.first(x, codes) for n in alone])
            h = _hidden(h.reshape(len(ready), k, *h.shape[1:]), rest)
            return _mean_answer(h, head, classification, y_scale, y_mean, (0, 1))

        return bag, NUMPY_ROWS


@dataclass
class _NumpyNet:
    """One network's weights for the numpy forward pass (``MLPModel._numpy_net``)."""

    write: Callable[[np.ndarray], np.ndarray]
    tables: list[np.ndarray]
    cat: np.ndarray
    cards: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray] | None]
    y_scale: float
    y_mean: float
    #: a network of several members (``TabularMLP``'s ``members``): each one's input multipliers (k, width),
    #: and their output layers, (k, width, outputs) and (k, 1, outputs)
    adapter: np.ndarray | None = None
    head: tuple[np.ndarray, np.ndarray] | None = None

    def members(self) -> list[_NumpyNet]:
        """Its members as networks of their own (one: itself), each member's multipliers taken into its own
        copy of the first layer (``(x * a) @ w`` as ``x @ (a * w)``, within float32's rounding)."""
        if self.adapter is None:
            return [self]
        w, b = self.layers[0]  # type: ignore[misc]
        return [replace(self, layers=[(a[:, None] * w, b), *self.layers[1:]], adapter=None, head=None)
                for a in self.adapter]

    def codes(self, x: np.ndarray) -> np.ndarray | None:
        """The category codes to embed: a missing, negative or unseen code takes the embedding's extra row."""
        if not len(self.cat):
            return None
        c = x[:, self.cat]
        return np.where(np.isnan(c) | (c < 0) | (c >= self.cards), self.cards, np.nan_to_num(c)).astype(np.int64)

    def first(self, x: np.ndarray, codes: np.ndarray | None) -> np.ndarray:
        """The input row (numbers, missing flags, embeddings) through the first layer."""
        parts = [self.write(x)]
        if codes is not None:
            parts += [t[codes[:, i]] for i, t in enumerate(self.tables)]
        w, b = self.layers[0]  # type: ignore[misc]
        z = np.concatenate(parts, axis=1)
        if self.adapter is not None:  # each member's own multipliers: (members, rows, width)
            z = z[None] * self.adapter[:, None, :]
        return z @ w + b


def _fused_first(models: list[MLPModel], nets: list[_NumpyNet]) -> Callable[..., np.ndarray] | None:
    """The first layer of all a bag's networks at once: their inputs are the same numbers, each scaled its own
    way, their own missing flags, and embeddings of the same codes; so the numbers' part is one batched
    product, the flags' one more (each network's flag weights placed at its flagged columns, zeros
    elsewhere), and each embedding table is taken through its rows of the layer beforehand, so an
    embedding costs a look-up. The same products summed in another order: within float32's rounding of
    each network's own pass. None where the networks read different number columns."""
    preps = [m.estimator["prep"] for m in models]
    num = np.asarray(preps[0].num_, dtype=np.int64)
    if any(prep.cat_ or list(prep.num_) != list(num) for prep in preps):
        return None
    width = len(num)
    params = {k: np.stack([np.asarray(getattr(prep, k), dtype=np.float64) for prep in preps])[:, None, :]
              for k in ("median_", "lo_", "hi_", "mean_", "scale_")}
    w_num, w_flag, bias, through = [], [], [], []
    for prep, net in zip(preps, nets, strict=True):
        w, b = net.layers[0]  # type: ignore[misc]
        flagged = np.zeros((width, w.shape[1]), dtype=w.dtype)
        flagged[prep.flag_] = w[width:width + len(prep.flag_)]
        start, tables = width + len(prep.flag_), []
        for t in net.tables:
            tables.append(t @ w[start:start + t.shape[1]])
            start += t.shape[1]
        if start != w.shape[0]:
            return None
        w_num.append(w[:width])
        w_flag.append(flagged)
        bias.append(b)
        through.append(tables)
    W_num, W_flag, B = np.stack(w_num), np.stack(w_flag), np.stack(bias)[:, None, :]
    T = [np.stack([tables[i] for tables in through]) for i in range(len(nets[0].tables))]

    def fused(x: np.ndarray, codes: np.ndarray | None) -> np.ndarray:
        v = x[:, num]
        missing = np.isnan(v)
        z = scale_numbers(v, missing, params["median_"], params["lo_"], params["hi_"], params["mean_"], params["scale_"])
        h = np.matmul(z.astype(np.float32), W_num) + np.matmul(missing.astype(np.float32), W_flag) + B
        for i, t in enumerate(T):
            h += t[:, codes[:, i], :]  # type: ignore[index]
        return h

    return fused


def _hidden(h: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray] | None]) -> np.ndarray:
    """``h`` through the layers after the first (None: a ReLU, in place): one network's (rows, width), or a
    bag's networks stacked (networks, rows, width) with their weights stacked alike."""
    for layer in layers:
        if layer is None:
            np.maximum(h, 0.0, out=h)
        else:
            h = np.matmul(h, layer[0]) + layer[1]
    return h


def _mean_answer(h: np.ndarray, head: tuple[np.ndarray, np.ndarray] | None, classification: bool, y_scale: Any,
                 y_mean: Any, axis: int | tuple[int, ...]) -> np.ndarray:
    """The last hidden layer through the members' output layers (``head``; None: ``h`` is the output), as
    answers, averaged over ``axis`` (the members, the networks)."""
    if head is not None:
        h = np.matmul(h, head[0]) + head[1]
    return np.mean(_output(h.astype(np.float64), classification, y_scale, y_mean), axis=axis)


def _output(z: np.ndarray, classification: bool, y_scale: Any, y_mean: Any) -> np.ndarray:
    """The network's outputs (last axis) as probabilities, or as values on the target's scale."""
    if classification:
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return z[..., 0] * y_scale + y_mean


@register
class MLPFamily(ModelFamily):
    name = "mlp"
    target_range = "beyond"
    place = 4
    place_large = 3  # a neural net gains most from the rows
    # before CatBoost with several classes (26 letters: 0.120 -> 0.080 test log loss at 60 s, the network
    # the best single model and left without a turn behind CatBoost)
    place_multiclass = 2.5
    # first of all with ten classes or more: LightGBM's first candidate (26 trees a round on the letters) took
    # half the search, 24 s, for 0.128 validation log loss while the network got 9.5 s for 0.103; network
    # first, 24 s for 0.084 and LightGBM's 9.6 s still a member: test 0.0890 -> 0.0741 (digits 0.0806 -> 0.0716)
    place_many_classes = -0.5  # before LightGBM (0), after a family for text (-1) or pictures (-2)
    packages = ("torch",)
    early_stopping = True
    rounds_predict = False
    bag_folds = True
    # an epoch is long enough to time on its own, but the difference of two fits of one and two epochs is not:
    # on car's table it read 0.044, 0.0625 and 0.088 s an epoch on the same day, and a network priced too dear
    # gets fewer epochs; over three epochs of difference the reads stay within one rounding step
    # (bench/RESULTS.md, "CatBoost's callback ...")
    probe_units = 4
    relative_cost = 4.0
    parallel_folds = False  # many small torch calls: two threads fight over the GIL (measured 1.7x slower)
    warm_up_s = 2.0  # importing torch: 2-3.3 s measured on two busy cores, before the network's first epoch

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
        rng = np.random.default_rng(ctx.seed)
        max_epochs = int(params.pop("n_estimators", 200 if X_val is not None else 30))
        max_epochs = max_epochs if ctx.max_units is None else min(max_epochs, ctx.max_units)
        # a refit on all rows replays the learning-rate drops that the validated fit made
        replay = list(params.pop("lr_drops", [])) if X_val is None else None
        prep = OneHotScaler(ctx.categorical, ctx.cardinalities, onehot=False).fit(X)
        cards = [int(c) for c in ctx.cardinalities]
        regression = not ctx.task.is_classification
        y_mean = float(np.mean(y)) if regression else 0.0
        y_scale = float(np.std(y) or 1.0) if regression else 1.0
        from ._torch_net import AdamW, new_network

        net = new_network(ctx.seed, prep.n_features_out_, cards, 1 if regression else ctx.n_classes,
                          hidden=int(params.get("hidden", 256)), layers=int(params.get("layers", 3)),
                          dropout=float(params.get("dropout", 0.1)), members=int(params.get("members", 1)))
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
        vweight = None if ctx.valid_weight is None else torch.from_numpy(ctx.valid_weight.astype(np.float32))
        valid = (vnum, vcat, vtarget, vweight) if X_val is not None and y_val is not None else None
        loop = EpochLoop(torch, net, opt, loss_fn, (num, cat, target, weight), valid, regression=regression,
                         batch=batch, rng=rng, replay=replay, dropout=net.dropout_generator())
        loop.run(max_epochs, deadline)
        model.params["n_estimators"] = max_epochs
        model.finished(loop)
        if ctx.keep_training and valid is not None and X_val is not None:  # the search's fit: it may go on
            model._loop, model._going_on = loop, (X_val, max(1, ctx.n_jobs))
        return model
