"""The data audit: findings about a training table, each with a severity and a suggested fix."""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import BaseModel

from .schema import ColumnRole, Schema

__all__ = ["Finding", "audit"]

Severity = Literal["info", "warning", "error"]


class Finding(BaseModel):
    """One thing the audit noticed. ``action`` is what the cleaning plan does about it, if anything."""

    check: str
    severity: Severity
    column: str | None = None
    message: str
    suggestion: str = ""
    action: Literal["none", "drop_column", "drop_rows"] = "none"
    value: float | None = None

    def line(self) -> str:
        where = f"[{self.column}] " if self.column else ""
        return f"{self.severity}: {where}{self.message}"


def audit(df: pd.DataFrame, schema: Schema, *, task_kind: str | None = None) -> list[Finding]:
    """Every check on ``df``; leakage checks live in ``leakage.py`` and are added by the caller."""
    findings: list[Finding] = []
    n = len(df)
    target = schema.target
    if n == 0:
        return findings
    dup = int(df.duplicated().sum())
    if dup:
        findings.append(Finding(
            check="duplicate_rows", severity="warning" if dup / n > 0.05 else "info", value=dup,
            message=f"{dup} rows ({dup / n:.1%}) repeat an earlier row exactly.",
            suggestion="Check whether they are real repeats; they can make validation look better than it is.",
        ))
    for col in schema.columns:
        if col.name == target:
            continue
        if col.role == ColumnRole.identifier:
            findings.append(Finding(
                check="identifier", severity="info", column=col.name, action="drop_column",
                message=f"looks like an identifier ({col.reason}); not used as a feature.",
                suggestion=f"Use --column-role {col.name}=numeric if it carries meaning.",
            ))
        elif col.role == ColumnRole.constant:
            findings.append(Finding(
                check="constant", severity="info", column=col.name, action="drop_column",
                message=f"is constant ({col.reason}); not used as a feature.",
            ))
        elif col.missing_fraction >= 0.5:
            findings.append(Finding(
                check="mostly_missing", severity="warning", column=col.name, value=col.missing_fraction,
                message=f"is missing in {col.missing_fraction:.0%} of rows.",
                suggestion="Missingness is kept as a signal; drop the column with --drop if it is not meaningful.",
            ))
        if col.role == ColumnRole.categorical and col.n_unique > max(50, 0.2 * n):
            findings.append(Finding(
                check="high_cardinality", severity="info", column=col.name, value=col.n_unique,
                message=f"is categorical with {col.n_unique} distinct values; rare ones are grouped.",
            ))
    if target is not None:
        y = df[target]
        missing = int(y.isna().sum())
        if missing:
            findings.append(Finding(
                check="missing_target", severity="warning", column=target, action="drop_rows", value=missing,
                message=f"{missing} rows have no target value; they are left out of training.",
            ))
        if task_kind in ("binary", "multiclass"):
            counts = y.value_counts()
            if len(counts) >= 2:
                ratio = counts.iloc[-1] / counts.iloc[0]
                if ratio < 0.1:
                    findings.append(Finding(
                        check="class_imbalance", severity="warning", column=target, value=float(ratio),
                        message=f"the rarest class ({counts.index[-1]!r}) has {counts.iloc[-1]} rows, "
                        f"{ratio:.1%} of the most common.",
                        suggestion="Prefer roc_auc, log_loss or balanced_accuracy over accuracy.",
                    ))
                rare = counts[counts < 10]
                if len(rare):
                    findings.append(Finding(
                        check="rare_classes", severity="warning", column=target, value=float(len(rare)),
                        message=f"{len(rare)} classes have fewer than 10 rows ({', '.join(map(str, rare.index[:5]))}).",
                        suggestion="Merge rare classes or collect more rows for them.",
                    ))
    return findings

