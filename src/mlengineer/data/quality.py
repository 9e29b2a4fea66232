"""The data audit: findings about a training table, each with a severity and a suggested fix.

``audit`` runs every check: duplicate rows (and duplicates that disagree on the target), duplicate columns,
columns mostly missing, constant and near-constant columns, identifiers, high-cardinality categories,
placeholders read as missing, mixed types in one column, outliers and placeholder numbers, the target's
missing values, rare classes and class imbalance, rows sorted by the target, target leakage
(``leakage.py``), and picture files that are missing or unreadable or text columns of numbers
(``unstructured.py``). Checks that cost more than a pass over a column run on a sample of rows, so the audit
stays a small part of a training run's time budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._hashing import column_fingerprint, frame_row_fingerprints, hashable_frame, row_fingerprints
from .findings import SEVERITY_ORDER, Finding, Severity, num, pct, renamed_column_findings
from .images import image_root, table_folder
from .leakage import detect_leakage
from .schema import NUMERIC_SHARE, Column, ColumnRole, Schema, category_key, numbers_from_text
from .targets import case_variant_findings, target_findings
from .unstructured import unstructured_findings

__all__ = ["Finding", "Severity", "audit", "pct", "sort_findings"]

SAMPLE_ROWS = 20_000
NEAR_CONSTANT = 0.99
MOSTLY_MISSING = 0.5


def audit(df: pd.DataFrame, schema: Schema, *, task_kind: str | None = None, leakage: bool = True,
          seed: int = 0) -> list[Finding]:
    """Every check on ``df`` (the table ``schema`` was inferred from), most severe first."""
    # huge or infinite values in the data are its business, not a warning; picture paths are relative to
    # the table's folder
    with np.errstate(all="ignore"), image_root(table_folder(df)):
        return _audit(hashable_frame(df), schema, task_kind=task_kind, leakage=leakage, seed=seed)


def _audit(df: pd.DataFrame, schema: Schema, *, task_kind: str | None = None, leakage: bool = True,
          seed: int = 0) -> list[Finding]:
    """Every check on ``df`` (the table ``schema`` was inferred from), most severe first."""
    findings: list[Finding] = []
    if len(df) == 0:
        return findings
    target = schema.target
    findings += renamed_column_findings(dict(df.attrs.get("source") or {}))
    findings += _duplicate_rows(df, target, task_kind)
    findings += _duplicate_columns(df, schema, seed=seed)
    findings += _column_checks(df, schema)
    findings += case_variant_findings(df, schema)
    findings += unstructured_findings(df, schema)
    findings += _outliers(df, schema)
    if target is not None and target in df.columns:
        findings += target_findings(df[target], task_kind, target)
        if leakage and task_kind is not None:
            findings += detect_leakage(df, schema, task_kind=task_kind, seed=seed)
    if len(df) < 100:
        findings.append(Finding(
            check="few_rows", severity="warning", value=float(len(df)),
            message=f"only {len(df)} rows: validation scores on so few rows are rough.",
            suggestion="Collect more rows if you can; prefer cross-validation over one holdout.",
        ))
    return sort_findings(findings)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: -SEVERITY_ORDER[f.severity])


# -- rows ----------------------------------------------------------------------------------------------------
def _duplicate_rows(df: pd.DataFrame, target: str | None, task_kind: str | None) -> list[Finding]:
    n = len(df)
    out = []
    features = [c for c in df.columns if c != target]
    feature_rows = frame_row_fingerprints(df, features)
    has_target = target is not None and target in df.columns
    y_hash = column_fingerprint(df[target]) if has_target else None
    rows = row_fingerprints([feature_rows, y_hash], n) if y_hash is not None else feature_rows
    dup = int(pd.Series(rows).duplicated().sum())
    if dup:
        out.append(Finding(
            check="duplicate_rows", severity="warning" if dup / n > 0.05 else "info", value=float(dup),
            message=f"{dup:,} rows ({pct(dup / n)}) repeat an earlier row exactly.",
            suggestion="Check whether they are real repeats; copies of a row on both sides of a validation "
            "split make the score look better than it is.",
        ))
    if y_hash is not None and features and task_kind in ("binary", "multiclass"):
        labelled = df[target].notna().to_numpy()
        frame = pd.DataFrame({"x": feature_rows[labelled], "y": y_hash[labelled]})
        per_row = frame.groupby("x")["y"].nunique()
        conflicting = per_row[per_row > 1]
        if len(conflicting):
            rows_hit = int(frame["x"].isin(conflicting.index).sum())
            out.append(Finding(
                check="conflicting_labels", severity="warning" if rows_hit / n > 0.01 else "info",
                value=float(rows_hit),
                message=f"{rows_hit:,} rows share all their feature values with a row whose target differs "
                f"({len(conflicting):,} such groups): no model can tell them apart.",
                suggestion="Check for labelling mistakes, or a feature that is missing from the table.",
            ))
    return out


# -- columns -------------------------------------------------------------------------------------------------
def _duplicate_columns(df: pd.DataFrame, schema: Schema, *, seed: int) -> list[Finding]:
    """Columns that repeat another column, value for value or one-to-one under other names."""
    names = [c.name for c in schema.columns if c.name != schema.target and c.role != ColumnRole.constant
             and c.name in df.columns]
    if len(names) < 2:
        return []
    sample = df[names] if len(df) <= SAMPLE_ROWS else df[names].sample(SAMPLE_ROWS, random_state=seed)
    signature: dict[bytes, str] = {}
    candidates: list[tuple[str, str, bool]] = []
    for name in names:
        # few distinct values: codes in order of first appearance, so a relabelled copy has the same codes;
        # many (every number different): only the values themselves, or any two such columns would match
        codes, n_unique = _first_appearance_codes(sample[name])
        relabel = n_unique <= 0.5 * len(sample)
        key = (b"c" + codes.astype(np.int32).tobytes() if relabel
               else b"v" + column_fingerprint(sample[name]).tobytes())
        if key in signature:
            candidates.append((name, signature[key], relabel))
        else:
            signature[key] = name
    out = []
    for name, first, relabel in candidates:  # confirm on every row
        if relabel:
            a, _ = pd.factorize(df[name], use_na_sentinel=True)
            b, _ = pd.factorize(df[first], use_na_sentinel=True)
            if not np.array_equal(a, b):
                continue
        elif not df[name].equals(df[first]):
            continue
        same = not relabel or bool(df[name].equals(df[first]))
        out.append(Finding(
            check="duplicate_columns", severity="warning", column=name, value=None,
            message=f"repeats {first!r} " + ("value for value." if same else "one to one under other names (a "
                                             "relabelled copy)."),
            suggestion=f"Drop one of them with --drop {name}; a copy adds nothing and splits importance in two.",
        ))
    return out


def _first_appearance_codes(s: pd.Series) -> tuple[np.ndarray, int]:
    """Codes numbering the distinct values in the order they first appear, and how many there are."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        x = s.to_numpy(dtype=float, na_value=np.nan)
        _, first, inverse = np.unique(x, return_index=True, return_inverse=True, equal_nan=True)
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        return rank[inverse.ravel()], len(first)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return codes.astype(np.int64), len(uniques) + int((codes < 0).any())


def _column_checks(df: pd.DataFrame, schema: Schema) -> list[Finding]:
    out = []
    n = len(df)
    for col in schema.columns:
        if col.name == schema.target or col.name not in df.columns:
            continue
        if col.role == ColumnRole.identifier:
            out.append(Finding(
                check="identifier", severity="info", column=col.name, action="drop_column",
                message=f"looks like an identifier ({col.reason}); not used as a feature.",
                suggestion=f"Use --column-role {col.name}=numeric (or =categorical) if it carries meaning.",
            ))
            continue
        if col.role == ColumnRole.constant:
            out.append(Finding(
                check="constant", severity="info", column=col.name, action="drop_column",
                message=f"is constant ({col.reason}); not used as a feature.",
            ))
            continue
        if col.missing_fraction >= MOSTLY_MISSING:
            out.append(Finding(
                check="mostly_missing", severity="warning", column=col.name, value=col.missing_fraction,
                message=f"is missing in {pct(col.missing_fraction)} of rows.",
                suggestion=f"Whether it is filled is kept as a signal; drop it with --drop {col.name} if that "
                "means nothing.",
            ))
        if col.missing_tokens:
            shown = ", ".join(repr(t) for t in col.missing_tokens[:4])
            out.append(Finding(
                check="missing_placeholders", severity="info", column=col.name, value=float(col.n_missing_tokens),
                message=f"holds {shown} in {col.n_missing_tokens:,} rows; read as missing values.",
                suggestion="Leave such cells empty at the source to make this explicit.",
            ))
        top = _top_share(df[col.name], col) if col.n_unique > 1 else None  # one value or empty: a flag
        if top is not None and top[1] >= (0.999 if col.role == ColumnRole.boolean else NEAR_CONSTANT):
            out.append(Finding(
                check="near_constant", severity="info", column=col.name, value=top[1],
                message=f"is nearly constant: {_show(top[0])} in {pct(top[1])} of filled rows.",
                suggestion=f"It can only help on the few other rows; drop it with --drop {col.name} if those are "
                "noise.",
            ))
        if col.role == ColumnRole.categorical and col.n_unique > max(50, 0.2 * n):
            out.append(Finding(
                check="high_cardinality", severity="info" if col.n_unique < 0.5 * n else "warning",
                column=col.name, value=float(col.n_unique),
                message=f"is categorical with {col.n_unique:,} distinct values; values seen once share one code.",
                suggestion="If it is an identifier or free text, say so with --column-role "
                f"{col.name}=identifier (or =text).",
            ))
        out += _mixed_types(df[col.name], col)
    return out


def _top_share(s: pd.Series, col: Column) -> tuple[object, float] | None:
    """The most common filled value and its share of the filled rows (judged on a sample for numbers)."""
    if col.categories and col.frequencies:
        return col.categories[0], col.frequencies[0]
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return _top_share_numbers(s)
    filled = s.dropna()
    if len(filled) < 20:
        return None
    sample = filled if len(filled) <= SAMPLE_ROWS else filled.sample(SAMPLE_ROWS, random_state=0)
    try:
        counts = sample.value_counts()
    except TypeError:
        return None
    share = float(counts.iloc[0] / len(sample))
    if share >= NEAR_CONSTANT and len(sample) < len(filled):
        share = float((filled == counts.index[0]).mean())
    return counts.index[0], share


def _top_share_numbers(s: pd.Series) -> tuple[object, float] | None:
    x = s.to_numpy(dtype=float, na_value=np.nan)
    x = x[~np.isnan(x)]
    if len(x) < 20:
        return None
    if len(x) > SAMPLE_ROWS:
        x = np.random.default_rng(0).choice(x, SAMPLE_ROWS, replace=False)
    values, counts = np.unique(x, return_counts=True)
    top = int(counts.argmax())
    share = float(counts[top] / len(x))
    if share >= NEAR_CONSTANT and len(x) < s.notna().sum():
        share = float((s == values[top]).sum() / s.notna().sum())
    return values[top], share


def _mixed_types(s: pd.Series, col: Column) -> list[Finding]:
    """Numbers and text in one column, or cells of several Python types (from JSON or a DataFrame)."""
    frac = col.numeric_fraction
    if frac is None:
        return []
    out = []
    if col.role == ColumnRole.numeric and frac < 1.0:
        filled = s.dropna()
        bad = filled[numbers_from_text(filled).isna().to_numpy()]  # as the plan reads them: "$3,007" is a number
        bad = bad[~bad.astype(str).isin(col.missing_tokens or [])]
        if len(bad):
            examples = ", ".join(repr(v) for v in pd.unique(bad.astype(str))[:3])
            out.append(Finding(
                check="mixed_types", severity="warning", column=col.name, value=float(len(bad)),
                message=f"holds numbers, but {len(bad):,} rows hold text ({examples}); those are read as missing.",
                suggestion="Fix those cells at the source, or leave them empty.",
            ))
    elif col.role == ColumnRole.categorical and 0.05 <= frac < NUMERIC_SHARE:  # (free text: data/unstructured.py)
        filled = s.dropna()
        text = filled[pd.to_numeric(filled.astype(str).str.strip(), errors="coerce").isna()]
        distinct = pd.unique(text.astype(str))
        examples = ", ".join(repr(v) for v in distinct[:3])
        # a handful of labels among a few numbers ("2, 3, 4, 5more") is a category; many is a mess
        few = len(distinct) <= 3 and col.n_unique <= 20
        out.append(Finding(
            check="mixed_types", severity="info" if few else "warning", column=col.name, value=frac,
            message=f"mixes numbers ({pct(frac)} of filled rows) and text ({examples}); it is used as categories.",
            suggestion=f"If it should hold numbers, fix the text cells; then --column-role {col.name}=numeric.",
        ))
    elif s.dtype == object:
        probe = s.dropna().iloc[:5000]
        kinds = {type(v).__name__ for v in probe if category_key(v) is not None}
        if len(kinds - {"str"}) and "str" in kinds and col.role == ColumnRole.categorical:
            out.append(Finding(
                check="mixed_types", severity="info", column=col.name,
                message=f"holds values of several types ({', '.join(sorted(kinds))}); 3, 3.0 and '3' are read "
                "as one category.",
            ))
    return out


# -- numbers -------------------------------------------------------------------------------------------------
_SENTINELS = {0.0, -1.0, -9.0, -99.0, -999.0, -9999.0, -99999.0, 99.0, 999.0, 9999.0, 99999.0, 999999.0,
              9999999.0}
MAX_OUTLIER_SHARE = 0.01  # beyond this share, far values are the distribution's long tail, not outliers


def _outliers(df: pd.DataFrame, schema: Schema) -> list[Finding]:
    """Values far outside the bulk of a numeric column (3 interquartile ranges beyond the quartiles), and
    placeholder numbers such as -999 or 0 that stand, isolated and repeated, for missing values."""
    out = []
    for col in schema.columns:
        if col.role != ColumnRole.numeric or col.name == schema.target or col.name not in df.columns:
            continue
        s = df[col.name]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        x = s.to_numpy(dtype=float, na_value=np.nan)
        x = x[np.isfinite(x)]
        if len(x) < 50:
            continue
        q1, q3 = np.quantile(x, [0.25, 0.75])
        iqr = q3 - q1
        if iqr <= 0:
            continue
        low, high = q1 - 3 * iqr, q3 + 3 * iqr
        outside = (x < low) | (x > high)
        n_out = int(outside.sum())
        if not n_out:
            continue
        placeholder = _placeholder(x, outside, iqr)
        if placeholder is not None:
            v, count = placeholder
            out.append(Finding(
                check="placeholder_number", severity="warning", column=col.name, value=float(count),
                message=f"holds {_show(v)} in {count:,} rows, far from all its other values: probably a code "
                "for a missing value.",
                suggestion=f"Replace {_show(v)} with an empty cell at the source, so it is read as missing.",
            ))
            continue
        share = n_out / len(x)
        # beyond 3 IQR a normal distribution still leaves about 5 values in a million: those are no news
        if share > MAX_OUTLIER_SHARE or n_out <= 5e-6 * len(x):
            continue
        extreme = x[outside][np.abs(x[outside] - np.median(x)).argmax()]
        out.append(Finding(
            check="outliers", severity="info", column=col.name, value=float(n_out),
            message=f"{n_out:,} value{'s' if n_out > 1 else ''} ({pct(share)}) {'lie' if n_out > 1 else 'lies'} far "
            "outside the bulk "
            f"({num(q1)} to {num(q3)}); the most extreme is {num(extreme)}.",
            suggestion="Tree models are unaffected; check that they are real and not unit or typing errors.",
        ))
    return out


def _placeholder(x: np.ndarray, outside: np.ndarray, iqr: float) -> tuple[float, int] | None:
    """A round value (-999, 0, 9999, ...) repeated far outside the bulk with no other value near it."""
    values, counts = np.unique(x[outside], return_counts=True)
    top = int(counts.argmax())
    v, count = float(values[top]), int(counts[top])
    if v not in _SENTINELS or count < 3:
        return None
    others = x[x != v]
    gap = float(np.min(np.abs(others - v))) if len(others) else 0.0
    return (v, count) if gap > 3 * iqr else None


def _show(v: object) -> str:
    """A value as a user wrote it: 0 rather than np.float64(0.0)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v) if isinstance(v, str) else str(v)
