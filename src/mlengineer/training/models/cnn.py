"""The cnn family: a small convolutional network trained from scratch on the CPU for a table with a picture
column (PyTorch, the ``deep`` extra; the network is ``features/cnn.py``).

The encoder lays each picture out as a block of pixel features (``features/images.py``); this family reads
the first such block back into pictures, and the table's other columns (scaled, categories one-hot) join the
picture's embedding before the network's head. Training: AdamW with a one-cycle learning rate over the
epochs its planned seconds allow (timed on the first batches, which also choose the network's width: the
seconds the search plans for the fit, recovered from its safety stop by ``planned_seconds``, never the safety
stop itself, three times as long), random turns, shifts and scales of each batch, early stopping on validation
rows; a refit replays the epochs the validated fit found best. Explained by occlusion: each patch of the
picture (and each other column) is set to the background's average in turn, and the changes, rescaled to add
up to the prediction, are its contributions. First in the portfolio where the table has pictures; not tried
elsewhere.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...features.images import pixel_block
from ...features.onehot import OneHotScaler
from ..clock import fit_safety
from .base import Attribution, Deadline, FitContext, FittedModel, ModelFamily, register

INSTALL_HINT = "the cnn family needs the deep extra: pip install 'mlengineer[deep]'"
_BATCH = 64


class CNNModel(FittedModel):
    """``estimator``: {"net", "block" (where the pixels are), "other" (other feature positions), "prep"}."""

    def _tensors(self, X: np.ndarray) -> tuple[Any, Any]:
        import torch

        est = self.estimator
        c, h, w = est["block"]["shape"]
        images = np.ascontiguousarray(X[:, est["block"]["index"]], dtype=np.float32).reshape(len(X), c, h, w)
        images = np.nan_to_num(images, nan=0.0)
        other = est["prep"].transform(X[:, est["other"]]) if est["other"] else np.zeros((len(X), 0), np.float32)
        # channels last: oneDNN's convolutions on the CPU run about a third faster on it (measured on MNIST)
        return (torch.from_numpy(images).contiguous(memory_format=torch.channels_last),
                torch.from_numpy(np.array(other, dtype=np.float32, copy=True)))

    def _outputs(self, z: Any) -> np.ndarray:
        import torch

        z = z.double()
        if self.task.is_classification:
            return torch.softmax(z, dim=1).numpy()
        return z[:, 0].numpy() * self.params["_y_scale"] + self.params["_y_mean"]

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        import torch

        net = self.estimator["net"]
        net.eval()
        out = []
        with torch.inference_mode():
            for s in range(0, len(X), 1024):
                images, other = self._tensors(X[s:s + 1024])
                out.append(net(images, other))
        return self._outputs(torch.cat(out))

    def contributions(self, X: np.ndarray, k: int, background: np.ndarray | None = None) -> Attribution:
        """Occlusion: each patch of the picture (and each other feature) set to the background's average
        row in turn; the output changes, rescaled so that they add up to output minus base, are the
        contributions of the patch's pixels (shared equally), in the output space."""
        ref = np.nanmean(background, axis=0) if background is not None else np.zeros(X.shape[1])
        ref = np.nan_to_num(ref)
        groups = occlusion_groups(self.estimator["block"], X.shape[1])
        n, f = X.shape
        full = self.predict_raw(X).reshape(n, -1)
        base = np.broadcast_to(self.predict_raw(ref[None, :]).reshape(1, -1), full.shape).copy()
        deltas = np.zeros((n, len(groups), full.shape[1]))
        for g, idx in enumerate(groups):
            Xg = X.copy()
            Xg[:, idx] = ref[idx]
            deltas[:, g] = full - self.predict_raw(Xg).reshape(n, -1)
        total = full - base
        s = deltas.sum(axis=1)
        even = np.abs(s) < 1e-9
        scale = np.divide(total, s, out=np.zeros_like(total), where=~even)
        values = deltas * scale[:, None, :]
        values[np.broadcast_to(even[:, None, :], values.shape)] = 0.0
        values += np.where(even, total / len(groups), 0.0)[:, None, :]
        contrib = np.zeros((n, f, full.shape[1]))
        for g, idx in enumerate(groups):
            contrib[:, idx, :] = values[:, g:g + 1, :] / len(idx)
        return Attribution(contrib, base, "output", "occlusion")


def occlusion_groups(block: dict[str, Any], n_features: int, patches: int = 7) -> list[np.ndarray]:
    """The features occlusion hides together: square patches of the picture (about ``patches`` a side, all
    channels), then every other feature alone."""
    c, h, w = block["shape"]
    index = np.asarray(block["index"]).reshape(c, h, w)
    ph, pw = max(1, math.ceil(h / patches)), max(1, math.ceil(w / patches))
    groups = [index[:, y:y + ph, x:x + pw].ravel() for y in range(0, h, ph) for x in range(0, w, pw)]
    taken = set(np.asarray(block["index"]).tolist())
    return groups + [np.array([j]) for j in range(n_features) if j not in taken]


@register
class CNNFamily(ModelFamily):
    name = "cnn"
    target_range = "beyond"
    needs_column = "picture"
    place = None  # only where the table has pictures (``place_for``)
    packages = ("torch", "pillow")
    early_stopping = True
    rounds_predict = False  # more epochs, the same network to predict (as the mlp family)
    probe_units = 2  # an epoch is long enough to time on its own (base.ModelFamily)
    relative_cost = 20.0
    parallel_folds = False  # torch uses the cores itself
    lead_share = 0.75  # on pictures it is the model that matters; the others see raw pixels

    def available(self) -> bool:
        return importlib.util.find_spec("torch") is not None

    def unavailable_reason(self) -> str:
        return INSTALL_HINT

    def warm_up(self) -> None:
        from ...features import cnn  # imports torch

        cnn.warm()  # the first convolution steps set up oneDNN: seconds, outside the fits' clocks

    def place_for(self, feature_names: Sequence[str], large: bool) -> int | None:
        return -2 if pixel_block(feature_names) is not None else None

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [{"lr": 3e-3, "weight_decay": 1e-4, "dropout": 0.2, "augment": True}]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {"lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True),
                "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
                "dropout": trial.suggest_float("dropout", 0.0, 0.5),
                "augment": trial.suggest_categorical("augment", [True, False])}

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, ctx.n_jobs))
        try:
            return _train(torch, X, y, ctx, params, X_val, y_val)
        finally:
            torch.set_num_threads(threads)


def _prepare(X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any]) -> CNNModel:
    """An untrained model: where the pixels are, the other columns' scaler, and the target's scale."""
    block = pixel_block(ctx.feature_names)
    if block is None:
        raise ValueError("the cnn family needs a picture column (none of the features is a pixel)")
    pixels = set(block["index"].tolist())
    other = [j for j in range(X.shape[1]) if j not in pixels]
    position = {j: i for i, j in enumerate(other)}
    cat = [(position[j], c) for j, c in zip(ctx.categorical, ctx.cardinalities, strict=True) if j in position]
    prep = OneHotScaler([p for p, _ in cat], [c for _, c in cat]).fit(X[:, other]) if other else None
    regression = not ctx.task.is_classification
    y_mean = float(np.mean(y)) if regression else 0.0
    y_scale = float(np.std(y) or 1.0) if regression else 1.0
    return CNNModel({"net": None, "block": block, "other": other, "prep": prep},
                    {**params, "_y_mean": y_mean, "_y_scale": y_scale}, ctx.task)


def planned_seconds(time_limit: float | None) -> float | None:
    """The seconds the search planned for a fit whose safety stop is ``time_limit`` (``clock.fit_safety``
    read backwards); None for a fit with no clock (a cost probe, or the safety stops turned off)."""
    zero, one = fit_safety(0.0), fit_safety(1.0)
    if time_limit is None or zero is None or one is None or one <= zero:
        return None
    return max(0.0, (time_limit - zero) / (one - zero))


def planned_epochs(done: int, epoch_s: float, seconds_left: float, most: int | None) -> int:
    """The epochs a fit runs once ``done`` of them took ``epoch_s`` seconds each: those and as many more as
    ``seconds_left`` of its planned seconds hold (at least ``done``, at most 60 and the plan's cap ``most``)."""
    more = seconds_left / max(epoch_s, 1e-9) if math.isfinite(seconds_left) else 60.0
    return max(min(int(np.clip(done + more, 1, 60)), most or 10**9), done)


def _width(torch: Any, model: CNNModel, images: Any, other: Any, outputs: int, seconds: float, n: int) -> int:
    """The first stage's channels: the widest of 32, 16 and 8 that allows about 12 epochs in ``seconds``
    (timed on two batches), else 8."""
    from ...features.cnn import ImageNet
    from ._torch_net import AdamW

    for width in (32, 16, 8):
        net = ImageNet(images.shape[1], other.shape[1], outputs, width=width)
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        opt = AdamW(net.parameters(), lr=1e-3, weight_decay=0.0)
        b = min(_BATCH, len(images))
        for step in range(3):  # the first step sets up the convolutions: time the two after it
            if step == 1:
                t0 = time.perf_counter()
            loss = net(images[:b], other[:b]).float().pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        epoch = (time.perf_counter() - t0) / 2 * max(n / b, 1)
        if epoch * 12 <= seconds:
            return width
    return 8


def _train(torch: Any, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
           X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
    from ...features.cnn import ImageNet, augment

    deadline = ctx.deadline()  # the safety stop
    budget = Deadline(planned_seconds(ctx.time_limit))  # what the network is sized to: the fit's planned seconds
    torch.manual_seed(ctx.seed)
    gen = torch.Generator().manual_seed(ctx.seed)
    model = _prepare(X, y, ctx, params)
    regression = not ctx.task.is_classification
    outputs = 1 if regression else ctx.n_classes
    images, other = model._tensors(X)
    target = torch.from_numpy(_target(y, model, regression))
    width = int(params.get("width") or _width(torch, model, images, other, outputs, budget.left(), len(X)))
    net = ImageNet(images.shape[1], other.shape[1], outputs, width=width, dropout=float(params.get("dropout", 0.2)))
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    model.estimator["net"] = net
    val = None
    if X_val is not None and y_val is not None:
        val = (*model._tensors(X_val), torch.from_numpy(_target(y_val, model, regression)))
    weights = tuple(None if w is None else torch.from_numpy(np.asarray(w, dtype=np.float32))
                    for w in (ctx.sample_weight, ctx.valid_weight if val is not None else None))
    epochs = _loop(torch, net, images, other, target, val, deadline=deadline, params=params, gen=gen,
                   regression=regression, augment=augment if params.get("augment", True) else None, model=model,
                   weights=weights, most=ctx.max_units, budget=budget)
    model.params.update(width=width, n_estimators=epochs)
    return model


def _target(y: np.ndarray, model: CNNModel, regression: bool) -> np.ndarray:
    """The target as the network learns it (standardised values, or class indices), in a fresh array."""
    if regression:
        return ((np.asarray(y, dtype=np.float64) - model.params["_y_mean"]) / model.params["_y_scale"]).astype(np.float32)
    return np.array(y, dtype=np.int64, copy=True)


def _weighted_loss(torch: Any, out: Any, target: Any, regression: bool, w: Any) -> Any:
    """The rows' mean loss, each row counting for its weight ``w`` (a batch that weighs nothing moves nothing)."""
    F = torch.nn.functional
    rows = F.mse_loss(out[:, 0], target, reduction="none") if regression else \
        F.cross_entropy(out, target, reduction="none")
    return (rows * w).sum() / w.sum().clamp_min(1e-12)


def _loop(torch: Any, net: Any, images: Any, other: Any, target: Any, val: Any, *, deadline: Deadline,
          params: dict[str, Any], gen: Any, regression: bool, augment: Any, model: CNNModel,
          weights: tuple[Any, ...] = (None, None), most: int | None = None, budget: Deadline | None = None) -> int:
    """Train ``net`` in place; returns the epochs a refit should run (the best ones, or those it ran).
    ``weights``: the training and the validation rows' weights (None: each row counts once); ``most``: the
    epochs the plan allows (a cost probe, which has no clock, runs that many; a search fit no more);
    ``budget``: the fit's planned seconds, which the epochs are sized to once the first is timed (``deadline``
    is only the safety stop)."""
    from ._torch_net import AdamW

    budget = budget or Deadline(None)

    n = len(images)
    batch = min(_BATCH, n)
    steps_per_epoch = max(1, n // batch)
    planned = min(int(params.get("n_estimators") or 30), most or 10**9)
    lr = float(params.get("lr", 3e-3))
    # written out (``_torch_net``): torch.optim's first use imports torch's compiler stack, 9 s of a fit's
    # clock on a busy machine, where a small picture table's network got no epoch at all
    opt = AdamW(net.parameters(), lr=lr, weight_decay=float(params.get("weight_decay", 1e-4)))
    loss_fn = torch.nn.MSELoss() if regression else torch.nn.CrossEntropyLoss()
    best = (math.inf, None, 0)
    step, epoch, stale = 0, 0, 0
    started = time.perf_counter()
    while epoch < planned and not deadline.passed():
        net.train()
        order = torch.randperm(n, generator=gen)
        for s in range(0, n - batch + 1, batch):
            idx = order[s:s + batch]
            # one cycle: warm up over the first tenth, then cosine down to nothing at the planned end
            frac = step / max(planned * steps_per_epoch, 1)
            opt.lr = lr * (frac / 0.1 if frac < 0.1 else 0.5 * (1 + math.cos(math.pi * (frac - 0.1) / 0.9)))
            xb = images[idx] if augment is None else augment(images[idx], gen)
            xb = xb.contiguous(memory_format=torch.channels_last)
            out = net(xb, other[idx])
            loss = loss_fn(out[:, 0] if regression else out, target[idx]) if weights[0] is None else \
                _weighted_loss(torch, out, target[idx], regression, weights[0][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if deadline.passed():
                break
        epoch += 1
        if val is not None:
            net.eval()
            with torch.inference_mode():
                out = net(val[0], val[1])
                v = float(loss_fn(out[:, 0] if regression else out, val[2]) if weights[1] is None else
                          _weighted_loss(torch, out, val[2], regression, weights[1]))
            if v < best[0] - 1e-6:
                best, stale = (v, copy.deepcopy(net.state_dict()), epoch), 0
            else:
                stale += 1
                if stale >= 8:
                    break
        if not params.get("n_estimators"):  # the epochs the plan's seconds allow, at the pace timed so far
            allowed = planned_epochs(epoch, (time.perf_counter() - started) / epoch, budget.left(), most)
            planned = allowed if epoch == 1 else min(planned, allowed)  # later, only fewer (a busier machine)
    if best[1] is not None:
        net.load_state_dict(best[1])
    net.eval()
    model.best_iteration = best[2] if val is not None else epoch
    model.rounds_run = epoch
    return planned if val is None else max(best[2], 1)
