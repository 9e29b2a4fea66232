"""Honest splits: stratified for classes, grouped so a group never straddles train and validation, or
ordered by time so the model is validated on rows that come after the ones it learned from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from ..errors import DataError

__all__ = ["Split", "make_folds", "make_holdout"]


@dataclass(frozen=True)
class Split:
    """Index arrays into the training rows, and the name of the strategy for the user."""

    train: np.ndarray
    valid: np.ndarray
    strategy: str


def _min_class_count(y: np.ndarray) -> int:
    return int(np.bincount(y).min()) if len(y) else 0


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
    if order is not None:
        idx = np.argsort(order, kind="stable")
        cut = int(round(n * (1 - fraction)))
        return Split(np.sort(idx[:cut]), np.sort(idx[cut:]), f"time-ordered holdout (last {fraction:.0%} by time)")
    n_splits = max(2, int(round(1 / fraction)))
    if groups is not None:
        folds = make_folds(y, n_splits=n_splits, stratify=stratify, groups=groups, seed=seed)
        tr, va = folds[0]
        return Split(tr, va, f"grouped holdout ({fraction:.0%} of groups)")
    if stratify and _min_class_count(y) >= 2:
        kf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        tr, va = next(kf.split(np.zeros(n), y))
        return Split(tr, va, f"stratified holdout ({fraction:.0%})")
    rng = np.random.default_rng(seed)
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
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k folds as (train, valid) index pairs, stratified and/or grouped as asked."""
    n = len(y)
    X = np.zeros(n)
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < n_splits:
            raise DataError(f"The group column has {n_groups} groups; at least {n_splits} are needed for {n_splits} folds.")
        if stratify and _min_class_count(y) >= n_splits:
            kf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            return list(kf.split(X, y, groups))
        return list(GroupKFold(n_splits=n_splits).split(X, y, groups))
    if stratify and _min_class_count(y) >= n_splits:
        return list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(X, y))
    return list(KFold(n_splits=n_splits, shuffle=True, random_state=seed).split(X, y))
