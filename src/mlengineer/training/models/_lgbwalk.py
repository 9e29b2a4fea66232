"""LightGBM's trees walked by a compiled loop (numba), from the model's own text: one row, or many.

The model text (``Booster.model_to_string``) holds each tree as LightGBM keeps it: per split its feature,
threshold, decision type (a category set or a number; where a missing value goes) and children (a negative
child is a leaf); per leaf its value, shrinkage applied. ``pack`` lays every tree's splits end to end in a few
flat arrays, and ``walk`` follows them for one row with LightGBM's own rules (``tree.h``: a missing number
treated as zero unless the split learned where missing values go; a category set as a bitset of 32-bit
words; a negative or missing category goes right; a number within 1e-35 of zero read as zero, as LightGBM's
row reader drops it), summing the leaves per class in the same order. So the
raw scores are LightGBM's to the bit, and the link (sigmoid, softmax) is LightGBM's formula.

What it is for: the trees of one row 1.7-2.4x faster than LightGBM's single-row call (``FastRow``), a whole
record through one booster 206 -> 137 us (median over the 24 tasks; bench/RESULTS.md, "LightGBM's trees
walked by a compiled loop"). Linear trees, random-forest averaging and objectives other than binary, multiclass (softmax) and L2
regression are left to LightGBM (``pack`` returns None), as is everything where numba is missing.
The same walk answers a large batch (``compiled_rows``) a block of rows at a time through each tree, the rows
shared among threads: about twice as fast as LightGBM's own batch prediction for a model of many trees.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BATCH_WORK", "Packed", "compiled_row", "compiled_rows", "pack"]

#: LightGBM's ``kZeroThreshold`` (a float 1e-35, as a double): a number this close to zero counts as zero
ZERO = float(np.float32(1e-35))
_ARRAY_KEYS = ("split_feature", "threshold", "decision_type", "left_child", "right_child", "leaf_value",
               "cat_boundaries", "cat_threshold")


@dataclass
class Packed:
    """Every tree's splits end to end. ``child`` (splits, 2): left and right, a split's index or ``~leaf``;
    ``root``: each tree's first split or ``~leaf`` (a tree of one leaf); ``kind``: LightGBM's decision type
    (1: a category set, 2: missing goes left, bits 2-3: which values count as missing); ``threshold``: the
    number, or for a category set the index into ``cat_bounds`` of its words in ``cat_words``."""

    feature: np.ndarray
    threshold: np.ndarray
    kind: np.ndarray
    child: np.ndarray
    leaf: np.ndarray
    root: np.ndarray
    cat_words: np.ndarray
    cat_bounds: np.ndarray
    outputs: int
    link: str  # "sigmoid", "softmax" or "identity"
    sigmoid: float


def pack(model_text: str, iterations: int | None = None) -> Packed | None:
    """The trees of a LightGBM model text (up to ``iterations`` rounds), or None where its answers need more
    than the trees' leaves and a sigmoid, softmax or identity."""
    head, _, body = model_text.partition("\nTree=")
    header = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
    objective = header.get("objective", "").split()
    if "average_output" in head or not objective:
        return None
    outputs = int(header.get("num_tree_per_iteration", "1"))
    if objective[0] == "binary" and outputs == 1:
        link = "sigmoid"
    elif objective[0] == "multiclass" and outputs > 1:
        link = "softmax"
    elif objective[0] == "regression" and outputs == 1:
        link = "identity"
    else:
        return None
    sig = next((float(p.split(":", 1)[1]) for p in objective[1:] if p.startswith("sigmoid:")), 1.0)
    blocks = ("Tree=" + body).split("end of trees", 1)[0].split("\nTree=")
    if iterations:
        blocks = blocks[: iterations * outputs]
    feature: list[np.ndarray] = []
    threshold: list[np.ndarray] = []
    kind: list[np.ndarray] = []
    left: list[np.ndarray] = []
    right: list[np.ndarray] = []
    leaf: list[np.ndarray] = []
    words: list[np.ndarray] = []
    root: list[int] = []
    bounds: list[int] = [0]
    n_split = n_leaf = 0
    for block in blocks:
        t = dict(re.findall(r"^(\w+)=(.*)$", block, flags=re.M))
        if t.get("is_linear", "0") != "0":
            return None
        values = np.array(t["leaf_value"].split(), dtype=np.float64)
        if int(t.get("num_leaves", "1")) <= 1:  # a tree of one leaf (its split lists are empty)
            root.append(~n_leaf)
            leaf.append(values)
            n_leaf += len(values)
            continue
        a: dict[str, Any] = {k: np.array(t[k].split(), dtype=np.float64 if k in ("threshold", "leaf_value") else np.int64)
             for k in _ARRAY_KEYS if k in t}
        thr = a["threshold"].copy()
        cat = (a["decision_type"] & 1) == 1
        if cat.any():  # the tree's category sets join the global list of sets
            b = a["cat_boundaries"]
            thr[cat] += len(bounds) - 1
            words.append(a["cat_threshold"].astype(np.uint32))
            bounds.extend((bounds[-1] + b[1:] - b[0]).tolist())
        for side, out in (("left_child", left), ("right_child", right)):
            c = a[side]
            out.append(np.where(c >= 0, c + n_split, ~(~c + n_leaf)))
        root.append(n_split)
        feature.append(a["split_feature"])
        threshold.append(thr)
        kind.append(a["decision_type"])
        leaf.append(values)
        n_split += len(thr)
        n_leaf += len(values)

    def join(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return Packed(join(feature, np.int32), join(threshold, np.float64), join(kind, np.int8),
                  np.ascontiguousarray(np.stack([join(left, np.int32), join(right, np.int32)], axis=1)),
                  join(leaf, np.float64), np.asarray(root, dtype=np.int32), join(words, np.uint32),
                  np.asarray(bounds, dtype=np.int64), outputs, link, sig)


_WALK: Any = None
#: the compiled walks, set by ``_compiled``: ``_DESCEND`` is what the other two call (numba resolves it when it
#: compiles them), ``_ROWS`` the walk of many rows
_DESCEND: Any = None
_LINK: Any = None
_ROWS: Any = None


def _compiled() -> Any:
    """The walk, compiled once per process (numba caches it on disk where it can); None without numba."""
    global _WALK, _DESCEND, _LINK, _ROWS
    if _WALK is None:
        try:
            import numba
        except ImportError:
            _WALK = False
            return None
        _DESCEND = numba.njit(cache=True, nogil=True, inline="always")(_descend)
        _LINK = numba.njit(cache=True, nogil=True, inline="always")(_link)
        _ROWS = numba.njit(cache=True, nogil=True)(_walk_rows)
        _WALK = numba.njit(cache=True, nogil=True)(_walk)
    return _WALK or None


def _descend(x: np.ndarray, n: int, feature: np.ndarray, threshold: np.ndarray, kind: np.ndarray,
             child: np.ndarray, cat_words: np.ndarray, cat_bounds: np.ndarray) -> int:
    """The leaf the row ``x`` reaches from the split ``n`` (a tree's root), by LightGBM's rules."""
    while n >= 0:
        v = float(x[feature[n]])
        if -ZERO <= v <= ZERO:  # LightGBM's row reader keeps only numbers beyond this: the rest read as 0
            v = 0.0
        d = kind[n]
        missing = (d >> 2) & 3  # 0: none, 1: zero, 2: NaN
        if d & 1:  # a category set: a missing or negative code goes right (the code cut toward zero first)
            if np.isnan(v):
                n = child[n, 1]
                continue
            code = np.int64(v)
            if code < 0:
                n = child[n, 1]
                continue
            i = np.int64(threshold[n])
            lo = cat_bounds[i]
            word = code // 32
            if word < cat_bounds[i + 1] - lo and (cat_words[lo + word] >> np.uint32(code % 32)) & np.uint32(1):
                n = child[n, 0]
            else:
                n = child[n, 1]
            continue
        if np.isnan(v) and missing != 2:
            v = 0.0
        if (missing == 1 and -ZERO <= v <= ZERO) or (missing == 2 and np.isnan(v)):
            n = child[n, 0] if d & 2 else child[n, 1]
        elif v <= threshold[n]:
            n = child[n, 0]
        else:
            n = child[n, 1]
    return ~n


def _link(out: np.ndarray, link: int, sigmoid: float) -> None:
    """LightGBM's link on one row's scores, in place (``link`` 1: its sigmoid, 2: its softmax, in its order
    of operations; 0: none)."""
    k = out.shape[0]
    if link == 1:
        out[0] = 1.0 / (1.0 + np.exp(-sigmoid * out[0]))
    elif link == 2:
        top = out[0]
        for c in range(1, k):
            top = max(top, out[c])
        total = 0.0
        for c in range(k):
            out[c] = np.exp(out[c] - top)
            total += out[c]
        for c in range(k):
            out[c] = out[c] / total


def _walk(x: np.ndarray, feature: np.ndarray, threshold: np.ndarray, kind: np.ndarray, child: np.ndarray,
          leaf: np.ndarray, root: np.ndarray, cat_words: np.ndarray, cat_bounds: np.ndarray,
          out: np.ndarray, link: int, sigmoid: float) -> None:
    """Sum each tree's leaf for the row ``x`` into ``out`` (one score per class, trees taking turns), then
    LightGBM's link on it."""
    k = out.shape[0]
    for c in range(k):
        out[c] = 0.0
    for t in range(root.shape[0]):
        out[t % k] += leaf[_DESCEND(x, root[t], feature, threshold, kind, child, cat_words, cat_bounds)]
    _LINK(out, link, sigmoid)


def _walk_rows(X: np.ndarray, lo: int, hi: int, feature: np.ndarray, threshold: np.ndarray, kind: np.ndarray,
               child: np.ndarray, leaf: np.ndarray, root: np.ndarray, cat_words: np.ndarray,
               cat_bounds: np.ndarray, out: np.ndarray, link: int, sigmoid: float, block: int) -> None:
    """``_walk`` for the rows ``lo:hi`` of ``X`` into the same rows of ``out``, a block of rows at a time
    through each tree in turn (a tree's splits stay in the cache for the block's rows: a model of many trees
    is far larger than the cache); each row's sums in the same order as one row's walk, so the same numbers."""
    k = out.shape[1]
    for start in range(lo, hi, block):
        end = min(hi, start + block)
        for i in range(start, end):
            for c in range(k):
                out[i, c] = 0.0
        for t in range(root.shape[0]):
            c, r = t % k, root[t]
            for i in range(start, end):
                out[i, c] += leaf[_DESCEND(X[i], r, feature, threshold, kind, child, cat_words, cat_bounds)]
        for i in range(start, end):
            _LINK(out[i], link, sigmoid)


def _walk_args(p: Packed) -> tuple[tuple[np.ndarray, ...], int, int, float]:
    """The packed trees as the compiled walks take them: the arrays, the outputs, the link's code, sigmoid."""
    arrays = (p.feature, p.threshold, p.kind, p.child, p.leaf, p.root, p.cat_words, p.cat_bounds)
    return arrays, p.outputs, {"identity": 0, "sigmoid": 1, "softmax": 2}[p.link], float(p.sigmoid)


def compiled_row(packed: Packed) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function of one row (1, features) giving LightGBM's prediction: probabilities (binary: of the
    positive class, shape (1,); multiclass: (k,)) or the value (1,); None without numba."""
    walk = _compiled()
    if walk is None:
        return None
    arrays, k, link, sig = _walk_args(packed)

    def row(X: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(X[0], dtype=np.float32)
        out = np.empty(k, dtype=np.float64)
        walk(x, *arrays, out, link, sig)
        return out

    return row


#: rows a block of the many-rows walk takes through each tree (poker hands' 14,000 trees on 20,000 rows, two
#: threads: 4.9 s a row at a time, 3.3 s in blocks of 16, 2.7 s of 256; LightGBM's own batch 5.7 s)
BLOCK = 256
#: rows x trees from which a batch is worth the many-rows walk rather than LightGBM's own prediction
#: (~20 ns a row and tree on 2 cores either way for small models; the walk's first call compiles it, ~1 s,
#: cached on disk where it can)
BATCH_WORK = 10_000_000


def compiled_rows(packed: Packed, threads: int | None = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function of many rows (n, features) giving LightGBM's predictions as ``compiled_row`` does, (n, k)
    (k: 1 for binary and regression, the classes for multiclass), the rows split among ``threads`` (all
    cores by default, or ``OMP_NUM_THREADS`` as LightGBM would: the server sets it per worker) in contiguous
    stretches; None without numba."""
    if _compiled() is None:
        return None
    arrays, k, link, sig = _walk_args(packed)
    workers = max(1, threads or _omp_threads() or os.cpu_count() or 1)

    def rows(X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X if X.dtype in (np.float32, np.float64) else X.astype(np.float64))
        out = np.empty((len(X), k), dtype=np.float64)
        n = len(X)
        parts = min(workers, max(1, n // BLOCK))
        if parts == 1:
            _ROWS(X, 0, n, *arrays, out, link, sig, BLOCK)
            return out
        cuts = np.linspace(0, n, parts + 1).astype(int)
        with ThreadPoolExecutor(max_workers=parts) as pool:  # the walk lets go of the GIL (nogil)
            list(pool.map(lambda j: _ROWS(X, int(cuts[j]), int(cuts[j + 1]), *arrays, out, link, sig, BLOCK),
                          range(parts)))
        return out

    return rows


def _omp_threads() -> int:
    """The first number of ``OMP_NUM_THREADS`` (a list sets nested levels), 0 where unset or unreadable."""
    try:
        return int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        return 0
