"""Has a column changed since training? One test per column, chosen by its kind and the sample sizes.

The choice follows Evidently's defaults, so verdicts can be compared with it side by side (bench/monitoring.py),
except that the size deciding it is the smaller of the two samples (filled values), not the reference's alone:

| smaller side (filled) | numbers, more than 5 distinct values | categories, or numbers with at most 5 values |
|---|---|---|
| at most 1,000 | Kolmogorov-Smirnov, drift when p < 0.05 | chi-square of the 2 x k table (z-test for 2 values), p < 0.05 |
| more than 1,000 | Wasserstein distance / reference SD, drift from 0.1 | Jensen-Shannon distance, drift from 0.1 |

Small samples need a test (is the gap more than chance?); on large samples every test finds some gap, so a
distance with a fixed size says whether it matters. Evidently looks at the reference's size only, so a large
reference against a small live batch gets the distance, whose sampling noise alone passes 0.1 there: batches
of 50 rows drawn from the training distribution itself (3,000 training rows, 3 numbers and a category) gave
normed Wasserstein distances of 0.10 to 0.48 and raised the dataset alarm 39 times in 40, batches of 120 rows
25 times in 40. A distance measures the gap only once both samples are large, so the smaller one decides:
then 0 in 40 at both sizes, while a shift of 1 SD in the input the model leans on most still raised the alarm
in 39 of 40 batches of 50 rows. Even with both sides large, a distance must also be more than chance (the same
test's p < 0.05, kept as ``p_value``): the noise of a Jensen-Shannon distance grows with the number of
categories, and 100 equally likely ones passed 0.1 in 6 of 10 samples of 2,000 live rows against 3,000.

Text columns are compared by a domain classifier: TF-IDF words and a logistic regression try to tell
reference rows from live ones, scored by ROC AUC on held-out rows (drift above 0.55 when both sides are
large, above the 95th percentile of chance when either is small).

Beside the test: PSI on the reference's deciles (reported, not judged), and the missing share; a column
whose missing share moves by at least 5 points with p < 0.05 (two-proportion z-test) is drifted too, since
Evidently's tests only look at filled values and would miss it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .columns import Prepared

__all__ = ["ALPHA", "DISTANCE_THRESHOLD", "ColumnDrift", "compare_column", "compare_values", "dataset_verdict",
           "measure_of"]

ALPHA = 0.05
STRICT_ALPHA = 0.01  # one column (or the predictions) alone raising the dataset's alarm
DISTANCE_THRESHOLD = 0.1
SMALL_SAMPLE = 1_000  # the smaller side at most this many filled values: a p-value test decides
FEW_VALUES = 5
MIN_ROWS = 10  # fewer filled live values than this: no test
MISSING_SHIFT = 0.05
TEXT_AUC = 0.55
TEXT_ROWS = 2_000  # rows per side the domain classifier sees


@dataclass
class ColumnDrift:
    """One column's comparison: the test, its statistic and threshold, the verdict, and what changed."""

    column: str
    kind: str
    test: str
    statistic: float | None
    threshold: float | None
    drifted: bool
    p_value: float | None = None
    psi: float | None = None
    n_reference: int = 0
    n_current: int = 0
    missing_reference: float = 0.0
    missing_current: float = 0.0
    missing_drifted: bool = False
    value_drifted: bool = False
    #: numbers: the Wasserstein distance over the reference's SD, whichever test decides (a size beside a p-value)
    distance: float | None = None
    #: numeric: median, mean, sd, min, max per side; categorical: the categories whose share moved most
    summary: dict[str, Any] = field(default_factory=dict)
    #: what a plot needs: histogram counts on shared bins, or category shares
    plot: dict[str, Any] = field(default_factory=dict)
    #: the column's role (a date compares as a number of days since 1970, and is said as a date)
    role: str = ""
    #: what ``statistic`` is (``measure_of``): "p-value" (drift below the threshold), "distance" or "ROC AUC"
    measure: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_column(ref: Prepared, cur: Prepared, *, seed: int = 0) -> ColumnDrift:
    """Compare the live values ``cur`` of a column with its reference values ``ref`` (same kind)."""
    n_ref, n_cur = len(ref), len(cur)
    ref_missing, cur_missing = int(ref.missing.sum()), int(cur.missing.sum())
    out = ColumnDrift(cur.name, cur.kind, "", None, None, False, n_reference=n_ref - ref_missing,
                      n_current=n_cur - cur_missing, missing_reference=ref_missing / max(n_ref, 1),
                      missing_current=cur_missing / max(n_cur, 1), role=cur.role)
    out.missing_drifted = _missing_shift(ref_missing, n_ref, cur_missing, n_cur)
    if out.n_current < MIN_ROWS or out.n_reference < MIN_ROWS:
        out.test = f"none (fewer than {MIN_ROWS} filled values)"
    elif cur.kind == "text":
        _text(out, ref.present(), cur.present(), seed)
    elif cur.kind == "categorical":
        _counts(out, ref.counts(), np.bincount(cur.values[cur.values >= 0], minlength=len(cur.categories)),
                cur.categories)
    else:
        compare_values(out, ref.sorted_present(), np.sort(cur.present()), presorted=True)
    out.drifted = out.value_drifted or out.missing_drifted
    out.measure = measure_of(out.test) if out.statistic is not None else ""
    return out


def measure_of(test: str) -> str:
    """What a test's statistic is: small samples get a p-value (smaller is worse), large ones a distance
    (larger is worse), texts a domain classifier's ROC AUC (larger is worse)."""
    return "distance" if "distance" in test else "ROC AUC" if "ROC AUC" in test else "p-value"


def compare_values(out: ColumnDrift, a: np.ndarray, b: np.ndarray, *, presorted: bool = False) -> None:
    """Fill ``out`` with the test of numbers ``a`` (reference) against ``b`` (live), missing values removed
    (``presorted``: both already in ascending order)."""
    if not presorted:
        a, b = np.sort(a), np.sort(b)
    distinct_a, distinct_b = a[np.r_[True, np.diff(a) != 0]], b[np.r_[True, np.diff(b) != 0]]
    values = np.union1d(distinct_a, distinct_b) if max(len(distinct_a), len(distinct_b)) <= FEW_VALUES else a[:0]
    if 0 < len(values) <= FEW_VALUES:  # a few distinct numbers (codes, flags) are compared as categories
        ra = np.diff(np.searchsorted(a, values, "left").tolist() + [len(a)])
        rb = np.diff(np.searchsorted(b, values, "left").tolist() + [len(b)])
        _counts(out, ra, rb, [f"{v:g}" for v in values])
        return
    w1, gap = _cdf_gap(a, b)
    out.distance = w1 / max(float(np.std(a)), 0.001)
    out.summary = {side: _describe(v) for side, v in (("reference", a), ("current", b))}
    edges = _edges(a)
    out.psi = _psi(np.diff(np.r_[0, np.searchsorted(a, edges, "right"), len(a)]),
                   np.diff(np.r_[0, np.searchsorted(b, edges, "right"), len(b)]))
    out.plot = _histogram(a, b)
    from scipy import stats

    if min(len(a), len(b)) <= SMALL_SAMPLE:
        p = float(stats.ks_2samp(a, b).pvalue)
        out.test, out.statistic, out.threshold, out.p_value = "Kolmogorov-Smirnov", p, ALPHA, p
        out.value_drifted = p < ALPHA
    else:  # the asymptotic Kolmogorov-Smirnov p-value of the largest CDF gap: is the distance more than chance?
        out.p_value = float(stats.kstwo.sf(gap, round(len(a) * len(b) / (len(a) + len(b)))))
        d = out.distance
        out.test, out.statistic, out.threshold = "Wasserstein distance (normed)", d, DISTANCE_THRESHOLD
        out.value_drifted = d >= DISTANCE_THRESHOLD and out.p_value < ALPHA


def _counts(out: ColumnDrift, ref: np.ndarray, cur: np.ndarray, labels: list[str]) -> None:
    """Fill ``out`` with the test of category counts ``cur`` against ``ref`` (same order as ``labels``)."""
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(np.r_[cur, np.zeros(max(len(ref) - len(cur), 0))], dtype=np.float64)
    ref = np.r_[ref, np.zeros(len(cur) - len(ref))]
    seen = (ref + cur) > 0
    ref, cur, labels = ref[seen], cur[seen], [lab for lab, s in zip(labels, seen, strict=False) if s]
    p_ref, p_cur = ref / ref.sum(), cur / cur.sum()
    out.psi = _psi(ref, cur)
    order = np.argsort(-np.abs(p_cur - p_ref))[:12]
    out.summary = {"categories": [{"value": labels[i], "reference": float(p_ref[i]), "current": float(p_cur[i])}
                                  for i in order]}
    top = np.argsort(-(p_ref + p_cur))[:12]
    out.plot = {"kind": "bars", "labels": [labels[i] for i in top], "reference": p_ref[top].tolist(),
                "current": p_cur[top].tolist()}
    p = _two_proportions(ref[0], ref.sum(), cur[0], cur.sum()) if len(ref) <= 2 else _chi_square(ref, cur)
    out.p_value = p
    if min(ref.sum(), cur.sum()) <= SMALL_SAMPLE:
        out.test = "z-test of two proportions" if len(ref) <= 2 else "chi-square"
        out.statistic, out.threshold, out.value_drifted = p, ALPHA, p < ALPHA
    else:  # the distance says whether the gap matters, the test whether it is more than chance
        from scipy.spatial.distance import jensenshannon

        d = float(jensenshannon(p_ref, p_cur))
        out.test, out.statistic, out.threshold = "Jensen-Shannon distance", d, DISTANCE_THRESHOLD
        out.value_drifted = d >= DISTANCE_THRESHOLD and p < ALPHA


def _chi_square(ref: np.ndarray, cur: np.ndarray) -> float:
    """Pearson's chi-square test that two samples share one distribution of categories (the 2 x k table of
    counts). Evidently tests the live counts against the reference's shares taken as exact, which ignores the
    reference's own sampling noise: on random halves of a small table it flags 3 columns in 6 (car, measured).
    """
    from scipy import stats

    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def _two_proportions(k1: float, n1: float, k2: float, n2: float) -> float:
    """Two-sided p-value of the pooled z-test that two shares are equal."""
    from scipy import stats

    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(2 * stats.norm.sf(abs(k1 / n1 - k2 / n2) / se))


def _missing_shift(k1: int, n1: int, k2: int, n2: int) -> bool:
    if n1 == 0 or n2 == 0 or abs(k1 / n1 - k2 / n2) < MISSING_SHIFT:
        return False
    return _two_proportions(k1, n1, k2, n2) < ALPHA


def _cdf_gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Wasserstein-1 distance and the largest CDF gap of two sorted samples, exactly, in one merge: along the
    merged values, each side's CDF is its running count (at the last of tied values the count includes them
    all, and only there does the width to the next value count)."""
    order = np.argsort(np.concatenate([a, b]), kind="stable")  # two sorted runs: a linear merge
    x = np.concatenate([a, b])[order]
    from_b = np.cumsum(order >= len(a))
    gap = np.abs((np.arange(1, len(x) + 1) - from_b) / len(a) - from_b / len(b))[:-1]
    width = np.diff(x)
    return float(np.sum(gap * width)), float(gap[width > 0].max()) if np.any(width > 0) else 0.0


def _edges(a: np.ndarray) -> np.ndarray:
    """Decile edges of sorted values (the nearest ranks: no interpolation, no second sort)."""
    return np.unique(a[np.minimum((np.linspace(0.1, 0.9, 9) * len(a)).astype(int), len(a) - 1)])


def _psi(ref: np.ndarray, cur: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index of two count vectors over the same bins (empty bins count as ``eps``)."""
    p = np.maximum(np.asarray(ref, float) / max(np.sum(ref), 1), eps)
    q = np.maximum(np.asarray(cur, float) / max(np.sum(cur), 1), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def _describe(v: np.ndarray) -> dict[str, float]:
    """Median, quartiles, mean, sd and range of sorted values."""
    q = v[np.minimum((np.array([0.25, 0.5, 0.75]) * len(v)).astype(int), len(v) - 1)]
    return {"median": float(q[1]), "p25": float(q[0]), "p75": float(q[2]), "mean": float(v.mean()),
            "sd": float(v.std()), "min": float(v[0]), "max": float(v[-1])}


def _histogram(a: np.ndarray, b: np.ndarray, bins: int = 30) -> dict[str, Any]:
    """Shares of both sorted samples on shared bins spanning the bulk of both (0.5th to 99.5th percentile)."""
    lo = min(a[int(0.005 * (len(a) - 1))], b[int(0.005 * (len(b) - 1))])
    hi = max(a[int(0.995 * (len(a) - 1))], b[int(0.995 * (len(b) - 1))])
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    share = [np.diff(np.searchsorted(v, edges, "left")) / len(v) for v in (a, b)]
    return {"kind": "hist", "edges": edges.tolist(), "reference": share[0].tolist(), "current": share[1].tolist()}


def _text(out: ColumnDrift, a: np.ndarray, b: np.ndarray, seed: int) -> None:
    """A domain classifier's ROC AUC at telling reference texts from live ones, on held-out halves."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from ..metrics import get_metric
    from ..training.models.threads import one_thread_unless_set

    rng = np.random.default_rng(seed)
    a = rng.choice(a.astype(str), size=min(len(a), TEXT_ROWS), replace=False)
    b = rng.choice(b.astype(str), size=min(len(b), TEXT_ROWS), replace=False)
    texts = np.concatenate([a, b])
    y = np.r_[np.zeros(len(a), dtype=int), np.ones(len(b), dtype=int)]
    order = rng.permutation(len(y))
    half = len(y) // 2
    fit, test = order[:half], order[half:]
    out.test, out.threshold = "domain classifier ROC AUC", TEXT_AUC
    if len(np.unique(y[fit])) < 2 or len(np.unique(y[test])) < 2:
        out.statistic = 0.5
        return
    try:
        vec = TfidfVectorizer(sublinear_tf=True, max_df=0.5, max_features=20_000)
        X = vec.fit_transform(texts[fit])
        with one_thread_unless_set():  # a solver's many small products: 2-5x as fast on one thread (blas_commands.py)
            clf = LogisticRegression(C=1.0, max_iter=200).fit(X, y[fit])
        auc = get_metric("roc_auc", "binary")(y[test], clf.predict_proba(vec.transform(texts[test])))
    except ValueError:  # no words at all (empty or stop-word-only texts): nothing to tell apart
        auc = 0.5
    if min(len(a), len(b)) <= SMALL_SAMPLE:  # the 95th percentile of a random classifier's AUC on these test rows
        n1, n0 = int(y[test].sum()), int(len(test) - y[test].sum())
        out.threshold = 0.5 + 1.645 * float(np.sqrt((n1 + n0 + 1) / (12 * n1 * n0)))
    out.statistic = float(auc)
    out.value_drifted = auc > out.threshold


def _strong(c: ColumnDrift) -> bool:
    """Drifted beyond doubt: a p-value below ``STRICT_ALPHA`` (a distance's too; a moved missing share as it
    is). One column, or the predictions, raising the dataset's alarm alone would otherwise do so on 5% of
    unchanged data by chance."""
    if c.missing_drifted or not c.value_drifted:
        return c.drifted
    return c.p_value is None or c.p_value < STRICT_ALPHA


def dataset_verdict(columns: list[ColumnDrift], *, importance: dict[str, float] | None = None,
                    prediction: ColumnDrift | None = None, share: float = 0.5) -> dict[str, Any]:
    """The dataset-level alarm: at least ``share`` of the columns drifted (Evidently's rule), or columns that
    carry at least ``share`` of the model's attention did, or its predictions did along with some input (these
    two with a p-value test's bar at ``STRICT_ALPHA``: each can raise the alarm alone, so each alone must rarely
    do so by chance)."""
    tested = [c for c in columns if c.statistic is not None or c.missing_drifted]
    drifted = [c.column for c in tested if c.drifted]
    frac = len(drifted) / len(tested) if tested else 0.0
    imp = {k: float(v) for k, v in (importance or {}).items()}
    strong = [c.column for c in tested if _strong(c)]
    weight = sum(imp.get(c, 0.0) for c in strong) / sum(imp.values()) if imp and sum(imp.values()) > 0 else 0.0
    reasons = []
    if tested and frac >= share:
        reasons.append(f"{len(drifted)} of {len(tested)} input columns drifted")
    if weight >= share:
        reasons.append(f"the drifted columns carry {weight:.0%} of the model's attention")
    # the model answers the same inputs the same way, so predictions that moved while no input did are chance
    # or the gap between the reference's out-of-fold predictions and the final model's (trained on every row,
    # often more confident: credit_g's live probabilities spread wider on a random split), not drift
    if prediction is not None and _strong(prediction) and drifted:
        reasons.append("the predictions drifted")
    return {"alarm": bool(reasons), "reasons": reasons, "drifted": drifted, "tested": len(tested),
            "share": frac, "importance_share": weight}
