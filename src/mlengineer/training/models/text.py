"""The text family: a linear model over the scores of the text columns' own linear models.

The encoder turns each text column into the scores of a linear model on its full TF-IDF vocabulary (and of
one on sentence embeddings, when the budget allowed them), out of fold on the training rows
(``features/text.py``). This family reads those scores, alone (``sources="tfidf"``: the TF-IDF model itself,
recalibrated) or with the embeddings' scores and the table's other columns (``sources="all"``), into a
logistic (or ridge) regression: a text model that predicts a row in microseconds and explains itself
exactly, per column here and per word in ``explain`` (the TF-IDF model's terms). It comes first in the
portfolio when the table has a text column, and is not tried otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...features.onehot import OneHotScaler
from .base import Attribution, FitContext, FittedModel, ModelFamily, register

SCORE = re.compile(r"^(?P<column>.+)__(?P<source>tfidf|emb)_s(?P<j>\d+)$")
_TEXT_PART = re.compile(r"^.+__(tfidf_s\d+|emb_s\d+|words|chars|svd\d+)$")


def text_score_columns(names: Sequence[str], sources: str) -> list[int]:
    """Positions of the text score features among ``names``: TF-IDF scores only, or every score."""
    return [j for j, n in enumerate(names) if (m := SCORE.match(n)) and (sources != "tfidf" or m["source"] == "tfidf")]


class TextModel(FittedModel):
    """``estimator``: (the input columns it reads, their scaler, the fitted linear model)."""

    def _margin(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cols, prep, est = self.estimator
        Z = prep.transform(X[:, cols])
        return Z, np.asarray(Z @ np.atleast_2d(est.coef_).T + est.intercept_, dtype=np.float64)

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        from scipy.special import expit, softmax

        _, z = self._margin(X)
        if not self.task.is_classification:
            return z[:, 0] * self.params["_y_scale"] + self.params["_y_mean"]
        p = np.column_stack([1.0 - expit(z[:, 0]), expit(z[:, 0])]) if z.shape[1] == 1 else softmax(z, axis=1)
        return self._proba(p, self.estimator[2].classes_)

    def feature_importance(self) -> np.ndarray:
        cols, prep, est = self.estimator
        coef = np.abs(np.atleast_2d(est.coef_)).mean(axis=0) * self.params["_z_std"]
        out = np.zeros(self.params["_n_in"])
        np.add.at(out, np.asarray(cols)[prep.source_index_], coef)
        return out

    def contributions(self, X: np.ndarray, k: int, background: np.ndarray | None = None) -> Attribution:
        """Coefficient x (value - the background's average), per input feature: log-odds for classes,
        the target's units for values."""
        cols, prep, est = self.estimator
        Z, _ = self._margin(X)
        z_ref = prep.transform(background[:, cols]).mean(axis=0) if background is not None else np.zeros(Z.shape[1])
        coef = np.atleast_2d(est.coef_)
        n, f = X.shape
        contrib = np.zeros((n, f, coef.shape[0]))
        where = np.asarray(cols)[prep.source_index_]  # each scaled column's input feature
        for o in range(coef.shape[0]):
            np.add.at(contrib[:, :, o].T, where, ((Z - z_ref) * coef[o]).T)
        base = np.broadcast_to(np.atleast_1d(est.intercept_) + coef @ z_ref, (n, coef.shape[0])).copy()
        if not self.task.is_classification:
            scale, mean = self.params["_y_scale"], self.params["_y_mean"]
            return Attribution(contrib * scale, base * scale + mean, "output", "linear (text scores)")
        return Attribution(contrib, base, "margin", "linear (text scores)")


@register
class TextFamily(ModelFamily):
    name = "text"
    target_range = "beyond"
    needs_column = "text"
    place = None  # only where the table has text (``place_for``)
    packages = ("scikit-learn",)
    relative_cost = 0.05

    def place_for(self, feature_names: Sequence[str], large: bool) -> int | None:
        return -1 if text_score_columns(feature_names, "all") else None

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        key = "C" if task.is_classification else "alpha"
        return [{key: 1.0, "sources": "tfidf"}, {key: 1.0, "sources": "all"}]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        sources = trial.suggest_categorical("sources", ["tfidf", "all"])
        if task.is_classification:
            return {"C": trial.suggest_float("C", 1e-2, 1e2, log=True), "sources": sources}
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True), "sources": sources}

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        from sklearn.linear_model import LogisticRegression, Ridge

        sources = params.get("sources", "tfidf")
        cols = text_score_columns(ctx.feature_names, sources)
        if not cols:
            raise ValueError("the text family needs a text column (none of the features is a text score)")
        if sources == "all":  # the table's other columns too, but not the text's own parts twice
            cols += [j for j, n in enumerate(ctx.feature_names) if j not in cols and not _TEXT_PART.match(n)]
        cols = sorted(cols)
        position = {j: i for i, j in enumerate(cols)}
        cat = [(position[j], c) for j, c in zip(ctx.categorical, ctx.cardinalities, strict=True) if j in position]
        prep = OneHotScaler([p for p, _ in cat], [c for _, c in cat]).fit(X[:, cols])
        Z = prep.transform(X[:, cols])
        params = {**params, "_z_std": Z.std(axis=0), "_n_in": X.shape[1]}
        if ctx.task.is_classification:
            est = LogisticRegression(C=float(params.get("C", 1.0)), max_iter=500, tol=1e-4)
            est.fit(Z, y, sample_weight=ctx.sample_weight)
            return TextModel((cols, prep, est), params, ctx.task)
        y_mean, y_scale = float(np.mean(y)), float(np.std(y) or 1.0)
        est = Ridge(alpha=float(params.get("alpha", 1.0)))
        est.fit(Z, (y - y_mean) / y_scale, sample_weight=ctx.sample_weight)
        return TextModel((cols, prep, est), {**params, "_y_mean": y_mean, "_y_scale": y_scale}, ctx.task)
