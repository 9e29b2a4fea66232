"""The live rows to monitor: a server's prediction log, or a table of new rows (their outcomes, when known,
are joined by ``outcomes.attach_labels``).

    >>> live = from_log(model, "logs/")                                   # doctest: +SKIP

Every mistake is one DataError naming the file and what to do: a folder with no log, a log written for
another model, a time range the log does not cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.sheets import source_note
from ..data.values import category_key, dateless
from ..errors import DataError
from ..written_numbers import numbers_from_text
from .columns import conformed

__all__ = ["Current", "as_times", "from_data", "from_log", "outcome_key", "select_time"]

LOG_COLUMNS = ("_ts", "_row", "_request_id", "_endpoint", "_model", "_version")
CHUNK = 200_000


@dataclass
class Current:
    """Live rows: their feature columns, the model's predictions of them, and what is known about each."""

    frame: pd.DataFrame
    raw: np.ndarray  # probabilities (n, k) or values (n,), as the model answered
    source: str
    times: pd.Series | None = None
    versions: pd.Series | None = None
    #: outcomes as the model encodes them (class index, or value); NaN where unknown
    y: np.ndarray | None = None
    labels_source: str | None = None
    #: columns of the live rows that the model does not know
    unknown_columns: list[str] = field(default_factory=list)
    #: a prediction log's ``_request_id`` and ``_row`` per row, to match outcomes by
    requests: pd.DataFrame | None = None
    #: other columns of a table of new rows that the model knows (identifiers, dropped columns): kept for
    #: retraining, so a challenger knows every column clients send
    extra: pd.DataFrame | None = None
    #: the column ``times`` came from (``_ts`` for a log, ``--time-column`` for a table), named in messages
    time_name: str | None = None
    #: what the user must be told about how the rows were chosen (rows left out, and why)
    notes: list[str] = field(default_factory=list)
    #: the model's weight column as the live rows (or their outcomes) hold it, read only to weigh realised metrics
    weights: pd.Series | None = None

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def labelled(self) -> np.ndarray:
        return np.zeros(len(self), dtype=bool) if self.y is None else ~np.isnan(self.y)


def from_log(model: Any, folder: str | Path, *, names: set[str] | None = None) -> Current:
    """The rows a server logged for ``model`` (``names``: the names it was served under; the bundle's own
    name and registered name by default)."""
    from .prediction_log import read_prediction_log

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{str(folder)!r} is not a folder: pass the folder a server writes its prediction log to "
                        "(mlengineer serve --prediction-log).")
    log = read_prediction_log(folder)
    if log.empty:
        raise DataError(f"{str(folder)!r} holds no prediction log (no part-*.parquet files): serve the model with "
                        f"--prediction-log {folder} and send it requests first.")
    names = names or {model.name}
    logged = sorted(map(str, log["_model"].unique()))
    if not set(logged) & names:
        raise DataError(f"The prediction log in {str(folder)!r} holds rows of {', '.join(map(repr, logged))}, not of "
                        f"{', '.join(sorted(map(repr, names)))}: pass the log of this model's server, or --log-model "
                        "NAME if it was served under another name.")
    notes = []
    if not set(logged) <= names:  # rows of other models too: keep this one's (no copy when all are), and say so
        mine = log["_model"].astype(str).isin(names).to_numpy()
        notes.append(_other_models_note(log.loc[~mine, "_model"].astype(str), folder))
        log = log.loc[mine].reset_index(drop=True)
    missing = [c for c in model.feature_names if c not in log.columns]
    if missing:
        raise DataError(f"The prediction log in {str(folder)!r} has no column {missing[0]!r}, which the model needs: "
                        "it was written by a server of another model.")
    raw = _logged_predictions(model, log, folder)
    lost = np.isnan(raw) if raw.ndim == 1 else np.isnan(raw).any(axis=1)
    if lost.any():  # rows of a version that was another kind of model, served under this name
        versions = ", ".join(sorted(map(str, log.loc[lost, "_version"].astype(str).unique()))[:3])
        what = "numeric prediction" if raw.ndim == 1 else f"probabilities for the classes {_classes(model)}"
        notes.append(f"{int(lost.sum()):,} rows of the prediction log in {str(folder)!r} (version {versions}) carry no "
                     f"{what}, as this model gives, and were left out: another kind of model answered them.")
        log, raw = log.loc[~lost].reset_index(drop=True), raw[~lost]
    requests = pd.DataFrame({"_request_id": log["_request_id"].astype(str),
                             "_row": log["_row"] if "_row" in log.columns else 0})
    return Current(log[model.feature_names], raw, f"prediction log {folder}", times=_log_times(log["_ts"]),
                   versions=log["_version"].astype(str), requests=requests, time_name="_ts", notes=notes)


def _other_models_note(models: pd.Series, folder: Path) -> str:
    """What the user must be told of a shared log's rows of other models, left out: how many, whose (a wrong
    ``--log-model`` or folder shows here)."""
    counts = models.value_counts()
    named = ", ".join(f"{name!r}: {int(n):,}" for name, n in list(counts.items())[:3])
    more = f", and {len(counts) - 3} more" if len(counts) > 3 else ""
    whose = f"of {counts.index[0]!r}" if len(counts) == 1 else f"of other models ({named}{more})"
    return (f"{len(models):,} row{'s' if len(models) > 1 else ''} {whose} in the prediction log in {str(folder)!r} "
            "were left out: another model answered them (if this model was served under that name, pass "
            "--log-model NAME).")


def _log_times(s: pd.Series) -> pd.Series:
    """A log's ``_ts`` as UTC timestamps; a part written by another tool may hold text or empty cells, read
    as NaT rather than failing (``select_time`` and the windows count them)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(s):
        return pd.to_datetime(s, utc=True)
    return pd.to_datetime(s.astype(object), utc=True, errors="coerce", format="mixed")


def _classes(model: Any) -> str:
    return ", ".join(map(str, model.classes))


def _logged_predictions(model: Any, log: pd.DataFrame, folder: Path) -> np.ndarray:
    """The logged answers as the model gives them, NaN on rows another kind of model answered (a regressor's
    log holds ``prediction`` numbers, a classifier's ``proba_<class>`` columns too); an error when no row has
    them."""
    proba = [c for c in log.columns if str(c).startswith("proba_")]
    if not model.task.is_classification:
        values = pd.to_numeric(log["prediction"], errors="coerce") if "prediction" in log.columns else None
        if values is not None and proba:
            values = values.where(log[proba].isna().all(axis=1))
        if values is None or values.isna().all():
            raise DataError(f"The prediction log in {str(folder)!r} holds no numeric predictions: it was written for a "
                            "classifier, and this model predicts numbers. Pass the log of this model's server.")
        return values.to_numpy(dtype=np.float64)
    cols = [f"proba_{c}" for c in model.classes]
    if not all(c in log.columns for c in cols) or log[cols].isna().any(axis=1).all():
        raise DataError(f"The prediction log in {str(folder)!r} has no probabilities for the classes {_classes(model)}: "
                        "it was written for a model of other classes, or one that predicts numbers.")
    return log[cols].to_numpy(dtype=np.float64)


def from_data(model: Any, data: pd.DataFrame, source: str, *, time_column: str | None = None) -> Current:
    """New rows from a table: the model predicts them (values it cannot read count as missing, and the
    quality checks report them). A target column in the table gives the outcomes."""
    if data.empty:
        raise DataError(f"{source} has no rows to monitor.")
    missing = [c for c in model.feature_names if c not in data.columns]
    if missing:
        raise DataError(f"{source} has no column {missing[0]!r}"
                        f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}, which the model needs: "
                        "pass rows shaped like the training table.")
    times = None
    if time_column is not None:
        if time_column not in data.columns:
            raise DataError(f"--time-column names {time_column!r}, which {source} does not have.")
        times = as_times(data[time_column], time_column, source)
    known = {c.name for c in model.schema.columns} | {model.target}
    frame = data[model.feature_names].reset_index(drop=True)
    others = [c for c in data.columns if c in known and c not in frame.columns and c != model.target]
    current = Current(frame, _predict(model, frame), source, times=None if times is None else times.reset_index(
        drop=True), unknown_columns=[c for c in data.columns if c not in known and c != time_column],
                      extra=data[others].reset_index(drop=True) if others else None, time_name=time_column,
                      notes=[n for n in [source_note(dict(data.attrs.get("source") or {}))] if n])
    column = model.metadata.get("weight_column")
    if column and column in data.columns:  # never a feature: kept aside to count labelled rows by
        current = replace(current, weights=data[column].reset_index(drop=True))
    if model.target in data.columns:
        current = replace(current, y=_encode_outcomes(model, data[model.target].reset_index(drop=True), source),
                          labels_source=source)
    return current


def _predict(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """``Model.predict_raw`` in chunks, reading a value that does not fit its column as missing rather than
    failing the whole table (the quality checks count such values)."""
    parts = []
    calibrator = model.extras.get("calibrator")
    for start in range(0, len(frame), CHUNK):
        chunk = frame.iloc[start:start + CHUNK]
        raw = model.predictor.predict_raw(model.encoder.transform(conformed(model, chunk)))
        if calibrator is not None and model.task.is_classification:
            raw = calibrator.transform(raw)
        parts.append(raw)
    return np.concatenate(parts)


def as_times(s: pd.Series, name: str, source: str) -> pd.Series:
    """A time column as UTC timestamps (NaT where a value is empty or unreadable); whole numbers between 1800
    and 2200 are years. Other numbers are refused: read as times they would be nanoseconds since 1970."""
    filled = s.dropna()
    if not len(filled):
        raise DataError(f"Column {name!r} of {source} is empty: pass --time-column a column of dates or times.")
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        if pd.api.types.is_bool_dtype(s) or not (filled.between(1800, 2200).all() and (filled % 1 == 0).all()):
            raise DataError(f"Column {name!r} of {source} holds numbers, not dates or times: pass --time-column a "
                            "column of dates or times (such as 2025-01-31 12:00).")
        return pd.to_datetime(s.astype("Int64").astype(str), format="%Y", utc=True, errors="coerce")
    # a time of day alone is no time of a row: pandas would complete it with today's date
    text = s.astype(object)
    t = pd.to_datetime(text.mask(text.map(lambda v: isinstance(v, str) and dateless(v))), utc=True, errors="coerce",
                       format="mixed")
    if t.notna().sum() < max(1, int(0.5 * len(filled))):
        raise DataError(f"Column {name!r} of {source} does not hold dates or times: pass a time column to "
                        "--time-column.")
    return t


def select_time(current: Current, since: str | None, until: str | None) -> Current:
    """The rows from ``since`` (included) to ``until`` (excluded). Rows without a readable time are left out,
    and a note says how many; an error when no row has one, or none falls inside (naming the span covered)."""
    if since is None and until is None:
        return current
    if current.times is None:
        raise DataError("--since and --until need times: monitor a prediction log, or pass --time-column.")
    t = pd.to_datetime(current.times, utc=True)
    bounds = [None if v is None else _stamp_arg(v, opt) for v, opt in ((since, "--since"), (until, "--until"))]
    if bounds[0] is not None and bounds[1] is not None and bounds[1] <= bounds[0]:
        raise DataError(f"--until {until} is not after --since {since}: no time lies between them. Swap them, or "
                        "widen the span.")
    options = " and ".join(o for o, v in (("--since", since), ("--until", until)) if v is not None)
    column = repr(current.time_name) if current.time_name else "the time column"
    unread = t.isna().to_numpy()
    if unread.all():
        raise DataError(f"{options} cannot choose rows of {current.source}: none of its {len(t):,} rows has a readable "
                        f"time in {column} (all empty or unreadable). Fix that column, or leave {options} out.")
    keep = ~unread
    if bounds[0] is not None:
        keep &= (t >= bounds[0]).to_numpy()
    if bounds[1] is not None:
        keep &= (t < bounds[1]).to_numpy()
    if not keep.any():
        raise DataError(f"No rows of {current.source} fall between {since or 'the start'} and {until or 'now'}: they "
                        f"cover {t.min():%Y-%m-%d %H:%M} to {t.max():%Y-%m-%d %H:%M} (UTC). Choose a span that "
                        "overlaps it.")
    rows = np.flatnonzero(keep)
    chosen = _take(current, rows)
    n, known = int(unread.sum()), int(current.labelled.sum())
    if n:
        chosen.notes = [*current.notes, f"{n:,} row{'s' if n > 1 else ''} of {current.source} left out by {options}: "
                        f"no readable time in {column} (empty or unreadable)."]
    if known and not chosen.labelled.any():  # the outcomes were given for nothing: say so, as when none match
        chosen.notes = [*chosen.notes, f"None of the {known:,} outcome{'s' if known > 1 else ''} of "
                        f"{current.labels_source} fall{'s' if known == 1 else ''} between {since or 'the start'} and "
                        f"{until or 'now'} ({options}): no realised metrics. Widen the span to include them."]
    return chosen


def _stamp_arg(v: str, opt: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(v)
    except ValueError:
        raise DataError(f"{opt} takes a date or time such as 2025-01-31 or 2025-01-31T12:00; got {v!r}.") from None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _take(current: Current, rows: np.ndarray) -> Current:
    def part(s: pd.Series | None) -> pd.Series | None:
        return None if s is None else s.iloc[rows].reset_index(drop=True)

    return replace(current, frame=current.frame.iloc[rows].reset_index(drop=True), raw=current.raw[rows],
                   times=part(current.times), versions=part(current.versions),
                   y=None if current.y is None else current.y[rows],
                   requests=None if current.requests is None else current.requests.iloc[rows].reset_index(drop=True),
                   extra=None if current.extra is None else current.extra.iloc[rows].reset_index(drop=True),
                   weights=part(current.weights))


def outcome_key(v: Any) -> str | None:
    """An outcome or a class as the text it is matched by: ``1``, ``1.0``, ``"1.0"`` and ``" 1 "`` are one
    (a column of 0/1 with an empty cell is read as floats), ``True`` and ``"true"`` too."""
    key = category_key(v)
    if key is None:
        return None
    if key.lower() in ("true", "false"):
        return key.lower()
    try:
        f = float(key)
    except ValueError:
        return key
    return str(int(f)) if f.is_integer() else repr(f) if f == f else key


def _encode_outcomes(model: Any, s: pd.Series, source: str) -> np.ndarray:
    """Outcomes as float class indices or values, NaN where unknown (empty: those rows are skipped); a label
    the model does not know is an error naming it."""
    y = np.full(len(s), np.nan)
    keys = s.map(outcome_key)
    if model.task.is_classification:
        known = keys.notna().to_numpy()
        classes = _class_keys(model)
        if not keys[known].isin(list(classes)).all():  # "Yes" for the class "yes", where case tells no two apart
            folds: dict[str, set[int]] = {}
            for k, i in classes.items():
                folds.setdefault(k.casefold(), set()).add(i)
            if all(len(v) == 1 for v in folds.values()):
                keys = keys.map(lambda k: k.casefold() if isinstance(k, str) and k not in classes else k)
                classes = {**{k: min(v) for k, v in folds.items()}, **classes}
        bad = known & ~keys.isin(list(classes)).to_numpy()
        if bad.any():
            raise DataError(f"{source} has the outcome {str(s[bad].iloc[0]).strip()!r} in {model.target!r}, which is "
                            f"none of the model's classes ({_classes(model)}).")
        y[known] = keys[known].map(classes).to_numpy(dtype=np.float64)
        return y
    known = s.notna().to_numpy()
    if known.any() and keys[known].isin(["true", "false"]).all():
        raise DataError(f"{source} has true/false outcomes in {model.target!r}, but the model predicts numbers (a "
                        "regression model): pass the values it predicts.")
    values = pd.to_numeric(s[known], errors="coerce")
    if values.isna().any():  # written as training's target may be: '$314,813', '120,000', '18.1%'
        values = values.fillna(numbers_from_text(s[known]))
    if values.isna().any():
        raise DataError(f"{source} has the outcome {s[known][values.isna()].iloc[0]!r} in {model.target!r}, which "
                        "is not a number.")
    y[known] = values.to_numpy(dtype=np.float64)
    return y


def _class_keys(model: Any) -> dict[str, int]:
    """Each class's key (``outcome_key``) to its index; a 0/1 model's classes also as false/true, and the
    other way round: outcomes written either way are the same two classes."""
    classes: dict[str, int] = {}
    for i, c in enumerate(model.classes):
        classes.setdefault(str(outcome_key(c)), i)
    for pair in ((("0", "false"), ("1", "true")), (("false", "0"), ("true", "1"))):
        if set(classes) == {pair[0][0], pair[1][0]}:
            classes.update({alias: classes[name] for name, alias in pair})
    return classes
