"""The audit's checks of the target (missing values, one class, imbalance, rare classes, rows sorted by it,
labels written several ways) and of category values written in several cases.

Labels are the user's answers and are kept as written: ``'Yes '``, ``'yes'`` and ``'Yes'`` are three classes
to training and prediction alike, so the audit says so in one finding naming them. Category values are
already compared stripped (``category_key``), so only case sets them apart.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .findings import Finding, pct
from .schema import FALSE_TOKENS, TRUE_TOKENS, ColumnRole, Schema, category_key

__all__ = ["case_variant_findings", "class_count_findings", "label_variant_findings", "missing_target_findings",
           "orderable", "sorted_findings", "target_findings", "target_identifier_finding", "text_variants"]

#: variant groups a finding names, at most
_SHOWN = 4


def text_variants(values: Iterable[object], *, strip: bool = True, yes_no: bool = False) -> list[list[str]]:
    """Groups of distinct texts among ``values`` that differ only in case (and, with ``strip``, surrounding
    spaces; with ``yes_no``, that write the same yes or no answer: 'yes', 'Y', 'true'), each sorted, largest
    group first."""
    groups: dict[str, list[str]] = {}
    for v in values:
        if isinstance(v, str):
            key = (v.strip() if strip else v).casefold()
            if yes_no:
                key = "\0yes" if key in TRUE_TOKENS else "\0no" if key in FALSE_TOKENS else key
            groups.setdefault(key, []).append(v)
    found = [sorted(set(g)) for g in groups.values() if len(set(g)) > 1]
    return sorted(found, key=lambda g: (-len(g), g))


def _listed(groups: list[list[str]], counts: pd.Series | None = None) -> str:
    def one(v: str) -> str:
        return f"{v!r} ({int(counts[v]):,})" if counts is not None and v in counts.index else repr(v)

    shown = "; ".join(", ".join(one(v) for v in g) for g in groups[:_SHOWN])
    return shown + (f"; and {len(groups) - _SHOWN} more groups" if len(groups) > _SHOWN else "")


def _label_variants(y: pd.Series, target: str) -> list[Finding]:
    return label_variant_findings(y.dropna().value_counts(), target)


def label_variant_findings(counts: pd.Series, target: str) -> list[Finding]:
    """The warning for labels written several ways, from the rows of each label as written (``counts``,
    indexed by label): the Spark audit counts them on every row and words it the same."""
    groups = text_variants(counts.index, yes_no=True)
    if not groups:
        return []
    answers = any(len({v.strip().casefold() for v in g}) > 1 for g in groups)  # 'yes' and 'Y', not 'Yes '
    how = ("differ only in case or surrounding spaces, or write the same yes or no answer several ways ('yes', "
           "'Y', 'true'), are" if answers else "differ only in case or surrounding spaces are")
    return [Finding(
        check="label_variants", severity="warning", column=target, value=float(len(groups)),
        message=f"labels that {how} separate classes (rows of each): {_listed(groups, counts)}.",
        suggestion=f"Write each class of {target!r} one way in the data (trim the spaces, one case"
        f"{', one word for yes and one for no' if answers else ''}); a model learns and predicts each spelling "
        "as its own class.",
    )]


def case_variant_findings(df: pd.DataFrame, schema: Schema) -> list[Finding]:
    """A warning per categorical feature holding values that differ only in case ('Red', 'red'): separate
    categories to a model (surrounding spaces are not: category keys are stripped)."""
    out = []
    for col in schema.columns:
        if col.role != ColumnRole.categorical or col.name == schema.target or col.name not in df.columns:
            continue
        s = df[col.name]
        if s.dtype != object and not isinstance(s.dtype, pd.StringDtype):
            continue
        groups = text_variants({category_key(v) for v in pd.unique(s.dropna())}, strip=False)
        if groups:
            out.append(Finding(
                check="case_variants", severity="warning", column=col.name, value=float(len(groups)),
                message=f"holds values that differ only in case, read as separate categories: {_listed(groups)}.",
                suggestion="Write each value one way in the data if they mean the same.",
            ))
    return out


def target_findings(y: pd.Series, task_kind: str | None, target: str) -> list[Finding]:
    """Findings about the target column ``y``: its missing values and, for classes, their balance."""
    out = missing_target_findings(int(y.isna().sum()), target)
    if task_kind in ("binary", "multiclass"):
        out += _label_variants(y, target)
        out += _class_checks(y, target)
    return out


def missing_target_findings(missing: int, target: str) -> list[Finding]:
    """The warning for ``missing`` rows without a target value (none when there are none)."""
    if not missing:
        return []
    return [Finding(
        check="missing_target", severity="warning", column=target, action="drop_rows", value=float(missing),
        message=f"{missing:,} rows have no target value; they are left out of training.",
        suggestion="Predict them with the trained model if they are the rows you need answers for.",
    )]


def target_identifier_finding(target: str, n_classes: int, filled: int) -> Finding:
    """The error for a class target of about one class a row (an identifier, or numbers meant as amounts)."""
    return Finding(
        check="target_identifier", severity="error", column=target, value=float(n_classes),
        message=f"holds {n_classes:,} distinct values in {filled:,} labelled rows: too few rows a class for a "
        "classifier to learn from.",
        suggestion="If it holds numbers, use --task regression; if it is an identifier, choose another target.",
    )


def class_count_findings(counts: pd.Series, target: str, *, one_value: bool) -> list[Finding]:
    """The findings the rows of each class tell (``counts``, by class, most first): one class (an error where
    every labelled row holds ``one_value`` as written), about one class a row, imbalance, rare classes. The
    in-memory and the Spark audits both word them here."""
    out = []
    if len(counts) == 1 and one_value:
        out.append(Finding(
            check="single_class", severity="error", column=target, value=1.0,
            message=f"holds one value ({counts.index[0]!r}) in every labelled row: there is nothing to predict.",
            suggestion="Choose another target column, or add rows of the other classes.",
        ))
    filled = int(counts.sum())
    if len(counts) >= 20 and len(counts) > 0.5 * filled:
        out.append(target_identifier_finding(target, len(counts), filled))
    if len(counts) < 2:
        return out
    ratio = counts.iloc[-1] / counts.iloc[0]
    if ratio < 0.1:
        out.append(Finding(
            check="class_imbalance", severity="warning", column=target, value=float(ratio),
            message=f"the rarest class ({counts.index[-1]!r}) has {counts.iloc[-1]:,} rows, "
            f"{pct(ratio)} of the most common.",
            suggestion="Judge models by roc_auc, log_loss or balanced_accuracy rather than accuracy.",
        ))
    rare = counts[counts < 10]
    if len(rare):
        out.append(Finding(
            check="rare_classes", severity="warning", column=target, value=float(len(rare)),
            message=f"{len(rare)} classes have fewer than 10 rows "
            f"({', '.join(f'{k!r}: {v}' for k, v in rare.iloc[:5].items())}).",
            suggestion="Merge rare classes or collect more rows for them; a model cannot learn a class "
            "from a handful of rows.",
        ))
    return out


def _class_checks(y: pd.Series, target: str) -> list[Finding]:
    # labels by category key (3 and "3" are one class), computed once per distinct value
    codes, uniques = pd.factorize(y, use_na_sentinel=True)
    ids: dict[str, int] = {}
    remap = np.array([ids.setdefault(k, len(ids)) if (k := category_key(u)) is not None else -1
                      for u in uniques] + [-1], dtype=np.int64)
    label = remap[np.where(codes >= 0, codes, len(uniques))]
    filled = label[label >= 0]
    names = list(ids)
    counts = pd.Series(np.bincount(filled, minlength=len(names)), index=names).sort_values(
        ascending=False, kind="stable")
    out = class_count_findings(counts, target, one_value=y.dropna().nunique() == 1)
    if orderable(len(counts), len(filled)):
        out += sorted_findings(int((filled[1:] != filled[:-1]).sum()) + 1, len(counts), target)
    return out


def orderable(n_classes: int, n_labelled: int) -> bool:
    """Whether rows of these many classes can be said to be sorted (classes of one row each form no blocks)."""
    return n_classes >= 2 and n_labelled >= max(20, 2 * n_classes)


def sorted_findings(runs: int, n_classes: int, target: str) -> list[Finding]:
    """The finding that the rows come sorted by the target, when their labelled rows (missing labels passed
    over) form ``runs`` runs of one class, one a class."""
    if runs != n_classes:
        return []
    return [Finding(
        check="sorted_by_target", severity="info", column=target,
        message="the rows are sorted by the target (each class in one block).",
        suggestion="Splits are shuffled, so training is unaffected; a time-ordered split on this file would not be.",
    )]
