"""Honest splits: stratified for classes, grouped so a group never straddles train and validation, or
ordered by time so the model is validated on rows that come after the ones it learned from.

``make_holdout`` gives one train/validation split, ``make_folds`` k of them; both are deterministic for a
seed. Stratification is done by hand (each class shuffled and dealt out in turn), so a class with fewer
rows than folds is spread as far as it goes instead of failing or warning. Time order never puts rows of
one moment on both sides of a cut, and rows without a time stay in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError
from .schema import parse_datetime

__all__ = ["Split", "copy_groups", "feature_fold_ids", "group_start_order", "make_folds", "make_holdout", "merge_groups",
           "row_content_keys"]


@dataclass(frozen=True)
class Split:
    """Index arrays into the training rows, and the name of the strategy for the user."""

    train: np.ndarray
    valid: np.ndarray
    strategy: str


def _codes(values: np.ndarray) -> np.ndarray:
    """Integer codes for any labels or group keys (missing ones form a group of their own)."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object if np.asarray(values).dtype.kind == "O" else None))
    codes = np.asarray(codes, dtype=np.int64)
    codes[codes < 0] = len(uniques)
    return codes


def _group_codes(groups: np.ndarray) -> np.ndarray:
    """Integer codes for group keys; a row without a key is a group of its own (nothing ties it to another)."""
    codes, uniques = pd.factorize(pd.Series(groups, dtype=object if groups.dtype.kind == "O" else None))
    codes = np.asarray(codes, dtype=np.int64)
    keyless = codes < 0
    codes[keyless] = len(uniques) + np.arange(int(keyless.sum()))
    return codes


def _stratified_fold_ids(y: np.ndarray, n_splits: int, rng: np.random.Generator) -> np.ndarray:
    """A fold number per row: each class shuffled and dealt round the folds from a random start, so every
    fold gets its share of every class that has enough rows."""
    codes = _codes(y)
    fold = np.empty(len(y), dtype=np.int64)
    offset = 0
    for c in np.unique(codes):
        idx = np.flatnonzero(codes == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + offset) % n_splits
        offset += len(idx)  # the next class starts where this one stopped, so small folds even out
    return fold


def _time_key(order: np.ndarray) -> np.ndarray:
    """Sortable floats for the time column's values (NaN where a row has no time)."""
    values = pd.Series(order)
    if values.dtype.kind in "mM":
        return values.astype("int64").where(values.notna(), np.nan).to_numpy(dtype=float)
    key = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    if np.isnan(key).sum() > values.isna().sum():  # text: dates if they parse, else their own order
        parsed = parse_datetime(values, None)
        if parsed.notna().sum() >= 0.9 * values.notna().sum():
            return parsed.astype("int64").where(parsed.notna(), np.nan).to_numpy(dtype=float)
        return values.astype(str).where(values.notna()).rank(method="dense").to_numpy(dtype=float)
    return key


def _boundaries(key_sorted: np.ndarray, cuts: list[int]) -> list[int]:
    """Cut positions moved back to the first row of their time, so one moment is never on both sides."""
    out = []
    for cut in cuts:
        cut = min(max(cut, 1), len(key_sorted) - 1)
        first = int(np.searchsorted(key_sorted, key_sorted[cut], side="left"))
        if first == 0:  # every row before the cut shares its time: move forward instead
            first = int(np.searchsorted(key_sorted, key_sorted[cut], side="right"))
        out.append(first)
    return out


def _timed_rows(order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows with a time in time order, their sorted keys, rows without a time)."""
    key = _time_key(order)
    timed = np.flatnonzero(~np.isnan(key))
    if len(timed) < 2:
        raise DataError("The time column has fewer than 2 rows with a time: a time-ordered split needs them.")
    ordered = timed[np.argsort(key[timed], kind="stable")]
    return ordered, key[ordered], np.flatnonzero(np.isnan(key))


def _time_cut(order: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows before and from the cut that leaves about ``fraction`` of the timed rows for validation;
    rows without a time go to training."""
    ordered, key_sorted, untimed = _timed_rows(order)
    (first,) = _boundaries(key_sorted, [int(round(len(ordered) * (1 - fraction)))])
    if first >= len(ordered):
        raise DataError("Every row has the same time: a time-ordered split cannot validate on later rows.")
    return np.sort(np.concatenate([ordered[:first], untimed])), np.sort(ordered[first:])


def make_holdout(
    y: np.ndarray,
    *,
    fraction: float = 0.2,
    stratify: bool = False,
    groups: np.ndarray | None = None,
    order: np.ndarray | None = None,
    seed: int = 0,
) -> Split:
    """One train/validation split; ``order`` (sortable values, e.g. timestamps) makes it time-ordered."""
    n = len(y)
    if n < 5:
        raise DataError(f"Only {n} labelled rows: at least 5 are needed to train and validate a model.")
    if not 0 < fraction < 1:
        raise DataError(f"The holdout fraction must be between 0 and 1. Got {fraction} instead.")
    if order is not None:
        train, valid = _time_cut(np.asarray(order), fraction)
        return Split(train, valid, f"time-ordered holdout (the latest {len(valid) / n:.0%} of rows by time)")
    rng = np.random.default_rng(seed)
    n_splits = max(2, int(round(1 / fraction)))
    if groups is not None:
        folds = make_folds(y, n_splits=n_splits, stratify=stratify, groups=groups, seed=seed,
                           needs=f"a grouped holdout of {fraction:.0%}")
        tr, va = folds[0]
        return Split(tr, va, f"grouped holdout ({len(va) / n:.0%} of rows, whole groups)")
    if stratify:  # every class its share; a class of one row trains (it cannot be validated), rare ones spread
        fold = _stratified_fold_ids(y, n_splits, rng)
        codes = _codes(y)
        fold[np.bincount(codes)[codes] < 2] = 1
        valid = np.flatnonzero(fold == 0)
        return Split(np.flatnonzero(fold != 0), valid, f"stratified holdout ({len(valid) / n:.0%})")
    perm = rng.permutation(n)
    cut = int(round(n * (1 - fraction)))
    return Split(np.sort(perm[:cut]), np.sort(perm[cut:]), f"random holdout ({fraction:.0%})")


def make_folds(
    y: np.ndarray,
    *,
    n_splits: int = 5,
    stratify: bool = False,
    groups: np.ndarray | None = None,
    seed: int = 0,
    order: np.ndarray | None = None,
    needs: str | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k folds as (train, valid) index pairs, stratified and/or grouped as asked (a row without a group key is
    a group of its own). ``needs``: what the folds are for, in the words of the error when groups are too few.

    With ``order`` the folds move forward in time: fold i learns from the rows before a cut and is
    validated on the next block, so no fold learns from its future (k blocks after the first).
    """
    n = len(y)
    if n_splits < 2:
        raise DataError(f"Cross-validation needs at least 2 folds. Got {n_splits} instead.")
    if n < n_splits:
        raise DataError(f"Only {n} labelled rows: {n_splits} folds need at least {n_splits}.")
    rng = np.random.default_rng(seed)
    if order is not None:
        return _time_folds(np.asarray(order), n_splits)
    if groups is not None:
        if pd.isna(pd.Series(groups, dtype=object)).all():
            raise DataError("The group column (--group-column) holds no value in any row: name a column of group keys "
                            "(a customer, a patient), or leave --group-column out.")
        g = _group_codes(np.asarray(groups))
        n_groups = int(g.max()) + 1
        if n_groups < n_splits:
            raise DataError(f"The group column (--group-column) has {n_groups} group{'s' if n_groups > 1 else ''}; "
                            f"{needs or f'{n_splits} folds'} needs at least {n_splits}, each held out whole: pass a "
                            "column with more groups, or leave --group-column out.")
        fold_of_group = _group_fold_ids(g, y if stratify else None, n_splits, rng)
        fold = fold_of_group[g]
    elif stratify:
        fold = _stratified_fold_ids(y, n_splits, rng)
    else:
        fold = rng.permutation(n) % n_splits
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_splits)]


def _group_fold_ids(g: np.ndarray, y: np.ndarray | None, n_splits: int, rng: np.random.Generator) -> np.ndarray:
    """A fold per group: groups in random order, each given to the fold with the fewest rows so far (and,
    with ``y``, the one whose class mix it improves most), so folds come out about equal."""
    n_groups = int(g.max()) + 1
    sizes = np.bincount(g, minlength=n_groups)
    order = rng.permutation(n_groups)
    order = order[np.argsort(-sizes[order], kind="stable")]  # big groups first, ties in random order
    rows = np.zeros(n_splits)
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    single = order[sizes[order] == 1]
    if len(single) > MANY_SINGLES:  # groups of one row (rows without a copy): dealt at once, not one by one
        order = order[sizes[order] > 1]
    else:
        single = single[:0]
    if y is None:
        for grp in order:
            k = int(rows.argmin())
            fold_of_group[grp] = k
            rows[k] += sizes[grp]
        fold_of_group[single] = _deal(len(single), len(g) / n_splits - rows)
        return fold_of_group
    codes = _codes(y)
    k_classes = int(codes.max()) + 1
    per_group = np.zeros((n_groups, k_classes))
    np.add.at(per_group, (g, codes), 1)
    target = per_group.sum(axis=0) / n_splits
    counts = np.zeros((n_splits, k_classes))
    for grp in order:
        # the fold whose class counts move closest to an even share: the change in the distance, not the distance
        # after (by which a fold already full, far closer than an empty one, would take every group)
        after = counts + per_group[grp]
        cost = np.abs(after - target).sum(axis=1) - np.abs(counts - target).sum(axis=1) + 1e-9 * rows
        k = int(cost.argmin())
        fold_of_group[grp] = k
        counts[k] = after[k]
        rows[k] += sizes[grp]
    if len(single):
        single_class = np.zeros(n_groups, dtype=np.int64)
        single_class[g] = codes  # a group of one row has that row's class
        for c in range(k_classes):
            of_c = single[single_class[single] == c]
            fold_of_group[of_c] = _deal(len(of_c), target[c] - counts[:, c])
    return fold_of_group


#: above this many groups of one row, ``_group_fold_ids`` deals them out at once
MANY_SINGLES = 2_000


def _deal(n_items: int, need: np.ndarray) -> np.ndarray:
    """A fold for each of ``n_items`` items (in the order given, already random): each fold about as many as it
    still ``need``s, in proportion (alike where none needs any)."""
    want = np.clip(need, 0, None)
    share = want / want.sum() if want.sum() > 0 else np.full(len(need), 1 / len(need))
    counts = np.floor(share * n_items).astype(np.int64)
    counts[np.argsort(-(share * n_items - counts))[: n_items - int(counts.sum())]] += 1
    return np.repeat(np.arange(len(need)), counts)


def _time_folds(order: np.ndarray, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Forward-chaining folds: the timed rows cut into n_splits + 1 blocks by time; fold i learns from the
    first i + 1 blocks (and the rows without a time) and is validated on the next one."""
    ordered, key_sorted, untimed = _timed_rows(order)
    n = len(ordered)
    cuts = _boundaries(key_sorted, [int(round(n * (i + 1) / (n_splits + 1))) for i in range(n_splits)]) + [n]
    folds = []
    for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
        if 0 < start < stop:
            folds.append((np.sort(np.concatenate([ordered[:start], untimed])), np.sort(ordered[start:stop])))
    if not folds:
        raise DataError("Too few distinct times to cut time-ordered folds: use a holdout instead.")
    return folds


#: copies are kept together only where the table holds at least this many distinct rows, and this share of its rows
FEW_DISTINCT, DISTINCT_SHARE = 50, 0.1


def row_content_keys(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit key per row from its content alone (every column of ``frame``, not its index): rows that repeat
    each other exactly share it, in this frame and in any other frame of the same columns, so the keys of two
    tables (a train and a test split) can be compared. Each row hashed once (``pandas.util.hash_pandas_object``):
    a million rows cost a second, not a comparison of every pair."""
    return np.asarray(pd.util.hash_pandas_object(frame, index=False).to_numpy(), dtype=np.uint64)


def copy_groups(frame: pd.DataFrame) -> np.ndarray | None:
    """A code per row that rows repeating each other exactly (every column of ``frame`` equal) share, or None when
    no row repeats another: the rows' ``row_content_keys``, numbered 0, 1, ... in order of first appearance.

    None too where copies are how the table is rather than records entered twice: fewer than ``FEW_DISTINCT``
    distinct rows, or under ``DISTINCT_SHARE`` of the rows (a few categorical columns whose every combination
    recurs). There new rows will repeat training rows too, so a split across copies is the honest one, and keeping
    them together would leave a fold too few groups, or a class, to learn from."""
    if frame.shape[1] == 0 or len(frame) < 2:
        return None
    codes, uniques = pd.factorize(row_content_keys(frame))
    if len(uniques) == len(frame) or len(uniques) < FEW_DISTINCT or len(uniques) < DISTINCT_SHARE * len(frame):
        return None
    return np.asarray(codes, dtype=np.int64)


def merge_groups(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Codes of the groups that join ``a``'s groups (keys, a keyless row alone) with ``b``'s (codes): two rows
    share a code when a chain of shared keys links them (the connected parts of both groupings)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ga = _group_codes(np.asarray(a))
    gb = np.asarray(b, dtype=np.int64) + int(ga.max()) + 1
    size = int(gb.max()) + 1
    graph = coo_matrix((np.ones(len(ga)), (ga, gb)), shape=(size, size))
    _, label = connected_components(graph, directed=False)
    return np.asarray(label[ga], dtype=np.int64)


def group_start_order(order: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row's time replaced by its group's first time (NaN where no row of the group has one): a time-ordered
    split on it keeps whole groups on one side, each on the side of its first appearance (ties never split)."""
    key = _time_key(np.asarray(order))
    g = _group_codes(np.asarray(groups))
    first = pd.Series(key).groupby(g).min()  # NaN times are skipped; a group of none stays NaN
    return first.reindex(g).to_numpy(dtype=float)


def feature_fold_ids(y: np.ndarray, k: int, *, classification: bool, seed: int, groups: np.ndarray | None = None,
                     order: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """(fold of each row, forward) for features learned out of fold from the target (text scores), cut the way
    the validation is: whole groups per fold under ``groups``; under ``order`` blocks in time order, and
    ``forward`` True: a row is then scored only by what earlier blocks learned (rows without a time in block
    0, which teaches every later block). Else stratified for classes, a rare class spread as it comes."""
    n = len(y)
    if order is not None:
        ordered, key_sorted, untimed = _timed_rows(np.asarray(order))
        fold = np.zeros(n, dtype=np.int64)
        cuts = sorted(set(_boundaries(key_sorted, [int(round(len(ordered) * (i + 1) / k)) for i in range(k - 1)])))
        for i, start in enumerate(cuts):
            fold[ordered[start:]] = i + 1
        fold[untimed] = 0
        return fold, True
    rng = np.random.default_rng(seed)
    if groups is not None:
        g = _group_codes(np.asarray(groups))
        k = min(k, int(g.max()) + 1)
        if k < 2:
            return np.zeros(n, dtype=np.int64), False
        return _group_fold_ids(g, y if classification else None, k, rng)[g], False
    if classification:
        return _stratified_fold_ids(y, k, rng), False
    return rng.permutation(n) % k, False
