"""How much each of the user's columns pushed one prediction up or down: additive contributions that add
up, with the base value, to exactly what the model predicts.

Each ensemble member explains itself the cheapest exact way its family allows (``FittedModel.contributions``:
the boosters' own TreeSHAP, a forest's TreeSHAP or path attribution, a linear model's coefficients); a
member without one (k-NN, the MLP, a plugin's family) gets Shapley values sampled over the features against
background rows. A bag of fold models is explained as the average of its models' explanations.

Trees explain log-odds or raw scores; those contributions are rescaled to add up to the member's own
output (a probability or a value), then weighted as the ensemble weights its members, then rescaled once
more through the probability calibrator if the model has one. Finally the encoded features that come from
one input column (a date's parts, a text's components) are summed into that column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Contributions", "column_contributions", "explain_encoded", "explain_rows", "is_sampled", "sampled_reason"]


@dataclass
class Contributions:
    """Additive explanation of n predictions over input columns, for each output (class or value).

    ``values`` (n, c, k): column contributions; ``base`` (n, k): the model's output for an average row;
    ``base + values.sum(axis=1)`` equals the model's output. ``columns`` names the c input columns.
    """

    columns: list[str]
    values: np.ndarray
    base: np.ndarray
    output: np.ndarray
    methods: list[str]


# -- per-member contributions in the member's own space ----------------------------------------------------

def _sampled_shapley(fn: Any, X: np.ndarray, groups: list[np.ndarray], background: np.ndarray, *,
                     permutations: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values over feature groups, by antithetic permutation sampling against background rows."""
    rng = np.random.default_rng(seed)
    n, g, m = len(X), len(groups), len(background)
    base = np.asarray(fn(background), dtype=float).reshape(m, -1).mean(axis=0)
    outs = len(base)
    contrib = np.zeros((n, g, outs))
    orders = []
    for _ in range(max(1, permutations // 2)):
        o = rng.permutation(g)
        orders += [o, o[::-1]]
    for i in range(n):
        batch = []
        for order in orders:
            cur = background.copy()
            for gi in order:
                cur = cur.copy()
                cur[:, groups[gi]] = X[i, groups[gi]]
                batch.append(cur)
        preds = np.asarray(fn(np.concatenate(batch)), dtype=float).reshape(len(orders), g, m, outs).mean(axis=2)
        for p, order in enumerate(orders):
            prev = base
            for step, gi in enumerate(order):
                contrib[i, gi] += preds[p, step] - prev
                prev = preds[p, step]
        contrib[i] /= len(orders)
    return contrib, np.broadcast_to(base, (n, outs)).copy()


def is_sampled(member: Any) -> bool:
    """True for a member explained by sampling (slow: hundreds of predictions per explained row)."""
    parts = _parts(member)
    if parts is not None:
        return any(is_sampled(m) for m in parts)
    return not getattr(member, "explained_exactly", False)


#: families without an exact attribution, in words
_FAMILY_WORDS = {"mlp": "a neural network", "knn": "k-nearest neighbours", "svm": "a support-vector machine",
                 "cnn": "a picture network"}


def sampled_reason(member: Any) -> str:
    """Why ``member`` (one that ``is_sampled``) has no exact attribution, in words: a neural network or
    k-nearest neighbours has none; a booster that learned a transform of the target (log) attributes its trees'
    output exactly, but that output is the transformed target, whose parts do not add up to its estimates."""
    parts = _parts(member)
    if parts is not None:
        return sampled_reason(next((m for m in parts if is_sampled(m)), parts[0]))
    transform = (getattr(member, "params", None) or {}).get("target_transform")
    family = str(getattr(member, "family", "") or type(member).__name__)
    if transform and transform != "none":
        return (f"a {family} model of the {transform} of the target: its trees' exact attributions are in "
                f"{transform} units, which do not add up to its estimates")
    return f"{_FAMILY_WORDS.get(family, f'a {family} model')}, with no exact attribution"


def _member_contributions(member: Any, X: np.ndarray, k: int, background: np.ndarray | None
                          ) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(values (n, f, outs), base (n, outs), space, method) for one fitted ensemble member: its own exact
    ``contributions`` where it has them, else Shapley values sampled against the background rows."""
    own = member.contributions(X, k, background) if hasattr(member, "contributions") else None
    if own is not None:
        return own.values, own.base, own.space, own.method
    if background is None:
        family = getattr(member, "family", "")
        raise ValueError(f"no way to explain a {family or type(member).__name__} member without background rows")
    groups = [np.array([j]) for j in range(X.shape[1])]
    values, base = _sampled_shapley(member.predict_raw, X, groups, _representative(member.predict_raw, background),
                                    permutations=6)
    return values, base, "output", "sampled Shapley"


#: background rows a sampled explanation measures against (each costs a prediction per feature and permutation)
SAMPLED_BACKGROUND = 10


def _representative(fn: Any, background: np.ndarray, m: int = SAMPLED_BACKGROUND) -> np.ndarray:
    """``m`` of the background rows, spread over the member's answers to them: the answers sorted (by the output
    that varies most) and cut into ``m`` equal slices, from each the row whose answer is nearest the slice's mean,
    so that the answer for "an average row" the explanation starts from is close to the mean over every
    background row, long tails included, not to that of the first ``m`` (once 20% off on a regression)."""
    if len(background) <= m:
        return background
    pred = np.asarray(fn(background), dtype=float).reshape(len(background), -1)
    key = pred[:, int(np.argmax(pred.var(axis=0)))]
    order = np.argsort(key, kind="stable")
    picks = [part[int(np.argmin(np.abs(key[part] - key[part].mean())))] for part in np.array_split(order, m)]
    return background[np.asarray(picks)]


# -- putting the members together ---------------------------------------------------------------------------

def _to_output(values: np.ndarray, base: np.ndarray, space: str, out: np.ndarray, k: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Contributions rescaled so they add up to the member's output ``out`` (n, K) rather than its margin,
    from the probabilities of its base margin (a row of average log-odds: the one base from which every
    contribution keeps the sign it has on the log-odds, since the probability rises with them)."""
    n = len(out)
    outs_full = out if out.ndim == 2 else out[:, None]
    if space == "output":
        if k == 2 and values.shape[2] == 2:
            return values, base
        if k == 2:  # explained the positive class only
            v = np.concatenate([-values, values], axis=2)
            return v, np.column_stack([1 - base[:, 0], base[:, 0]])
        return values, base
    # margins: logistic for binary, softmax for multiclass
    if k == 2:
        p_base = 1.0 / (1.0 + np.exp(-base[:, 0]))
        target = outs_full[:, 1] - p_base
        total = values[:, :, 0].sum(axis=1)
        scale = np.divide(target, total, out=np.zeros(n), where=np.abs(total) > 1e-12)
        v1 = values[:, :, 0] * scale[:, None]
        return np.stack([-v1, v1], axis=2), np.column_stack([1 - p_base, p_base])
    b = base - base.max(axis=1, keepdims=True)
    p_base = np.exp(b) / np.exp(b).sum(axis=1, keepdims=True)
    target = outs_full - p_base
    total = values.sum(axis=1)
    scale = np.divide(target, total, out=np.zeros_like(target), where=np.abs(total) > 1e-12)
    return values * scale[:, None, :], p_base


def _parts(member: Any) -> list[Any] | None:
    """The fold models of a bagged member (one averaging several fitted models), or None."""
    est = getattr(member, "estimator", None)
    if isinstance(est, list | tuple) and est and all(hasattr(m, "predict_raw") for m in est):
        return list(est)
    return None


def _output_contributions(member: Any, X: np.ndarray, k: int, background: np.ndarray | None,
                          classification: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """A member's contributions and base value in its output space (probabilities or values); a bag of
    fold models is explained as the average of its models' explanations, as it predicts their average."""
    parts = _parts(member)
    if parts is not None:
        results = [_output_contributions(m, X, k, background, classification) for m in parts]
        return (np.mean([r[0] for r in results], axis=0), np.mean([r[1] for r in results], axis=0),
                f"{results[0][2]} (bag of {len(parts)})")
    v, b, space, method = _member_contributions(member, X, k, background)
    if classification:
        v, b = _to_output(v, b, space, np.asarray(member.predict_raw(X), dtype=float), k)
    return v, b, method


def _bounded(predictor: Any, X: np.ndarray) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """For each member a regression ensemble keeps within its ``Bounds`` (``training/ensemble.py``): its own
    values for ``X`` and those the ensemble weighs; and the ensemble's answer, from the members' one pass."""
    bounds = getattr(predictor, "bounds", None)
    if bounds is None:
        return {}, predictor.predict_raw(X)
    raw = [np.asarray(m.predict_raw(X), dtype=float) for _, m, _ in predictor.members]
    kept = bounds.apply(raw)
    return {i: (raw[i], kept[i]) for i in bounds.capped}, predictor.combine(kept)


def _rescaled(values: np.ndarray, base: np.ndarray, raw: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """A member's contributions (n, c, 1) to its ``raw`` values, scaled per row to add up to ``kept``."""
    own = raw.reshape(len(raw)) - base[:, 0]
    scale = np.divide(kept.reshape(len(kept)) - base[:, 0], own, out=np.ones_like(own), where=np.abs(own) > 1e-12)
    return values * scale[:, None, None]


def explain_encoded(model: Any, X: np.ndarray) -> Contributions:
    """Contributions per input column for the encoded rows ``X`` of ``model`` (a Model bundle)."""
    task = model.task
    k = len(task.classes) if task.is_classification else 1
    background = model.extras.get("background")
    total_v = None
    total_b = None
    methods = []
    bounded, output = _bounded(model.predictor, X)
    for i, (name, member, weight) in enumerate(model.predictor.members):
        v, b, method = _output_contributions(member, X, k, background, task.is_classification)
        if i in bounded:  # a value the ensemble kept near its trees' answers: its contributions add up to that
            v = _rescaled(v, b, *bounded[i])
        methods.append(f"{name}: {method}")
        total_v = v * weight if total_v is None else total_v + v * weight
        total_b = b * weight if total_b is None else total_b + b * weight
    assert total_v is not None and total_b is not None
    calibrator = model.extras.get("calibrator")
    if calibrator is not None and task.is_classification:
        cal_out = calibrator.transform(output)
        cal_base = calibrator.transform(total_b)
        diff = output - total_b
        scale = np.divide(cal_out - cal_base, diff, out=np.ones_like(diff), where=np.abs(diff) > 1e-9)
        total_v = total_v * scale[:, None, :]
        total_b, output = cal_base, cal_out
    if output.ndim == 1:
        output = output[:, None]
    # sum the encoded features of one input column into that column
    names = list(model.encoder.feature_names_)
    sources = [model.encoder.source_column(f) for f in names]
    columns = list(dict.fromkeys(sources))
    index = {c: i for i, c in enumerate(columns)}
    grouped = np.zeros((len(X), len(columns), total_v.shape[2]))
    for j, s in enumerate(sources):
        grouped[:, index[s], :] += total_v[:, j, :]
    return Contributions(columns=columns, values=grouped, base=total_b, output=output, methods=methods)


def column_contributions(model: Any, data: Any) -> Contributions:
    """Contributions per input column for raw rows ``data`` (a DataFrame, a record or records)."""
    return explain_encoded(model, model.encode(data))


def explain_rows(model: Any, data: Any, *, top: int = 5, target_class: Any = None) -> list[dict[str, Any]]:
    """For each row: the prediction, the base value (an average row's output) and the ``top`` columns that
    moved it most, each with the row's value and its contribution, largest first. A text column adds the
    ``words`` that moved its score most, a picture its ``occlusion`` map (``media.py``).

    For classification the explained output is the probability of ``target_class`` (default: the positive
    class of a binary task, the predicted class of a multiclass one).
    """
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        from ..errors import ConfigError

        raise ConfigError(f"--top takes how many columns to show a row, 1 or more; got {top!r}.")
    frame = model.to_frame(data)
    X = model.encode(frame)
    contrib = explain_encoded(model, X)
    # the model's average answer (on its validation rows, out of sample): for a classifier the base value is
    # the probability of the average log-odds, far below it where the model is sure of most rows
    pred = np.asarray(model.validation.get("pred", contrib.output), dtype=float)
    mean = [float(m) for m in np.atleast_1d(pred.reshape(len(pred), -1).mean(axis=0))]
    labels = model.decide(contrib.output if model.task.is_classification else contrib.output[:, 0])
    out = []
    for i in range(len(frame)):
        if model.task.is_classification:
            if target_class is not None:
                if target_class not in model.classes:
                    from ..errors import ConfigError

                    raise ConfigError(f"Unknown class {target_class!r}: the model's classes are "
                                      f"{', '.join(map(str, model.classes))}.")
                c = model.classes.index(target_class)
            else:
                c = 1 if len(model.classes) == 2 else int(np.argmax(contrib.output[i]))
            explained = f"probability of {model.classes[c]}"
        else:
            c = 0
            explained = model.target
        vals = contrib.values[i, :, c]
        order = np.argsort(-np.abs(vals))[:top]
        row = frame.iloc[i]
        items = []
        for j in order:
            col = contrib.columns[j]
            v = row[col] if col in frame.columns else None
            items.append({"column": col, "value": _plain(v), "contribution": float(vals[j]),
                          **_rare(model, col, X[i], v), **_inside(model, col, v, X[i:i + 1], c)})
        rest = float(vals.sum() - sum(it["contribution"] for it in items))
        pred = labels[i]
        out.append({"prediction": _plain(pred), "explained": explained,
                    "base_value": float(contrib.base[i, c]), "output": float(contrib.output[i, c]),
                    "mean_output": mean[c],
                    "contributions": items, "other_columns": rest,
                    "other_columns_count": len(contrib.columns) - len(items)})
    return out


def _rare(model: Any, column: str, x: np.ndarray, value: Any) -> dict[str, Any]:
    """A ``note`` for a category the model never saw (or saw too rarely to learn), which it reads as its group
    of rare values, or as missing: the contribution is for that, not for the value as written."""
    from ..features.encoder import RARE

    enc = model.encoder
    if getattr(enc, "roles_", {}).get(column) != "categorical" or _plain(value) is None:  # most contributions
        return {}
    names = list(enc.feature_names_)
    if column not in names:
        return {}
    cats = enc.categories_[column]
    code = x[names.index(column)]
    if code != code:  # a column without a rare group reads a new category as a missing value
        return {"note": "new: read as missing"}
    if not 0 <= int(code) < len(cats) or cats[int(code)] != RARE:
        return {}
    return {"note": "new or rare: read as rare"}


def _inside(model: Any, column: str, value: Any, X: np.ndarray, c: int) -> dict[str, Any]:
    """For a text column, the words that moved its score (``words``); for a picture, its occlusion map."""
    from .media import occlusion_map, word_weights

    plain = _plain(value)
    if plain is None or (isinstance(plain, str) and not plain.strip()):  # no text or picture: nothing inside
        return {}
    words = word_weights(model, column, value, c)
    if words is not None:
        return {"words": words}
    occlusion = occlusion_map(model, X, column, c)
    return {"occlusion": occlusion} if occlusion is not None else {}


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, bytes | bytearray | memoryview):  # a picture's bytes: said, not echoed
        return f"<picture, {len(v):,} bytes>"
    if v is not None and not isinstance(v, str | int | float | bool):
        return str(v)
    return v
