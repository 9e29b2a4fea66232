"""The profile of a table: per column statistics, missingness, cardinality, distribution and relation to the
target, as one pydantic object that the terminal summary and the HTML page both render.

Statistics that need every row (counts, missingness, quantiles, distinct values) use every row; the
relation to the target and the distribution of dates and text use a sample, so a profile of a million rows
takes seconds. How well a column alone predicts the target is measured out of fold, with an interval
(``alone.py``): the same method on 400 rows as on a million, or no measure below 30 labelled rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from ._hashing import frame_row_fingerprints, hashable_frame
from .alone import AloneMeasure
from .clock import numbers_of
from .conform import bool_value
from .findings import num
from .relation import column_as_numbers, encode_target, target_known
from .schema import ColumnRole, Schema, category_key, infer_schema, numbers_from_text, parse_datetime

__all__ = ["ColumnProfile", "Profile", "boolean_values", "profile_table", "read_booleans"]

SAMPLE_ROWS = 20_000
TOP_VALUES = 10
BINS = 20
#: the spellings of a yes/no column a summary names, at most
SPELLINGS_SHOWN = 6


class Histogram(BaseModel):
    """Counts of values between consecutive edges (numbers, or dates as ISO text)."""

    edges: list[float | str]
    counts: list[int]


class TargetByGroup(BaseModel):
    """The target within groups of a column's values (bins of numbers, or its most common values): the mean
    (regression) or the share of each class (classification), on the sampled rows."""

    groups: list[str]
    rows: list[int]
    mean: list[float] | None = None
    shares: dict[str, list[float]] | None = None


class ColumnProfile(BaseModel):
    """What one column holds."""

    name: str
    role: str
    reason: str = ""
    dtype: str = ""
    n_missing: int = 0
    missing_fraction: float = 0.0
    n_unique: int = 0
    # numbers
    mean: float | None = None
    std: float | None = None
    min: float | str | None = None
    p25: float | None = None
    median: float | None = None
    p75: float | None = None
    max: float | str | None = None
    n_zeros: int | None = None
    n_negative: int | None = None
    skew: float | None = None
    histogram: Histogram | None = None
    # categories, booleans and text: the most common values and their rows
    top_values: list[tuple[str, int]] = Field(default_factory=list)
    #: the filled rows the top values were counted over (their shares are of these rows)
    top_of: int | None = None
    #: a yes/no column written several ways: its values as written ('Yes', 'Y', 'yes', compared stripped), with
    #: their rows; ``top_values`` then counts them as the cleaning reads them, true and false
    spellings: list[tuple[str, int]] = Field(default_factory=list)
    mean_words: float | None = None
    mean_chars: float | None = None
    # the target: the column alone, out of fold (score in the profile's target_metric, with a 95% interval)
    target_skill: float | None = None  # the score on a 0 (guessing) to 1 (perfect) scale
    target_score: float | None = None
    target_low: float | None = None
    target_high: float | None = None
    target_method: str = ""
    target_by_group: TargetByGroup | None = None

    @property
    def alone(self) -> str:
        """The column's score alone with its 95% interval, as text: "0.74 (0.69–0.79)"."""
        if self.target_score is None or self.target_low is None or self.target_high is None:
            return ""
        two = [f"{round(v, 2) + 0.0:.2f}" for v in (self.target_score, self.target_low, self.target_high)]
        return f"{two[0]} ({two[1]}–{two[2]})"

    @property
    def summary(self) -> str:
        """One line that says what the column holds."""
        if self.role == "numeric" and self.mean is not None:
            return f"mean {_num(self.mean)}, median {_num(self.median)}, range {_num(self.min)} to {_num(self.max)}"
        if self.role == "datetime" and self.min is not None:
            first, last = str(self.min)[:19], str(self.max)[:19]
            if first.endswith("00:00:00") and last.endswith("00:00:00"):  # dates without a time of day
                first, last = first[:10], last[:10]
            return f"{first} to {last}"
        if self.role == "identifier":
            example = f" (e.g. {self.top_values[0][0]})" if self.top_values else ""
            return f"{self.n_unique:,} distinct values{example}"
        if self.role == "text" and self.mean_words is not None:
            return f"{self.mean_words:.0f} words on average"
        if self.top_values:
            total = max(self.top_of or sum(c for _, c in self.top_values), 1)
            head = ", ".join(f"{v} ({c / total:.0%})" for v, c in self.top_values[:3])
            if self.spellings:
                shown = [v for v, _ in self.spellings[:SPELLINGS_SHOWN]]
                more = ", ..." if len(self.spellings) > SPELLINGS_SHOWN else ""
                return f"{head}; written {len(self.spellings)} ways: {', '.join(shown)}{more}"
            return head + (", ..." if self.n_unique > 3 else "")
        return ""


class Profile(BaseModel):
    """A whole table's profile."""

    n_rows: int
    n_columns: int
    memory_bytes: int
    n_duplicate_rows: int
    target: str | None = None
    task_kind: str | None = None
    target_profile: ColumnProfile | None = None
    columns: list[ColumnProfile]
    source: dict[str, object] = Field(default_factory=dict)
    sampled_rows: int = 0
    target_metric: str | None = None  # "ROC AUC" or "R²": how each column alone predicts the target
    target_rows: int = 0  # labelled rows that measure was taken on (none below alone.MIN_ROWS)

    @property
    def missing_cells(self) -> int:
        return sum(c.n_missing for c in self.columns) + (self.target_profile.n_missing if self.target_profile else 0)


def _num(v: float | str | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return num(v)


def profile_table(df: pd.DataFrame, *, target: str | None = None, schema: Schema | None = None,
                  task_kind: str | None = None, seed: int = 0) -> Profile:
    """Profile ``df``; with ``target``, also each column's relation to it (``task_kind`` inferred if not given)."""
    with np.errstate(all="ignore"):  # huge or infinite values in the data are its business, not a warning
        return _profile_table(hashable_frame(df), target=target, schema=schema, task_kind=task_kind, seed=seed)


def _profile_table(df: pd.DataFrame, *, target: str | None = None, schema: Schema | None = None,
                  task_kind: str | None = None, seed: int = 0) -> Profile:
    """Profile ``df``; with ``target``, also each column's relation to it (``task_kind`` inferred if not given)."""
    from ..tasks import infer_task_kind

    schema = schema or infer_schema(df, target)
    target = schema.target if target is None else target
    n = len(df)
    sample = df if n <= SAMPLE_ROWS else df.sample(SAMPLE_ROWS, random_state=seed)
    y = None
    measure: AloneMeasure | None = None
    class_names: list[str] = []
    labelled = sample
    if target is not None:
        filled = df[target].dropna()
        if task_kind is None and len(filled):
            task_kind = infer_task_kind(filled)[0]
        labelled = sample[sample[target].notna()]
        if task_kind is not None and len(labelled) >= 20:
            y = encode_target(labelled[target], task_kind)
            ok = target_known(y, task_kind)
            labelled, y = labelled[ok], y[ok]
            measure = AloneMeasure(y, task_kind, seed=seed)
            if len(y) >= 20 and (task_kind == "regression" or len(np.unique(y)) >= 2):
                if task_kind != "regression":
                    class_names = sorted(set(_keys(labelled[target]).dropna()))
            else:
                y = None
    columns = []
    for col in schema.columns:
        if col.name == target or col.name not in df.columns:
            continue
        p = _profile_column(df[col.name], sample[col.name], col.role, col.reason, col)
        if y is not None and task_kind is not None and col.role not in (ColumnRole.identifier, ColumnRole.constant):
            s = labelled[col.name].reset_index(drop=True)
            if p.spellings:  # a yes/no column written several ways, as the cleaning reads it: 'Yes' and 'Y' are true
                s = read_booleans(s)
            alone = measure.measure(s, col.role) if measure is not None else None
            if alone is not None:
                p.target_skill, p.target_score, p.target_method = alone.skill, alone.score, alone.method
                p.target_low, p.target_high = alone.low, alone.high
            p.target_by_group = _target_by_group(s, y, class_names, col.role, task_kind)
        columns.append(p)
    target_profile = None
    if target is not None:
        role = "numeric" if task_kind == "regression" else "categorical"
        target_profile = _profile_column(df[target], sample[target], ColumnRole(role), "the target", None)
    rows = frame_row_fingerprints(df, list(df.columns))
    duplicates = int(pd.Series(rows).duplicated().sum())
    return Profile(
        n_rows=n, n_columns=df.shape[1], memory_bytes=int(df.memory_usage(deep=True).sum()),
        n_duplicate_rows=duplicates, target=target, task_kind=task_kind, target_profile=target_profile,
        columns=columns, source=dict(df.attrs.get("source", {})), sampled_rows=len(sample),
        target_metric=measure.metric if measure is not None and measure.usable else None,
        target_rows=len(measure.y) if measure is not None and measure.usable else 0,
    )


def _profile_column(s: pd.Series, sample: pd.Series, role: ColumnRole, reason: str, col: object) -> ColumnProfile:
    n_missing = int(s.isna().sum())
    extra_missing = getattr(col, "n_missing_tokens", 0) or 0
    read = None  # a number column's text read as numbers, once for its missing count and its statistics
    if role == ColumnRole.numeric and not pd.api.types.is_numeric_dtype(s):  # as cleaning reads it: a text that
        read = numbers_of(s)  # is no number ('unknown') is missing; a time of day is its seconds since midnight
        extra_missing = int((s.notna() & read.isna()).sum())
    p = ColumnProfile(name=str(s.name), role=role.value, reason=reason, dtype=str(s.dtype),
                      n_missing=n_missing + extra_missing,
                      missing_fraction=(n_missing + extra_missing) / len(s) if len(s) else 0.0,
                      n_unique=getattr(col, "n_unique", None) or int(s.nunique(dropna=True)))
    if role == ColumnRole.numeric:
        _numbers(p, s, read)
    elif role == ColumnRole.datetime:
        _dates(p, sample, getattr(col, "datetime_format", None))
    elif role == ColumnRole.text:
        text = sample.dropna().astype(str)
        if len(text):
            p.mean_words = float(text.str.split().str.len().mean())
            p.mean_chars = float(text.str.len().mean())
        p.top_values, p.top_of = _top(sample), int(sample.notna().sum())
    elif role == ColumnRole.boolean:
        _booleans(p, s)
    elif role != ColumnRole.identifier:
        p.top_of = len(s) - n_missing - extra_missing  # the schema's shares are of the rows without placeholders
        p.top_values = _top_from_schema(col, p.top_of) or _top(s)
    else:
        p.top_values = _top(sample.iloc[:1])
    return p


def _skew(x: np.ndarray, mean: float, std: float) -> float:
    """Sample skewness on standardised values, so values near the float range (1e103 cubed) do not overflow;
    0 when it cannot be told (a constant column, or a mean or spread beyond the float range)."""
    if not std or not np.isfinite(std) or not np.isfinite(mean):
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        skew = float(np.mean(((x - mean) / std) ** 3))
    return skew if np.isfinite(skew) else 0.0


def _numbers(p: ColumnProfile, s: pd.Series, read: pd.Series | None = None) -> None:
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        x = s.to_numpy(dtype=float, na_value=np.nan)
    else:
        x = (numbers_from_text(s) if read is None else read).to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if not len(x):
        return
    # values near the float range overflow in sums and differences: inf or nan, said as such, never an error
    with np.errstate(over="ignore", invalid="ignore"):
        q01, q25, q50, q75, q99 = (float(v) for v in np.quantile(x, [0.01, 0.25, 0.5, 0.75, 0.99]))
        mean, std = float(x.mean()), float(x.std())
    p.mean, p.std = (mean if np.isfinite(mean) else None), (std if np.isfinite(std) else None)
    p.min, p.max = float(x.min()), float(x.max())
    p.p25, p.median, p.p75 = q25, q50, q75
    p.n_zeros, p.n_negative = int((x == 0).sum()), int((x < 0).sum())
    p.skew = _skew(x, mean, std)
    # bins over the bulk (1st to 99th percentile) so one extreme value does not squash the picture
    lo, hi = q01, q99
    if not hi > lo:
        lo, hi = p.min, p.max
    if hi > lo and np.isfinite(hi - lo):
        edges = np.linspace(lo, hi, BINS + 1)
        counts = np.histogram(np.clip(x, lo, hi), bins=edges)[0]
        p.histogram = Histogram(edges=[float(e) for e in edges], counts=[int(c) for c in counts])


def _dates(p: ColumnProfile, sample: pd.Series, fmt: str | None) -> None:
    parsed = parse_datetime(sample, fmt).dropna()
    if not len(parsed):
        return
    p.min, p.max = str(parsed.min()), str(parsed.max())
    days = (parsed - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy() / 86400.0
    if days.max() > days.min():
        counts, edges = np.histogram(days, bins=BINS)
        p.histogram = Histogram(edges=[str(pd.Timestamp("1970-01-01") + pd.Timedelta(days=float(e)))[:19] for e in edges],
                                counts=[int(c) for c in counts])


def read_booleans(s: pd.Series) -> pd.Series:
    """A yes/no column as the cleaning reads it (``conform.bool_value``, once per distinct value): "true", "false",
    or missing (a placeholder, or a value that is no yes or no)."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    read = [bool_value(v) for v in uniques]
    names = np.array(["true" if r == 1 else "false" if r == 0 else None for r in read] + [None], dtype=object)
    return pd.Series(names[np.where(codes >= 0, codes, len(uniques))], index=s.index, name=s.name, dtype=object)


def boolean_values(counts: dict[str, int]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(values, spellings) of a yes/no column from the rows of each value as written (by category key), most
    first: the values as the cleaning reads them, each with its rows. Written one way each ('yes', 'no'), they
    keep their words and there are no spellings to tell; written several ways ('Yes', 'yes', 'Y'), they are true
    and false, and the spellings (read as one of them, with their rows) are told once beside them."""
    read: dict[str, int] = {}
    ways: dict[str, list[str]] = {}
    spellings: dict[str, int] = {}
    for key, n in counts.items():
        value = bool_value(key)
        if value == 1 or value == 0:
            name = "true" if value == 1 else "false"
            read[name] = read.get(name, 0) + int(n)
            spellings[key] = spellings.get(key, 0) + int(n)
            ways.setdefault(name, []).append(key)
    if all(len(keys) == 1 for keys in ways.values()):
        return sorted(((ways[v][0], n) for v, n in read.items()), key=lambda kv: (-kv[1], kv[0])), []
    ranked = sorted(spellings.items(), key=lambda kv: (-kv[1], kv[0]))
    return sorted(read.items(), key=lambda kv: (-kv[1], kv[0])), ranked


def _booleans(p: ColumnProfile, s: pd.Series) -> None:
    """A yes/no column's values, missing rows and distinct values as the cleaning reads them (``boolean_values``),
    and its spellings as written, when they say more."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    rows = np.bincount(codes[codes >= 0], minlength=len(uniques))
    by_key: dict[str, int] = {}
    for v, n in zip(uniques, rows, strict=True):
        key = category_key(v)
        if key is not None:
            by_key[key] = by_key.get(key, 0) + int(n)
    top, spellings = boolean_values(by_key)
    p.top_values, p.spellings = top, spellings
    p.top_of = sum(n for _, n in top)
    missing = len(s) - p.top_of
    p.n_missing, p.missing_fraction, p.n_unique = missing, missing / len(s) if len(s) else 0.0, len(top)


def _top(s: pd.Series) -> list[tuple[str, int]]:
    try:
        counts = s.dropna().value_counts().iloc[:TOP_VALUES]
    except TypeError:
        counts = s.dropna().astype(str).value_counts().iloc[:TOP_VALUES]
    return [(str(category_key(k)), int(v)) for k, v in counts.items()]


def _top_from_schema(col: object, n_filled: int) -> list[tuple[str, int]]:
    """The most common values as the schema counted them (by category key, so 3 and "3" are one)."""
    cats, freqs = getattr(col, "categories", None), getattr(col, "frequencies", None)
    if not cats or not freqs:
        return []
    return [(c, int(round(f * n_filled))) for c, f in zip(cats[:TOP_VALUES], freqs, strict=False)]


def _keys(s: pd.Series) -> pd.Series:
    """Category keys of a column, computed once per distinct value."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    keys = np.array([category_key(v) for v in uniques] + [None], dtype=object)
    return pd.Series(keys[np.where(codes >= 0, codes, len(uniques))], index=s.index, dtype=object)


def _target_by_group(s: pd.Series, y: np.ndarray, class_names: list[str], role: ColumnRole, kind: str
                     ) -> TargetByGroup | None:
    """The target in up to 10 groups of the column: quantile bins of numbers (or dates), or its most common
    values. ``y`` holds class codes in the order of ``class_names`` for classification."""
    numbers = column_as_numbers(s, role) if role not in (ColumnRole.categorical, ColumnRole.text) else None
    if numbers is not None and len(np.unique(numbers[np.isfinite(numbers)])) > 10:
        finite = np.isfinite(numbers)
        edges = np.unique(np.quantile(numbers[finite], np.linspace(0, 1, 11)))
        codes = np.full(len(numbers), len(edges) - 1)
        codes[finite] = np.clip(np.searchsorted(edges, numbers[finite], side="right") - 1, 0, len(edges) - 2)
        show = _day if role == ColumnRole.datetime else _num
        names = [f"{show(float(a))} to {show(float(b))}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
        names.append("missing")
    elif numbers is not None:  # a few distinct numbers: numpy alone (cheap per column of a wide table)
        values, inverse, counts = np.unique(numbers, return_inverse=True, return_counts=True, equal_nan=True)
        top = np.argsort(-counts, kind="stable")[:9]
        lookup = np.full(len(values), len(top))
        lookup[top] = np.arange(len(top))
        codes = lookup[inverse.ravel()]
        said = _flag if pd.api.types.is_bool_dtype(s) else category_key  # true/false, not the 1/0 counted
        names = [*("missing" if np.isnan(values[i]) else str(said(values[i])) for i in top), "other"]
    else:
        text = _keys(s).fillna("missing")
        top_keys = text.value_counts().index[:9].tolist()
        names = [*map(str, top_keys), "other"]
        codes = text.map({v: i for i, v in enumerate(top_keys)}).fillna(len(top_keys)).astype(int).to_numpy()
    codes = np.asarray(codes, dtype=np.int64)
    used = [int(i) for i in np.flatnonzero(np.bincount(codes, minlength=len(names)))]
    if len(used) < 2:
        return None
    rows = np.bincount(codes, minlength=len(names))
    out = TargetByGroup(groups=[names[i] for i in used], rows=[int(rows[i]) for i in used])
    if kind == "regression":
        sums = np.bincount(codes, weights=y, minlength=len(names))
        out.mean = [float(sums[i] / rows[i]) for i in used]
    else:
        k = len(class_names)
        table = np.bincount(codes * k + y, minlength=len(names) * k).reshape(len(names), k)
        common = np.argsort(-np.bincount(y, minlength=k), kind="stable")[:6]
        out.shares = {class_names[c]: [float(table[i, c] / rows[i]) for i in used] for c in common}
    return out


def _flag(value: float) -> str:
    return "true" if value else "false"


def _day(days: float) -> str:
    return str((pd.Timestamp("1970-01-01") + pd.Timedelta(days=days)).date())
