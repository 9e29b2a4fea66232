"""How good is the model on live rows whose outcomes are not known yet? And, once they are, how good was it?

Classifiers (CBPE, confidence-based performance estimation): a calibrated probability says how often the
model is right, so the expected metric follows from the probabilities alone. Accuracy is the mean probability
of the decided label; ROC AUC comes from expected true and false positives at every threshold; log loss is
the expected surprise; F1 and balanced accuracy from the expected confusion matrix. The interval: outcomes
drawn from those probabilities, again and again (what the realised metric would spread over if the
probabilities are right). Honest only while the calibration holds, which covariate shift keeps and a changed
relation between inputs and outcome (concept drift) does not: that shows only in realised metrics. Multiclass
probabilities first go through the estimator's own calibration of the answer's confidence
(``ConfidenceCalibrator``) and, with a few hundred scored reference rows, a small model of whether each answer
is right from the inputs as well (``CorrectnessModel``): a calibration right on average over the training rows
can be wrong in the region a shift moves rows into. The interval does not count that model's own
uncertainty (left as it was: much of it is shared with the same estimator on the reference rows, which the
performance alarm compares with).

Regressors (DLE, direct loss estimation): a gradient-boosted model of the absolute error, learnt from the
reference rows' out-of-sample errors from the inputs and the prediction, predicts each live row's expected
error size ``m``. MAE is ``k1 * mean(m)`` and MSE ``k2 * mean(m^2)``, the ``k`` scaling the cross-fitted
sizes to the reference's actual errors (ratios of sums); the interval is the spread of a mean of rows whose
errors are that size (from the fourth moment likewise; normal on the log scale, so above 0 and leaning right, as
heavy-tailed errors make it), and R² follows from MSE and the predictions' spread.
Like the model it watches, the loss model cannot extrapolate: on rows beyond the training range (the quality
checks report them) it expects the errors of the range's edge, usually too small.

Realised metrics (with labels) get bootstrap intervals. Above ``MAX_ROWS`` rows, the draws run on a random
sample and their spread is scaled to the full count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..evaluation.calibration import PlattCalibrator, logit
from ..metrics import weighted_binary_auc

__all__ = ["ConfidenceCalibrator", "CorrectnessModel", "Estimate", "LossModel", "decisions", "estimate_classifier",
           "estimable", "realised", "scorer"]

DRAWS = 200
MAX_ROWS = 20_000
LEVEL = 0.95
_CLS = ("accuracy", "roc_auc", "log_loss", "brier", "f1", "balanced_accuracy", "f1_macro")
_REG = ("rmse", "mae", "r2")


@dataclass
class Estimate:
    """A metric's value over some rows, with its interval and how it was obtained."""

    metric: str
    value: float
    low: float
    high: float
    rows: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimable(task: str, metric: str | None) -> list[str]:
    """The metrics reported for a ``task`` model trained on ``metric``: that metric when it can be
    estimated without labels, then the plain ones (accuracy and ROC AUC, or RMSE and MAE)."""
    names = _REG if task == "regression" else tuple(m for m in _CLS if task == "binary" or m not in ("f1", "brier"))
    plain = ["rmse", "mae"] if task == "regression" else ["accuracy", "roc_auc"]
    first = [metric] if metric in names else []
    return list(dict.fromkeys(first + plain))


def decisions(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """The class index each row is answered with: the most probable one, or for a binary model with a chosen
    threshold, the positive class from that probability on."""
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return proba.argmax(axis=1)


# -- classifiers -------------------------------------------------------------------------------------------
def _expected_auc(score: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC expected when each row is positive with probability ``p``, ranked by ``score``."""
    order = np.argsort(-score, kind="stable")
    s, pp = score[order], p[order]
    last = np.r_[s[1:] != s[:-1], True]  # tied scores form one step (half credit, as Mann-Whitney counts ties)
    tp, fp = np.cumsum(pp)[last], np.cumsum(1 - pp)[last]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return float("nan")
    return float(np.trapezoid(np.r_[0, tp / tp[-1]], np.r_[0, fp / fp[-1]]))


def _auc(y: np.ndarray, score: np.ndarray, ranks: np.ndarray | None = None, w: np.ndarray | None = None) -> float:
    """ROC AUC as the Mann-Whitney statistic (``ranks`` of ``score`` when already known); with row weights
    ``w``, scikit-learn's weighted ROC AUC (each row counted for its weight, as ``evaluate`` does)."""
    from scipy.stats import rankdata

    if w is not None:
        try:
            return weighted_binary_auc(y, score, w)
        except ValueError:  # one side weighs nothing
            return float("nan")

    pos = y == 1
    n1 = int(pos.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(score) if ranks is None else ranks
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _confusion_scores(name: str, truth: np.ndarray, d: np.ndarray, w: np.ndarray | None = None) -> float:
    """F1 / balanced accuracy / macro F1 from per-row class weights ``truth`` (n, k): one-hot outcomes for
    realised metrics, probabilities for expected ones. ``w``: each row counted for its weight."""
    k = truth.shape[1]
    chosen = np.zeros_like(truth)
    chosen[np.arange(len(d)), d] = 1.0
    rw = np.ones((len(d), 1)) if w is None else np.asarray(w, float)[:, None]
    tp = (rw * truth * chosen).sum(axis=0)
    fp = (rw * (1 - truth) * chosen).sum(axis=0)
    fn = (rw * truth * (1 - chosen)).sum(axis=0)
    if name == "balanced_accuracy":
        held = (rw * truth).sum(axis=0)
        has = held > 0
        return float(np.mean(tp[has] / held[has]))
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(k), where=(2 * tp + fp + fn) > 0)
    return float(f1[1]) if name == "f1" else float(np.mean(f1))


def _class_score(name: str, y: np.ndarray | None, p: np.ndarray, d: np.ndarray,
                 ranks: dict[int, np.ndarray] | None = None, w: np.ndarray | None = None) -> float:
    """The metric ``name`` of probabilities ``p`` (n, k) answered as ``d``: realised against outcomes ``y``,
    or expected (``y`` None) from the probabilities themselves. ``ranks``: each class column's ranks, when
    the same rows are scored many times. ``w``: realised only, each row counted for its weight."""
    k = p.shape[1]
    if name == "accuracy":
        return float(np.average(p[np.arange(len(d)), d] if y is None else y == d, weights=w))
    if name == "roc_auc":
        cols = [1] if k == 2 else range(k)
        if y is None:
            vals = [_expected_auc(p[:, c], p[:, c]) for c in cols]
        else:
            vals = [_auc((y == c).astype(int), p[:, c], None if ranks is None else ranks[c], w) for c in cols
                    if 0 < np.sum(y == c) < len(y)]
        return float(np.nanmean(vals)) if vals else float("nan")
    truth = p if y is None else np.eye(k)[y]
    if name == "log_loss":
        logp = np.log(np.clip(p, 1e-15, 1.0))
        return float(-np.average((truth * logp).sum(axis=1), weights=w))
    if name == "brier":
        return float(np.average((p[:, 1] - truth[:, 1]) ** 2 + (truth[:, 1] * (1 - truth[:, 1]) if y is None else 0),
                                weights=w))
    return _confusion_scores(name, truth, d, w)


def _sample(n: int, seed: int) -> tuple[np.ndarray, float]:
    """Rows to draw on (all, or a random ``MAX_ROWS``), and the factor that scales their spread to ``n``."""
    if n <= MAX_ROWS:
        return np.arange(n), 1.0
    rows = np.random.default_rng(seed).choice(n, size=MAX_ROWS, replace=False)
    return np.sort(rows), float(np.sqrt(MAX_ROWS / n))


def _interval(center: float, draws: list[float], scale: float) -> tuple[float, float]:
    d = np.asarray([v for v in draws if v == v])
    if not len(d):
        return float("nan"), float("nan")
    lo, hi = np.quantile(d, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    mid = float(np.median(d))
    return center + (lo - mid) * scale, center + (hi - mid) * scale


def estimate_classifier(name: str, proba: np.ndarray, d: np.ndarray, *, seed: int = 0, draws: int = DRAWS) -> Estimate:
    """The expected ``name`` of a classifier whose calibrated probabilities of live rows are ``proba``."""
    value = _class_score(name, None, proba, d)
    rows, scale = _sample(len(proba), seed)
    p, dd = proba[rows], d[rows]
    rng = np.random.default_rng(seed)
    cum = np.cumsum(p, axis=1)
    ranks = None
    if name == "roc_auc":
        from scipy.stats import rankdata

        ranks = {c: rankdata(p[:, c]) for c in range(p.shape[1])}
    values = []
    for _ in range(draws):
        y = np.minimum((rng.random(len(p))[:, None] > cum).sum(axis=1), p.shape[1] - 1)
        values.append(_class_score(name, y, p, dd, ranks))
    low, high = _interval(value, values, scale)
    return Estimate(name, value, low, high, len(proba), "CBPE: expected from the calibrated probabilities")


class ConfidenceCalibrator:
    """Multiclass CBPE's own calibration: the probability of the answered class, mapped (a logistic curve on
    its log-odds) to how often the reference rows' answers were right, the other classes rescaled to fill the
    rest. Fitted on the reference's out-of-sample predictions, after the bundle's calibrator: that one is
    chosen for the Brier score of every class (or left out when it gains too little), and the estimate
    needs the answered class's probability right above all (measured: out-of-fold probabilities of 0.906
    on average for answers right 93.2% of the time, car; 0.535 for 57.8%, poker hand)."""

    def __init__(self) -> None:
        self.slope, self.intercept = 1.0, 0.0

    def fit(self, proba: np.ndarray, d: np.ndarray, y: np.ndarray) -> ConfidenceCalibrator:
        conf = proba[np.arange(len(d)), d]
        platt = PlattCalibrator().fit((d == y).astype(np.int64), np.column_stack([1 - conf, conf]))
        self.slope, self.intercept = platt.curve()
        return self

    def log_odds(self, conf: np.ndarray) -> np.ndarray:
        """The calibrated log-odds that answers of confidence ``conf`` are right."""
        return self.slope * logit(conf) + self.intercept

    def transform(self, proba: np.ndarray, d: np.ndarray) -> np.ndarray:
        conf = _answered(proba, d)
        return _with_answer(proba, d, conf, 1.0 / (1.0 + np.exp(-self.log_odds(conf))))


def _answered(proba: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The answered classes' probabilities, clipped away from 0 and 1."""
    return np.clip(proba[np.arange(len(d)), d], 1e-6, 1 - 1e-6)


def _with_answer(proba: np.ndarray, d: np.ndarray, conf: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``proba`` with the answered class's probability (``conf``) set to ``new``; the other classes keep
    their proportions and fill the rest."""
    out = proba * ((1 - new) / (1 - conf))[:, None]
    out[np.arange(len(d)), d] = new
    return out


class CorrectnessModel:
    """Multiclass CBPE under covariate shift: the chance that the answer is right, learnt from the encoded
    inputs and the answer's confidence. ``ConfidenceCalibrator`` maps confidence alone, so where the shift
    moves rows into a region the model handles worse at the same confidence it over-estimates; this small
    boosted classifier starts from that calibration (its log-odds are the init score) and corrects it only
    where the reference rows show it wrong, so with little evidence it stays near it. Measured on shifted
    splits of 7 multiclass tasks x 3 seeds (bench/RESULTS.md, Monitoring, third pass): accuracy estimate MAE
    0.013 against 0.017 for the calibration alone; 0.009 against 0.008 on random splits. Weighting the
    reference rows by a domain classifier's odds did not help."""

    MIN_ROWS = 200  # fewer scored reference rows: the calibration alone (the trees would fit noise)

    def __init__(self, base: ConfidenceCalibrator, *, seed: int = 0) -> None:
        self.base, self.seed = base, seed
        self.model: Any = None

    def fit(self, X: np.ndarray, proba: np.ndarray, d: np.ndarray, y: np.ndarray) -> CorrectnessModel:
        """Fit on the reference's encoded inputs ``X``, out-of-sample probabilities ``proba`` answered ``d``
        and outcomes ``y``."""
        import lightgbm as lgb

        conf = proba[np.arange(len(d)), d]  # unclipped, as fitted since the third pass (logit clips)
        # few shallow, strongly regularised trees: a nudge to the calibration, not a second model
        self.model = lgb.LGBMClassifier(n_estimators=100, learning_rate=0.05, num_leaves=4, min_child_samples=40,
                                        reg_lambda=5.0, n_jobs=1, random_state=self.seed, verbose=-1)
        self.model.fit(np.column_stack([X, logit(conf)]).astype(np.float32), (d == y).astype(np.int64),
                       init_score=self.base.log_odds(conf))
        return self

    def transform(self, X: np.ndarray, proba: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Probabilities with the answered class's set to its predicted chance of being right, the others
        rescaled to fill the rest (as ``ConfidenceCalibrator.transform``)."""
        conf = _answered(proba, d)
        F = np.column_stack([X, logit(conf)]).astype(np.float32)
        return _with_answer(proba, d, conf, 1.0 / (1.0 + np.exp(-(self.model.predict(F, raw_score=True)
                                                                  + self.base.log_odds(conf)))))


# -- regressors --------------------------------------------------------------------------------------------
class LossModel:
    """DLE: a model of each row's expected absolute error, from the reference's out-of-sample errors."""

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self.model: Any = None
        self.floor = 1e-12
        #: sums of the reference's |error|^p over those of the cross-fitted expected sizes, p = 1, 2, 4: what
        #: turns expected sizes into MAE, MSE and the spread of both (ratios of sums, not sums of ratios, so
        #: a row whose error was predicted near zero cannot blow them up)
        self.moments = (1.0, 1.0, 1.0)
        #: the relative standard errors of the first two moments: a reference of a few hundred rows fixes
        #: them only so well, and an estimate's interval must say so (abalone, 1,670 rows: about 3% on MSE)
        self.moment_se = (0.0, 0.0)
        self.cross_fitted = np.empty(0)  #: the fit rows' expected sizes, each from a model that did not see it

    def _regressor(self) -> Any:
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.08, max_leaf_nodes=15,
                                             min_samples_leaf=20, l2_regularization=1.0, random_state=self.seed)

    def fit(self, X: np.ndarray, pred: np.ndarray, y: np.ndarray) -> LossModel:
        """Learn ``|y - pred|`` from the encoded inputs ``X`` and the prediction; the moments that scale it
        come from cross-fitted predictions, so they are out of sample too."""
        from sklearn.model_selection import KFold
        from threadpoolctl import threadpool_limits

        F = np.column_stack([X, pred]).astype(np.float32)
        err = np.abs(np.asarray(y, float) - np.asarray(pred, float))
        self.floor = max(0.05 * float(np.mean(err)), 1e-12)  # no row is expected to be exactly right
        oof = np.empty(len(err))
        # one thread: a few thousand rows fit in a second that way, and OpenMP threads fighting other work on a
        # busy machine made the same fit 15 times slower (measured)
        with threadpool_limits(1):
            for fit_rows, test_rows in KFold(3, shuffle=True, random_state=self.seed).split(F):
                oof[test_rows] = self._regressor().fit(F[fit_rows], err[fit_rows]).predict(F[test_rows])
            self.model = self._regressor().fit(F, err)
        self.cross_fitted = oof = np.maximum(oof, self.floor)
        self.moments = tuple(float(np.sum(err**p) / np.sum(oof**p)) for p in (1, 2, 4))  # type: ignore[assignment]
        # a ratio of sums: its relative variance is that of a/mean(a) - b/mean(b) over the rows (delta method)
        self.moment_se = tuple(float(np.std(err**p / np.mean(err**p) - oof**p / np.mean(oof**p)) / np.sqrt(len(err)))
                               for p in (1, 2))  # type: ignore[assignment]
        return self

    def expected_error(self, X: np.ndarray, pred: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return np.maximum(self.model.predict(np.column_stack([X, pred]).astype(np.float32)), self.floor)

    def estimate(self, name: str, m: np.ndarray, pred: np.ndarray, *, rows: int | None = None,
                 seed: int = 0) -> Estimate:
        """The expected ``name`` (rmse, mae or r2) of live rows with expected error sizes ``m``
        (``expected_error``) and predictions ``pred``; ``rows``: how many rows they stand for, when they
        are a random sample of more. The interval is the realised metric's spread over ``rows`` rows whose
        errors are as expected (a mean's normal approximation on the log scale, ``_positive``)."""
        k1, k2, k4 = self.moments
        n = max(rows or len(m), len(m))
        m1, m2, m4 = float(np.mean(m)), float(np.mean(m**2)), float(np.mean(m**4))
        mae, mse = k1 * m1, k2 * m2
        # a row's |error| has variance (k2 - k1^2) m^2, its squared error (k4 - k2^2) m^4; the moments' own
        # uncertainty (the reference's size) adds to the live rows' sampling
        se_mae = float(np.hypot(np.sqrt(max((k2 - k1**2) * m2, 0.0) / n), mae * self.moment_se[0]))
        se_mse = float(np.hypot(np.sqrt(max((k4 - k2**2) * m4, 0.0) / n), mse * self.moment_se[1]))
        spread = float(np.var(pred))
        if name == "mae":
            value, (low, high) = mae, _positive(mae, se_mae)
        else:
            lo_mse, hi_mse = _positive(mse, se_mse)
            if name == "rmse":
                value, low, high = float(np.sqrt(mse)), float(np.sqrt(lo_mse)), float(np.sqrt(hi_mse))
            else:
                def r2(v: float) -> float:
                    return 1 - v / (spread + v)

                value, low, high = r2(mse), r2(hi_mse), r2(lo_mse)
        del seed  # the interval is analytic: nothing is drawn
        return Estimate(name, float(value), float(low), float(high), n,
                        "DLE: a model of the error size, from the reference rows")


def _positive(value: float, se: float) -> tuple[float, float]:
    """A 95% interval for a mean of positive errors (absolute or squared): normal on the log scale (delta
    method), so it stays above 0 and leans right, as such a mean's spread does when errors are heavy-tailed;
    a normal interval clipped at 0 said a model with errors this size might have none."""
    if not value > 0:
        return value, value
    step = np.exp(1.959964 * se / value)
    return float(value / step), float(value * step)


def _reg_score(name: str, err: np.ndarray, spread: float, w: np.ndarray | None = None) -> float:
    if name == "mae":
        return float(np.average(np.abs(err), weights=w))
    mse = float(np.average(err**2, weights=w))
    return float(np.sqrt(mse)) if name == "rmse" else 1 - mse / (spread + mse)


def _regression_score(name: str, y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None) -> float:
    err = y - pred
    if name == "r2":
        total = float(np.average((y - np.average(y, weights=w)) ** 2, weights=w))
        return 1 - float(np.average(err**2, weights=w)) / total if total > 0 else float("nan")
    return _reg_score(name, err, 0.0, w)


# -- with labels -------------------------------------------------------------------------------------------
def realised(name: str, y: np.ndarray, raw: np.ndarray, *, d: np.ndarray | None = None, seed: int = 0,
             weights: np.ndarray | None = None) -> Estimate:
    """The metric ``name`` measured against the outcomes ``y`` (class indices or values), with a bootstrap
    interval. ``raw``: probabilities (n, k) answered as ``d``, or predicted values. ``weights``: each row
    counted for its weight (the model's weight column, as ``evaluate`` counts them; resampled with its row)."""
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    score = scorer(name, y, raw, d=d, weights=w)
    value = _safe(score, np.arange(len(y)))
    rows, scale = _sample(len(y), seed)
    rng = np.random.default_rng(seed)
    draws = [_safe(score, rows[rng.integers(0, len(rows), len(rows))]) for _ in range(DRAWS)]
    low, high = _interval(value, draws, scale)
    how = "measured against the outcomes (bootstrap interval)"
    return Estimate(name, value, low, high, len(y), how + (", rows counted by their weights" if w is not None else ""))


def scorer(name: str, y: np.ndarray, raw: np.ndarray, *, d: np.ndarray | None = None,
           weights: np.ndarray | None = None) -> Any:
    """The metric ``name`` of the rows at given positions, as a function of those positions: ``raw`` holds
    probabilities (n, k) answered as ``d``, or predicted values; ``weights``: each row counted for its weight."""
    w = weights
    if raw.ndim == 2:
        dd = decisions(raw) if d is None else d

        def score(idx: np.ndarray) -> float:
            return _class_score(name, y[idx], raw[idx], dd[idx], w=None if w is None else w[idx])
        return score
    yf, pf = np.asarray(y, float), np.asarray(raw, float)

    def regression(idx: np.ndarray) -> float:
        return _regression_score(name, yf[idx], pf[idx], None if w is None else w[idx])
    return regression


def _safe(score: Any, idx: np.ndarray) -> float:
    """A bootstrap draw's score; NaN for a draw whose rows all weigh 0 (no average to take)."""
    try:
        return float(score(idx))
    except ZeroDivisionError:
        return float("nan")
