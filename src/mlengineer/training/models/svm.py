"""Support-vector machines with a radial (RBF) kernel on one-hot categories and standardised numbers: a smooth
learner of another kind than trees, neighbours and networks, strong on small tables of numbers (vehicle: test
log loss 0.34-0.36 alone, about what the whole ensemble reached without it). Its cost grows with the square of
the rows or faster, so it is offered only on tables of up to ``MAX_ROWS`` rows.

Classes: an ``SVC`` per fit, and probabilities from its one-against-one decision values (one per pair of
classes) through a multinomial logistic regression fitted on those values out of fold (``CALIBRATION_FOLDS``
folds of the fit's rows), its strength chosen by cross-validation. On vehicle and car (4-fold cross-validation,
twice, at C = 30) this gave a lower log loss than libsvm's own Platt coupling (0.342 against 0.356; 0.004
against 0.016) and than a sigmoid per class (``CalibratedClassifierCV``: 0.45-0.50 on vehicle), at about twice
the cost of one fit. Values: an ``SVR`` on the standardised target. Not offered on two-class tables, where it
never joined the ensemble (``SVMFamily.supports``).

No deadline stops a fit inside scikit-learn, so a fit's cost is bounded instead: past ``MAX_FIT_COST`` it learns
from a sample of its rows, and it runs its numerical libraries on one thread (``one_thread``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ...features.onehot import OneHotScaler
from .base import FitContext, FittedModel, ModelFamily, register
from .threads import one_thread

#: the most training rows the family is offered on: its fits grow with the square of the rows (below)
MAX_ROWS = 5_000
#: the most classes it is offered on: its calibration learns from one decision value per pair of classes (45 for
#: 10 classes, cardiotocography's; 300 for 25)
MAX_CLASSES = 10
#: the most a fit may cost, in rows squared times (encoded columns + ``COLUMN_COST``): past it the fit learns
#: from a sample of its rows (``fit_rows``), as no deadline stops libsvm inside scikit-learn. A classifier's fit
#: with its calibration, on two busy cores (load 5-7), took about 6e-9 s a unit: 0.5-0.9 s on 2,000 rows of 10
#: columns, 1.8 s of 60; 2.7-3.3 s on 5,000 of 10; 10-11 s on 5,000 of 60; so at most about 3 s, 1-1.5 s on
#: quiet cores. Kept whole: 5,000 rows of 10 columns, 3,500 of 30, 2,600 of 60, and the bench's tables
#: (cardiotocography's 1,700 training rows of 25 columns, parkinsons' 4,700 of 21, vehicle's, car's). On a 5,000-row table of 30 columns (10 classes) 4,000 rows gave a test log loss of
#: 0.918, a sample of 3,000 0.957 and of 2,400 0.999: a sample costs accuracy, so it is a bound, not a setting
MAX_FIT_COST = 5e8
#: what a row's kernel costs beyond its columns, in columns: libsvm's steps over the cached kernel (10 columns
#: cost 0.3 times 60 at 5,000 rows, not a sixth)
COLUMN_COST = 10
#: how many times ``MAX_FIT_COST`` a regression's fit may cost: one ``SVR``, no calibration's folds
REGRESSION_COST = 2.0
#: folds of the fit's rows whose out-of-fold decision values the probabilities are learned on
CALIBRATION_FOLDS = 3
#: the strengths (``C``) the calibrating logistic regression chooses among, by its own cross-validation
CALIBRATION_CS = (0.1, 1.0, 10.0, 100.0, 1000.0)
#: libsvm's kernel cache in MB: the kernel matrix of 5,000 rows takes 200 MB, all of libsvm's default cache
CACHE_MB = 500.0


def fit_rows(n_columns: int, classification: bool) -> int:
    """The most rows a fit on ``n_columns`` encoded columns learns from (``MAX_FIT_COST``)."""
    bound = MAX_FIT_COST * (1.0 if classification else REGRESSION_COST)
    return int(np.sqrt(bound / (max(n_columns, 1) + COLUMN_COST)))


def row_sample(y: np.ndarray, rows: int, seed: int, classification: bool) -> np.ndarray | None:
    """The rows (sorted positions into ``y``) a fit past its cost bound learns from, about ``rows`` of them: for
    classes, each class's share, and at least ``CALIBRATION_FOLDS`` rows of each that has them. None where all
    ``y``'s rows are within ``rows``."""
    if len(y) <= rows:
        return None
    rng = np.random.default_rng(seed % (2**32))
    if not classification:
        return np.sort(rng.choice(len(y), rows, replace=False))
    _, codes = np.unique(y, return_inverse=True)
    kept = []
    for c in range(int(codes.max()) + 1):
        mine = np.flatnonzero(codes == c)
        take = min(len(mine), max(CALIBRATION_FOLDS, int(round(len(mine) * rows / len(y)))))
        kept.append(rng.choice(mine, take, replace=False))
    return np.sort(np.concatenate(kept))


def pair_list(k: int) -> list[tuple[int, int]]:
    """The pairs of class indices in the order of scikit-learn's one-against-one decision values."""
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


class SVMModel(FittedModel):
    """``estimator``: (the scaler, the ``SVC`` or ``SVR``, the calibrating logistic regression or None)."""

    _row: Callable[[np.ndarray], np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_row"}  # a closure: rebuilt on first use

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        if len(X) <= 8:  # scikit-learn's checks cost more than the kernel for a few rows: numpy, one at a time
            if self._row is None:
                self._row = self.row_function()
            out = [self._row(X[i : i + 1]) for i in range(len(X))]
            if out:
                return np.concatenate(out)
        prep, est, _ = self.estimator
        Z = prep.transform(X).astype(np.float64)
        if not self.task.is_classification:
            return self._values(est.predict(Z))
        return self._probabilities(est.decision_function(Z))

    def _values(self, d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, dtype=np.float64).reshape(-1)
        return d * self.params["_y_scale"] + self.params["_y_mean"]

    def _probabilities(self, d: np.ndarray) -> np.ndarray:
        """Class probabilities (n, k) from the SVC's one-against-one decision values (n, pairs)."""
        from scipy.special import expit, softmax

        _, est, cal = self.estimator
        d = np.asarray(d, dtype=np.float64).reshape(len(d), -1)
        z = d @ cal.coef_.T + cal.intercept_
        p = softmax(z, axis=1) if z.shape[1] > 1 else expit(z[:, 0])
        return self._proba(p, est.classes_)

    def row_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """``predict_raw`` for one encoded row (1, f) without scikit-learn's per-call checks: the one-hot row
        written in place, the kernel against every support vector by one matrix-vector product
        (``exp(-gamma (|s|^2 - 2 s.z + |z|^2))``), then the pairs' decision values as libsvm sums them and
        the calibration's logistic regression (classes) or the target's scale (values)."""
        prep, est, _ = self.estimator
        write = prep.row_writer()
        sv = np.asarray(est.support_vectors_, dtype=np.float64)
        norms = np.einsum("ij,ij->i", sv, sv)
        gamma = float(est.gamma)  # a number: the family passes its own, never "scale"
        weights, bias = decision_weights(est, self.task.is_classification)

        def row(X: np.ndarray) -> np.ndarray:
            z = write(X)[0].astype(np.float64)
            d2 = np.maximum(norms - 2.0 * np.einsum("ij,j->i", sv, z) + float(np.dot(z, z)), 0.0)
            d = np.einsum("i,ij->j", np.exp(-gamma * d2), weights) + bias  # not BLAS: its threads cost 10x here
            if not self.task.is_classification:
                return self._values(d)
            return self._probabilities(d[None, :])

        return row


def decision_weights(est: Any, classification: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each support vector's weight in each decision value (n_support, outputs) and the values' offsets:
    libsvm's one-against-one sums for the pair of classes (i, j) take the vectors of class i with their
    coefficients against j (``dual_coef_[j - 1]``) and those of class j against i (``dual_coef_[i]``)."""
    coef, intercept = np.asarray(est.dual_coef_, dtype=np.float64), np.asarray(est.intercept_, dtype=np.float64)
    if not classification or len(est.classes_) == 2:
        return coef[0][:, None], intercept[:1]
    k = len(est.classes_)
    start = np.concatenate([[0], np.cumsum(est.n_support_)])
    pairs = pair_list(k)
    weights = np.zeros((coef.shape[1], len(pairs)))
    for p, (i, j) in enumerate(pairs):
        si, sj = slice(start[i], start[i + 1]), slice(start[j], start[j + 1])
        weights[si, p] = coef[j - 1, si]
        weights[sj, p] = coef[i, sj]
    return weights, intercept


def out_of_fold(Z: np.ndarray, y: np.ndarray, weight: np.ndarray | None, classes: np.ndarray,
                params: dict[str, Any], seed: int) -> np.ndarray:
    """The SVC's one-against-one decision values (n, pairs of ``classes``) for each row from a model fitted
    without its fold: a pair whose classes a fold's model did not both see is left at 0 (undecided)."""
    from sklearn.model_selection import StratifiedKFold

    pairs = {pair: p for p, pair in enumerate(pair_list(len(classes)))}
    out = np.zeros((len(Z), max(len(pairs), 1)))
    splits = StratifiedKFold(CALIBRATION_FOLDS, shuffle=True, random_state=seed % (2**32))
    with warnings.catch_warnings():  # a class with fewer rows than folds: those folds go without it
        warnings.simplefilter("ignore")
        folds = list(splits.split(Z, y))
    for tr, va in folds:
        seen = np.unique(y[tr])
        if len(seen) < 2:
            continue
        est = svc(params).fit(Z[tr], y[tr], sample_weight=None if weight is None else weight[tr])
        d = np.asarray(est.decision_function(Z[va]), dtype=np.float64).reshape(len(va), -1)
        if len(classes) == 2:
            where = [0]
        else:  # the fold's pairs among all the pairs; two classes alone answer as a two-class SVC, the other way round
            at = np.searchsorted(classes, seen)
            where = [pairs[(int(at[a]), int(at[b]))] for a, b in pair_list(len(seen))]
            d = -d if len(seen) == 2 else d
        out[np.ix_(va, where)] = d
    return out


def calibrator(D: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> Any:
    """A multinomial logistic regression from decision values ``D`` to the classes, its strength chosen
    among ``CALIBRATION_CS`` by cross-validated log loss where every class has a row in each fold."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    counts = np.bincount(np.unique(y, return_inverse=True)[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if counts.min() >= CALIBRATION_FOLDS:
            cal = LogisticRegressionCV(Cs=list(CALIBRATION_CS), cv=CALIBRATION_FOLDS, scoring="neg_log_loss",
                                       max_iter=1000)
        else:
            cal = LogisticRegression(C=10.0, max_iter=1000)
        return cal.fit(D, y, sample_weight=weight)


def svc(params: dict[str, Any]) -> Any:
    from sklearn.svm import SVC

    return SVC(C=float(params["C"]), gamma=float(params["_gamma"]), decision_function_shape="ovo",
               cache_size=CACHE_MB)


@register
class SVMFamily(ModelFamily):
    name = "svm"
    target_range = "within"
    place = 2.7  # type: ignore[assignment]  # after k-NN, before CatBoost: cheap on the small tables it is offered on
    packages = ("scikit-learn",)
    # its first turn against LightGBM's first candidate at its limits (5,000 rows of 30 columns, 10 classes, two
    # busy cores): a candidate 2.0 planned s against 3.0-3.1, and its probe fits whole folds, about as much again;
    # far less on small tables, where the seconds left rarely decide
    relative_cost = 1.4
    # libsvm's fits grow with the rows' square or faster (1.9 measured from 2,000 to 5,000 rows)
    max_row_exponent = 2.0

    def supports(self, task: Any, n_rows: int, n_features: int) -> bool:
        """Tables of several classes or of values, up to ``MAX_ROWS`` rows and ``MAX_CLASSES`` classes. Not two
        classes: on seven two-class bench tables (credit_g, blood_transfusion, phoneme, kr_vs_kp, spambase, ...)
        it never joined the ensemble, on any seed, where it did on every multiclass one and on parkinsons."""
        if task.is_classification:
            return task.kind == "multiclass" and len(task.classes) <= MAX_CLASSES and n_rows <= MAX_ROWS
        return n_rows <= MAX_ROWS

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        """``gamma`` is a multiple of scikit-learn's ``"scale"`` (1 / (features x the inputs' variance)). Tables
        of several classes did best with the larger ``C`` (vehicle, car), two-class ones with the smaller
        and a smoother kernel (credit_g, blood_transfusion), so each goes first where it did best."""
        if not task.is_classification:
            return [{"C": 10.0, "gamma": 1.0, "epsilon": 0.1}, {"C": 1.0, "gamma": 0.3, "epsilon": 0.1}]
        sharp, smooth = {"C": 30.0, "gamma": 1.0}, {"C": 3.0, "gamma": 0.3}
        return [sharp, smooth] if task.kind == "multiclass" else [smooth, sharp]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        space = {"C": trial.suggest_float("C", 0.1, 1000.0, log=True),
                 "gamma": trial.suggest_float("gamma", 0.1, 10.0, log=True)}
        if not task.is_classification:
            space["epsilon"] = trial.suggest_float("epsilon", 0.01, 0.5, log=True)
        return space

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        with one_thread():
            return self._fitted(X, y, ctx, params)

    def _fitted(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any]) -> FittedModel:
        prep = OneHotScaler(ctx.categorical, ctx.cardinalities, max_onehot=50).fit(X)
        Z = prep.transform(X).astype(np.float64)
        weight = ctx.sample_weight
        kept = row_sample(y, fit_rows(Z.shape[1], ctx.task.is_classification), ctx.seed, ctx.task.is_classification)
        if kept is not None:  # past the cost bound: a sample of the rows
            Z, y, weight = Z[kept], np.asarray(y)[kept], None if weight is None else weight[kept]
        spread = float(Z.var()) if Z.size else 0.0
        gamma = float(params.get("gamma", 1.0)) / (max(Z.shape[1], 1) * (spread if spread > 0 else 1.0))
        full = {"C": 1.0, **params, "_gamma": gamma, "_rows": len(Z)}
        if not ctx.task.is_classification:
            from sklearn.svm import SVR

            y_mean, y_scale = float(np.mean(y)), float(np.std(y) or 1.0)
            est = SVR(C=float(full["C"]), gamma=gamma, epsilon=float(full.get("epsilon", 0.1)), cache_size=CACHE_MB)
            est.fit(Z, (np.asarray(y, dtype=np.float64) - y_mean) / y_scale, sample_weight=weight)
            return SVMModel((prep, est, None), {**full, "_y_mean": y_mean, "_y_scale": y_scale}, ctx.task)
        y = np.asarray(y)
        est = svc(full).fit(Z, y, sample_weight=weight)
        D = out_of_fold(Z, y, weight, est.classes_, full, ctx.seed)
        return SVMModel((prep, est, calibrator(D, y, weight)), full, ctx.task)
