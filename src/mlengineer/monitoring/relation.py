"""Has an input's relation to the outcome changed? Concept drift, column by column; it needs outcomes.

    >>> changes = relation_changes(ref_cols, ref_y, live_cols, live_y, task="binary")   # doctest: +SKIP
    >>> [c.column for c in changes if c.changed]                                          # doctest: +SKIP

A column can keep its distribution while its bearing on the outcome goes (a sensor swapped for another with
the same range, a field filled in at random): no test of the inputs sees it, and the model's metric shows
it only when the model leaned on that column. Here each column's values are cut in bins (the reference's
deciles, or its categories, and missing), the outcomes in classes (regression: the reference's quintiles),
and within every bin the outcomes of reference and live rows are compared (a chi-square test of
homogeneity, summed over the bins: the test of "same outcome given this column" that a change of the column's
own distribution alone does not fail); numbers against two classes or values also by their rank
correlation with the outcome (Fisher's z), which a monotone relation fails with more power. A weighted
Bonferroni over the columns keeps the chance of any false alarm on unchanged data at ``ALPHA``.

Without outcomes nothing is tested: the relation cannot be seen. When inputs drifted it is not tested either
(``monitor.py`` says so): a shift of one input changes the outcome given any other input correlated with it,
though nothing but the inputs changed; there the concept-drift rule of the performance check (outcomes worse
than the inputs promised) is the one that speaks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .columns import Prepared

__all__ = ["ALPHA", "RelationChange", "outcome_classes", "relation_changes"]

ALPHA = 0.01  # the chance of a false alarm over all columns of unchanged data
BINS = 10
MIN_CELL = 5  # outcome classes expected fewer times in a bin are pooled (a chi-square needs counts)
MIN_SIDE = 10  # a bin with fewer rows on either side tells nothing


@dataclass
class RelationChange:
    """One column's test: reference against live outcomes, bin by bin of the column."""

    column: str
    statistic: float
    dof: int
    p_value: float
    changed: bool
    #: how much the column tells about the outcome (mutual information of its bins, in bits), in the
    #: reference and in the live rows
    information_reference: float
    information_current: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def outcome_classes(task: str, y_ref: np.ndarray, y_cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes as class codes: class indices, or for regression the reference's quintile of the value."""
    if task != "regression":
        return np.asarray(y_ref, dtype=np.int64), np.asarray(y_cur, dtype=np.int64)
    edges = np.unique(np.quantile(y_ref, np.linspace(0, 1, 6)[1:-1]))
    return np.searchsorted(edges, y_ref, side="right"), np.searchsorted(edges, y_cur, side="right")


def _bins(ref: Prepared, cur: Prepared) -> tuple[np.ndarray, np.ndarray] | None:
    """Both sides' values as bin codes (the last code: missing); None for a column that cannot be binned."""
    if ref.kind == "numeric":
        present = ref.present()
        if not len(present):
            return None
        edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)[1:-1]))
        out = []
        for p in (ref, cur):
            codes = np.searchsorted(edges, p.values, side="right")
            codes[np.isnan(p.values)] = len(edges) + 1
            out.append(codes)
        return out[0], out[1]
    if ref.kind == "categorical":
        counts = ref.counts()
        keep = np.flatnonzero(counts >= max(MIN_SIDE, 0.01 * len(ref)))[:50]  # rare categories pooled as one
        lookup = np.full(len(cur.categories) + 1, len(keep), dtype=np.int64)  # codes run over the live list
        lookup[keep] = np.arange(len(keep))
        lookup[-1] = len(keep) + 1  # missing (code -1)
        return lookup[ref.values], lookup[cur.values]
    return None  # texts: their relation to the outcome would need a model of the text


def _information(table: np.ndarray) -> float:
    """Mutual information (bits) of a bins x classes count table."""
    n = table.sum()
    if n <= 0:
        return 0.0
    p = table / n
    outer = p.sum(axis=1, keepdims=True) * p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / outer[nz])))


def _homogeneity(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Chi-square of two rows of outcome counts (one bin, reference and live); rare classes pooled."""
    total = a + b
    order = np.argsort(total)
    n1, n2, n = a.sum(), b.sum(), total.sum()
    small = np.cumsum(total[order]) * min(n1, n2) / n < MIN_CELL  # pool the rarest classes until they count
    rare = order[small]
    keep = order[~small]
    rows = [np.r_[a[keep], a[rare].sum()], np.r_[b[keep], b[rare].sum()]]
    t = np.asarray(rows, dtype=np.float64)
    t = t[:, t.sum(axis=0) > 0]
    if t.shape[1] < 2:
        return 0.0, 0
    expected = t.sum(axis=1, keepdims=True) * t.sum(axis=0, keepdims=True) / n
    return float(np.sum((t - expected) ** 2 / expected)), t.shape[1] - 1


def relation_changes(ref_cols: dict[str, Prepared], y_ref: np.ndarray, cur_cols: dict[str, Prepared],
                     y_cur: np.ndarray, *, task: str, importance: dict[str, float] | None = None,
                     alpha: float = ALPHA) -> list[RelationChange]:
    """Each column's test of an unchanged relation to the outcome; ``y_ref``/``y_cur``: the outcomes of the
    rows of ``ref_cols``/``cur_cols`` (encoded, no missing ones); ``importance``: the model's attention per
    column, which shares out the false-alarm budget."""
    from scipy.stats import chi2

    cy_ref, cy_cur = outcome_classes(task, y_ref, y_cur)
    k = int(max(cy_ref.max(initial=0), cy_cur.max(initial=0))) + 1
    tests = []
    for name, ref in ref_cols.items():
        binned = _bins(ref, cur_cols[name])
        if binned is None:
            continue
        b_ref, b_cur = binned
        nb = int(max(b_ref.max(initial=0), b_cur.max(initial=0))) + 1
        t_ref = np.bincount(b_ref * k + cy_ref, minlength=nb * k).reshape(nb, k)
        t_cur = np.bincount(b_cur * k + cy_cur, minlength=nb * k).reshape(nb, k)
        stat, dof = 0.0, 0
        for b in range(nb):
            if t_ref[b].sum() >= MIN_SIDE and t_cur[b].sum() >= MIN_SIDE:
                s, d = _homogeneity(t_ref[b], t_cur[b])
                stat, dof = stat + s, dof + d
        p = float(chi2.sf(stat, dof)) if dof else 1.0
        if ref.kind == "numeric" and task != "multiclass":  # a monotone relation: one degree of freedom is enough
            p = min(2 * p, 2 * _trend_p(ref, cur_cols[name], y_ref, y_cur), 1.0)
        tests.append(RelationChange(name, stat, dof, p, False, _information(t_ref), _information(t_cur)))
    # weighted Bonferroni: half the false-alarm budget shared evenly, half by the model's attention, so the
    # columns the model leans on are tested more keenly; the chance of any false alarm stays at most alpha
    imp = {t.column: max(float((importance or {}).get(t.column, 0.0)), 0.0) for t in tests}
    total = sum(imp.values())
    for t in tests:
        share = 0.5 / len(tests) + (0.5 * imp[t.column] / total if total > 0 else 0.5 / len(tests))
        t.changed = t.p_value < alpha * share
    return tests


def _trend_p(ref: Prepared, cur: Prepared, y_ref: np.ndarray, y_cur: np.ndarray) -> float:
    """Two-sided p-value that the column's rank correlation with the outcome differs (Fisher's z)."""
    from scipy.stats import norm, spearmanr

    zs, ses = [], []
    for col, y in ((ref, y_ref), (cur, y_cur)):
        keep = ~np.isnan(col.values)
        n = int(keep.sum())
        if n < MIN_SIDE or np.ptp(col.values[keep]) == 0 or np.ptp(y[keep]) == 0:
            return 1.0
        r = float(spearmanr(col.values[keep], y[keep]).statistic)
        zs.append(np.arctanh(np.clip(r, -0.999999, 0.999999)))
        ses.append(1.06 / np.sqrt(n - 3))  # Spearman's standard error on Fisher's scale (Fieller et al.)
    return float(2 * norm.sf(abs(zs[0] - zs[1]) / np.hypot(*ses)))
