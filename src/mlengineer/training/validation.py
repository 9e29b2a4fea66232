"""How candidates are scored: k folds for small data (every row gets an out-of-fold prediction), one holdout
for large data (cheaper), time-ordered when the rows have an order; and the sample the search works on when
the data is too large to search on in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.load import available_memory
from ..data.split import copy_groups, group_start_order, make_folds, make_holdout, merge_groups

__all__ = ["Validation", "choose_validation", "memory_available", "search_sample", "split_keys", "split_words"]


@dataclass(frozen=True)
class Validation:
    """The folds (train, valid) index pairs into the search rows, and what they are called."""

    folds: list[tuple[np.ndarray, np.ndarray]]
    strategy: str

    @property
    def kind(self) -> str:
        return "kfold" if len(self.folds) > 1 else "holdout"

    @property
    def scored(self) -> np.ndarray:
        """Rows with an out-of-sample prediction: the holdout rows, or every row under k folds."""
        return np.sort(np.concatenate([va for _, va in self.folds]))


#: a holdout that would hold fewer rows of the rarest class than this scores too few of them to rank models by
FEW_IN_HOLDOUT = 20
#: a class of fewer rows than this is too rare for folds to score enough of it either (3 folds score its 2 rows
#: where a holdout scores none or one): it does not decide the folds, and its rows spread over the split as they can
RARE_CLASS_ROWS = 10


def n_folds_for(n_rows: int, budget: float, *, in_holdout: float | None = None) -> int:
    """Folds worth their cost: 5 for small data, 3 for medium, 1 (a holdout) for large, all scaled by the
    time budget (the fits of k folds cost about k times one holdout fit). ``in_holdout``: the rows of the
    rarest class a holdout would hold; fewer than ``FEW_IN_HOLDOUT`` buys 3 folds (every such row scored) up
    to three times the medium size."""
    scale = max(budget, 1.0) / 60.0
    if n_rows <= 3_000 * scale:
        return 5
    if n_rows <= 8_000 * scale:
        return 3
    if in_holdout is not None and in_holdout < FEW_IN_HOLDOUT and n_rows <= 24_000 * scale:
        return 3
    return 1


def choose_validation(
    y: np.ndarray,
    *,
    mode: str = "auto",
    budget: float = 60.0,
    holdout_fraction: float = 0.2,
    stratify: bool = False,
    groups: np.ndarray | None = None,
    order: np.ndarray | None = None,
    seed: int = 0,
    names: Sequence[object] | None = None,
) -> Validation:
    """The validation scheme for ``y``: ``mode`` is auto, holdout or kfold (5 folds). ``names``: the classes'
    labels by code (``Task.classes``), for the words on a class too rare to decide the folds."""
    n = len(y)
    if order is not None:  # the future must not leak into the past: always one time-ordered holdout
        s = make_holdout(y, fraction=holdout_fraction, order=order)
        return Validation([(s.train, s.valid)], s.strategy)
    labels, counts = np.unique(y, return_counts=True) if stratify else (np.empty(0), np.empty(0))
    # the classes whose scoring the folds improve: a class of a few rows stays too few to rank models by either way
    counted = counts >= RARE_CLASS_ROWS
    rarest = counts[counted].min() * holdout_fraction if counted.any() else None
    k = {"holdout": 1, "kfold": 5}.get(mode) or n_folds_for(n, budget, in_holdout=rarest)
    rare = [(names[int(lab)] if names is not None else lab, int(c))
            for lab, c in zip(labels, counts, strict=True) if c < RARE_CLASS_ROWS]
    if mode == "auto" and rare and n_folds_for(n, budget, in_holdout=min(c for _, c in rare) * holdout_fraction) != k:
        note = _rare_words(rare, k, groups is not None)
    else:
        note = ""
    if k > 1 and groups is not None and len(np.unique(groups)) < k:
        k = 1
    if k == 1:
        s = make_holdout(y, fraction=holdout_fraction, stratify=stratify, groups=groups, seed=seed)
        return Validation([(s.train, s.valid)], s.strategy + note)
    folds = make_folds(y, n_splits=k, stratify=stratify, groups=groups, seed=seed)
    kind = "grouped " if groups is not None else "stratified " if stratify else ""
    return Validation([(np.asarray(tr), np.asarray(va)) for tr, va in folds],
                      f"{kind}{k}-fold cross-validation{note}")


def _rare_words(rare: list[tuple[object, int]], k: int, grouped: bool) -> str:
    """What the split says of the classes too rare to decide the folds (``RARE_CLASS_ROWS``)."""
    named = ", ".join(f"'{lab}' ({c} row{'s' if c > 1 else ''})" for lab, c in rare[:3])
    more = f" and {len(rare) - 3} more" if len(rare) > 3 else ""
    scheme = "a holdout" if k == 1 else f"{k} folds"
    side = "" if grouped else ", the other classes stratified"
    return (f"; {scheme} for the table, as the class{'es' if len(rare) > 1 else ''} {named}{more} "
            f"{'are' if len(rare) > 1 else 'is'} too rare to decide the folds: "
            f"{'their' if len(rare) > 1 else 'its'} rows spread over the split as they can{side}")


def split_keys(rows: pd.DataFrame, groups: np.ndarray | None, order: np.ndarray | None
               ) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """(groups, order, copies) every split of the training rows follows (the validation, the calibration rows, the
    text scores' folds). Rows that repeat another exactly (``rows``: the cleaned features and target) join
    their copies' group, so no copy is on both sides; with a time order as well, each group's rows take its
    first time, so a time-ordered split keeps whole groups together (on the side of their first appearance).
    ``copies``: how many rows repeat another."""
    codes = copy_groups(rows)
    copies = 0 if codes is None else len(codes) - int(codes.max()) - 1
    if codes is not None:
        groups = codes if groups is None else merge_groups(groups, codes)
    if order is not None and groups is not None:
        return None, group_start_order(order, groups), copies
    return groups, order, copies


def split_words(strategy: str, *, copies: int, user_groups: bool, timed: bool, classification: bool) -> str:
    """The split's name said as ``split_keys`` made it: grouped only where the user named groups."""
    if copies and not user_groups:
        strategy = strategy.replace("grouped ", "stratified " if classification else "", 1)
        strategy = strategy.replace(", whole groups)", ")", 1)
    if user_groups and timed:
        strategy += ", whole groups (--group-column) on one side, each by its first time"
    if copies:
        strategy += (f"; {copies:,} row{'s' if copies > 1 else ''} repeating another exactly kept on the side of "
                     "their copies")
    return strategy


def memory_available() -> int:
    """Bytes of memory free for use, or 4 GiB when it cannot be read."""
    return available_memory() or 4 * 2**30


def search_sample(y: np.ndarray, n_features: int, *, budget: float, stratify: bool, seed: int,
                  max_rows: int | None = None) -> np.ndarray | None:
    """Row indices to search on when the data is too large to search on in full, else None.

    The search fits dozens of models, each holding a few copies of its data; the final models are fitted
    on every row afterwards. The cap follows free memory and the time budget."""
    n = len(y)
    if max_rows is None:
        # free memory rounded down to a power of two: it changes from run to run, the sample should not
        free = 1 << (max(memory_available(), 1).bit_length() - 1)
        by_memory = free // (12 * 4 * max(n_features, 1))  # a dozen float32 copies at once
        by_time = max(50_000, int(2_000 * budget))
        max_rows = int(min(by_memory, by_time))
    if n <= max_rows:
        return None
    rng = np.random.default_rng(seed)
    if not stratify:
        return np.sort(rng.choice(n, size=max_rows, replace=False))
    # keep every class, and each class's share
    picked = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        take = max(min(len(rows), 10), int(round(len(rows) * max_rows / n)))
        picked.append(rng.choice(rows, size=min(take, len(rows)), replace=False))
    return np.sort(np.concatenate(picked))
