"""Target leakage: columns that hold the answer rather than evidence for it.

A strong feature and a leak can both predict the target well; what sets a leak apart is that the relation
is *deterministic* and comes from the target itself. The checks below look for exactly that, on a sample of
labelled rows, and each one names what it saw:

- **copy**: the column equals the target in most rows (a regression target's exact values do not recur
  in another column by chance).
- **near-perfect predictor**: on rows it did not learn from, the column alone gets at most 1% of the errors
  that always answering the most common class gets (classification), or explains at least 98% of the
  target's variance (regression). Real features stop well short of this: in the benchmark suite the
  strongest, ``odor`` in the mushroom data, still leaves 3% of the baseline errors, and no regression
  feature explains more than 76%. A relabelled target ("yes" spelled "subscribed") or the target plus a
  little noise lands here.
- **target bands**: a column of a few values whose groups cover disjoint ranges of a numeric target (a
  price band cut from the price).
- **filled only for one outcome**: whether the column is filled at all tells the class with certainty,
  over more rows than chance allows (a cancellation reason present only for customers who left). Only
  missingness counts here: a *value* that occurs with one class only is how strong features look.
- **filled only when the target is known**: the column is empty in every row whose target is missing and
  filled where it is present (an outcome date recorded with the outcome).

A finding with severity "error" makes the cleaning plan drop the column unless the user keeps it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .findings import Finding
from .relation import (
    Halves,
    Skill,
    column_as_codes,
    column_as_numbers,
    column_skill,
    encode_target,
    halves,
    target_known,
)
from .schema import ColumnRole, Schema

__all__ = ["LEAKAGE_CHECKS", "detect_leakage"]

LEAKAGE_CHECKS = ("leakage_copy", "leakage_predictor", "leakage_bands", "leakage_filled_for_outcome",
                  "leakage_filled_when_known")
SAMPLE_ROWS = 20_000
CLASS_ERROR_RATIO = 0.01  # at most this share of the baseline's errors
REGRESSION_R2 = 0.98
MIN_BASELINE_ERRORS = 100  # fewer than this: too few rows to tell a perfect predictor from a strong one
CHANCE = 1e-9  # how unlikely under independence a missingness pattern must be to count as leakage
_SKIP_ROLES = (ColumnRole.identifier, ColumnRole.constant, ColumnRole.ignore)


def _suggest(name: str) -> str:
    return (f"Check how {name!r} is recorded: if it is known only once the outcome is, leave it out "
            f"(it is dropped); if it is a genuine input, keep it with --keep {name}.")


def _finding(check: str, name: str, message: str, *, severity: str = "error", value: float | None = None) -> Finding:
    return Finding(check=check, severity=severity, column=name, value=value, message=message,  # type: ignore[arg-type]
                   suggestion=_suggest(name), action="drop_column" if severity == "error" else "none")


def detect_leakage(df: pd.DataFrame, schema: Schema, *, task_kind: str, sample_rows: int = SAMPLE_ROWS,
                   seed: int = 0) -> list[Finding]:
    """Leakage findings for every feature column of ``df`` against ``schema.target``."""
    target = schema.target
    if target is None or target not in df.columns or task_kind not in ("binary", "multiclass", "regression"):
        return []
    columns = [c for c in schema.columns if c.name != target and c.role not in _SKIP_ROLES and c.name in df.columns]
    findings = _filled_when_known(df, target, [c.name for c in columns])
    flagged = {f.column for f in findings}
    labelled = df[df[target].notna()]
    if len(labelled) > sample_rows:
        labelled = labelled.sample(sample_rows, random_state=seed)
    labelled = labelled.reset_index(drop=True)
    y = encode_target(labelled[target], task_kind)
    keep = target_known(y, task_kind)
    if keep.sum() < 20:
        return findings
    labelled, y = labelled[keep].reset_index(drop=True), y[keep]
    if task_kind != "regression" and len(np.unique(y)) < 2:
        return findings
    if task_kind == "regression" and np.nanstd(y) == 0:
        return findings
    h = halves(y, task_kind, seed=seed)
    for col in columns:
        if col.name in flagged:
            continue
        s = labelled[col.name]
        if s.isna().all():
            continue
        finding = (_copy(s, y, col.role, col.name, task_kind)
                   or _predictor(s, y, col.role, col.name, task_kind, h)
                   or _filled_for_outcome(s, y, col.name, task_kind, labelled[target])
                   or (_bands(s, y, col.role, col.name) if task_kind == "regression" else None))
        if finding is not None:
            findings.append(finding)
    return findings


def _copy(s: pd.Series, y: np.ndarray, role: ColumnRole, name: str, kind: str) -> Finding | None:
    if kind != "regression" or len(np.unique(y)) < 20:
        return None  # equal class labels are the predictor check's business
    x = column_as_numbers(s, role)
    if x is None:
        return None
    both = np.isfinite(x) & np.isfinite(y)
    if both.sum() < 20:
        return None
    same = float(np.mean(np.isclose(x[both], y[both], rtol=1e-9, atol=0.0)))
    if same >= 0.5:
        return _finding("leakage_copy", name, f"equals the target in {same:.0%} of rows: a copy of the target.",
                        value=same)
    return None


def _predictor(s: pd.Series, y: np.ndarray, role: ColumnRole, name: str, kind: str, h: Halves) -> Finding | None:
    skill: Skill = column_skill(s, y, kind, h, role=role, refine_above=0.9)
    if kind == "regression":
        if skill.score < REGRESSION_R2:
            return None
        x = column_as_numbers(s, role)
        rho = _spearman(x, y) if x is not None else None
        how = (f"a transform of the target (rank correlation {rho:.3f})" if rho is not None and abs(rho) >= 0.995
               else "almost a function of the target")
        return _finding("leakage_predictor", name,
                        f"explains {skill.score:.1%} of the target's variance on its own, on rows it did not "
                        f"learn from: {how}.", value=skill.score)
    if skill.baseline_errors == 0 or skill.errors > CLASS_ERROR_RATIO * skill.baseline_errors:
        return None
    accuracy = 1 - skill.errors / max(skill.n, 1)
    baseline = 1 - skill.baseline_errors / max(skill.n, 1)
    relabel = _is_relabelling(s, y)
    how = "the target under other names (one value per class)" if relabel else "near-perfect on its own"
    if skill.baseline_errors < MIN_BASELINE_ERRORS:
        if skill.errors or skill.baseline_errors < 20:
            return None
        return _finding("leakage_predictor", name,
                        f"predicts the target without error on its own ({how}), on {skill.n} rows: too few to "
                        "be sure, but look at it.", severity="warning", value=skill.score)
    return _finding("leakage_predictor", name,
                    f"predicts the target with {accuracy:.1%} accuracy on its own, on rows it did not learn "
                    f"from (the most common class alone: {baseline:.1%}): {how}.", value=skill.score)


def _is_relabelling(s: pd.Series, y: np.ndarray) -> bool:
    codes = column_as_codes(s)
    pairs = pd.DataFrame({"x": codes, "y": y}).drop_duplicates()
    return bool(pairs["x"].is_unique and pairs["y"].is_unique)


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    both = np.isfinite(x) & np.isfinite(y)
    if both.sum() < 20:
        return None
    rx = pd.Series(x[both]).rank().to_numpy()
    ry = pd.Series(y[both]).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _filled_for_outcome(s: pd.Series, y: np.ndarray, name: str, kind: str, labels: pd.Series) -> Finding | None:
    """Filled (or empty) only in rows of one class, over more rows than chance allows."""
    if kind == "regression":
        return None
    filled = s.notna().to_numpy()
    n_filled = int(filled.sum())
    if n_filled == 0 or n_filled == len(s):
        return None
    freq = np.bincount(y) / len(y)
    for side, mask in (("filled", filled), ("empty", ~filled)):
        classes = np.unique(y[mask])
        if len(classes) != 1:
            continue
        c = int(classes[0])
        n_side = int(mask.sum())
        # the chance that n_side rows picked at random all have class c
        if n_side * math.log(max(freq[c], 1e-12)) > math.log(CHANCE):
            continue
        if len(np.unique(y[~mask])) < 2 and side == "empty":
            continue  # reported from the filled side
        label = labels[mask].iloc[0]
        return _finding("leakage_filled_for_outcome", name,
                        f"is {side} only in rows whose target is {label!r} ({n_side} rows): whether it is filled "
                        "gives the answer away.", value=float(n_side))
    return None


def _bands(s: pd.Series, y: np.ndarray, role: ColumnRole, name: str) -> Finding | None:
    """A few groups (values, or filled/empty) that cover disjoint ranges of the target."""
    x = column_as_numbers(s, role)
    if x is not None and len(np.unique(x[np.isfinite(x)])) > 20:
        codes = np.isnan(x).astype(np.int64)  # many numbers: only filled versus empty can form bands
    else:
        codes = column_as_codes(s)
    sizes_all = np.bincount(codes)
    present = np.flatnonzero(sizes_all)
    if not 2 <= len(present) <= 20 or sizes_all[present].min() < 5:
        return None
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes_all[present])[:-1]])
    lows = np.minimum.reduceat(y[order], starts)
    highs = np.maximum.reduceat(y[order], starts)
    by_low = np.argsort(lows, kind="stable")
    if not (highs[by_low][:-1] < lows[by_low][1:]).all():
        return None
    sizes = sizes_all[present][by_low]
    # the chance that two neighbouring groups split the target's order this cleanly
    chance = min(-_log_comb(int(a + b), int(a)) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    if chance > math.log(CHANCE):
        return None
    return _finding("leakage_bands", name,
                    f"splits the target into {len(present)} bands that do not overlap: it was cut from the target.",
                    value=float(len(present)))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _filled_when_known(df: pd.DataFrame, target: str, names: list[str]) -> list[Finding]:
    """Columns empty in every row whose target is missing, while filled where it is present."""
    unknown = df[target].isna().to_numpy()
    n_unknown = int(unknown.sum())
    if n_unknown < 5 or n_unknown == len(df):
        return []
    out = []
    for name in names:
        filled = df[name].notna().to_numpy()
        if filled[unknown].any():
            continue
        share = float(filled[~unknown].mean())
        # the chance that all unlabelled rows are empty if emptiness had nothing to do with the label
        if share < 0.5 or n_unknown * math.log(max(1 - share, 1e-12)) > math.log(CHANCE):
            continue
        out.append(_finding(
            "leakage_filled_when_known", name,
            f"is empty in all {n_unknown} rows without a target and filled in {share:.0%} of the others: it is "
            "recorded with the outcome.", value=share,
        ))
    return out
