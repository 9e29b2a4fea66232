"""Outcomes joined to the live rows they belong to: on a key column of both (``--key``), or, for a prediction
log, on the request id and the row within the request.

    >>> live = attach_labels(live, read_table("outcomes.csv"), model=model, source="outcomes.csv")   # doctest: +SKIP

Bad outcomes are one DataError naming the file and what to do (no target column, two outcomes for one key,
a table whose rows share a key, outcomes that match no row); what was left out is said in ``Current.notes``
(outcomes without a key, outcomes that match no row, outcomes of a request id the log holds more than once).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..data.values import category_key
from ..errors import DataError
from .current import Current, _encode_outcomes

__all__ = ["attach_labels"]


def attach_labels(current: Current, labels: pd.DataFrame, *, model: Any, source: str, key: str | None = None,
                  data: pd.DataFrame | None = None) -> Current:
    """``current`` with outcomes from ``labels``: joined on ``key`` (a column of both the labels and the
    original ``data``), or for a prediction log on the request id (``request_id``, with ``row`` for requests
    of several rows).

    A key that several rows share is handled as its source calls for. In a table (``--key``) two rows with
    one key are two rows, and one outcome cannot belong to both: refused. In a prediction log the same
    request id (and row) comes back when a client retries a request with its ``X-Request-ID``, which clients
    and gateways do: refusing would make every log with a retry unusable. There the outcome goes to the
    latest of those rows (by ``_ts``, then log order: the answer the client most likely kept) when they hold
    the same inputs, as a retry does; where their inputs differ, different requests shared the id and the
    outcome belongs to none of them for sure, so it is left out. A note says which, with an example; and
    another how many outcomes match no row at all."""
    target = model.target
    if target not in labels.columns:
        raise DataError(f"{source} has no column {target!r} with the outcomes: its columns are "
                        f"{', '.join(map(str, labels.columns[:12]))}.")
    notes = list(current.notes)
    labels = _with_keys(labels, source, key, notes)
    left, right, what = _join_keys(current, labels, source, key, data)
    if right.duplicated().any():
        raise DataError(f"{source} gives two outcomes for the key {right[right.duplicated()].iloc[0]!r}: give one "
                        "outcome per row.")
    unmatched = right.notna().to_numpy() & ~right.isin(set(left.dropna())).to_numpy()
    if key is not None:
        _refuse_shared(current, left, key, source)
    else:
        left = _latest_of_repeats(current, left, right, source, what, notes)
    outcomes = _encode_outcomes(model, labels[target].reset_index(drop=True), source)
    if np.isnan(outcomes).all():
        raise DataError(f"{source} holds no outcomes: every value of {target!r} is empty. Pass --labels once the "
                        "outcomes are known.")
    position = pd.Series(np.arange(len(right)), index=pd.Index(right.to_numpy(dtype=object)))
    hit = position.reindex(pd.Index(left.to_numpy(dtype=object))).to_numpy()
    matched = ~np.isnan(hit)
    if not matched.any():
        if not unmatched.all():  # they named rows, but only rows of requests that shared an id
            raise DataError(f"No outcome in {source} could be joined to one row: {notes[-1]}")
        raise DataError(f"None of the {len(labels):,} outcomes in {source} match a monitored row by "
                        f"{key or 'request id'} (for example {right.iloc[0]!r}): check the key, and that the "
                        "outcomes belong to these rows.")
    if unmatched.any():  # a partial join is how a labels pipeline breaks unnoticed: say how much was dropped
        n = int(unmatched.sum())
        notes.append(f"{n:,} of the {len(right):,} outcomes in {source} match no monitored row by {what} (for "
                     f"example {right[unmatched].iloc[0]!r}) and {'were' if n > 1 else 'was'} left out.")
    y = np.full(len(current), np.nan) if current.y is None else current.y.copy()
    y[matched] = outcomes[hit[matched].astype(np.int64)]
    weights, column = current.weights, model.metadata.get("weight_column")
    if weights is None and column and column in labels.columns:  # the weights may come with the outcomes
        taken = labels[column].reset_index(drop=True).reindex(hit[matched].astype(np.int64))
        weights = pd.Series(np.nan, index=range(len(current)), dtype=object)
        weights.iloc[np.flatnonzero(matched)] = taken.to_numpy(dtype=object)
    return replace(current, y=y, labels_source=source, notes=notes, weights=weights)


def _with_keys(labels: pd.DataFrame, source: str, key: str | None, notes: list[str]) -> pd.DataFrame:
    """The outcomes that have a key (an outcome without one matches no row: a note says how many went)."""
    by = key if key is not None else next((c for c in ("request_id", "_request_id") if c in labels.columns), None)
    if by is None or by not in labels.columns:
        return labels
    keyless = labels[by].map(category_key).isna().to_numpy()
    if keyless.all():
        raise DataError(f"Every outcome in {source} has an empty {by!r}: nothing matches them to the rows. Fill in "
                        "the keys.")
    if keyless.any():  # said as such, rather than called repeated keys or keys that match nothing
        notes.append(f"{int(keyless.sum()):,} outcomes of {source} have an empty {by!r} and were left out.")
        labels = labels.loc[~keyless].reset_index(drop=True)
    return labels


def _refuse_shared(current: Current, left: pd.Series, key: str, source: str) -> None:
    """Refuse rows of a table that share a key: an outcome would be copied onto each of them."""
    shared = left[left.notna() & left.duplicated(keep=False)]
    if len(shared):
        first, same = shared.iloc[0], int((shared == shared.iloc[0]).sum())
        others = f" ({len(shared):,} rows in all share a key)" if len(shared) > same else ""
        raise DataError(f"{current.source} has {same:,} rows with the key {first!r} in {key!r}{others}: one outcome "
                        f"of {source} would be copied onto each of them. Give each row its own key.")


def _latest_of_repeats(current: Current, left: pd.Series, right: pd.Series, source: str, what: str,
                       notes: list[str]) -> pd.Series:
    """A prediction log's row keys with each repeated key that an outcome names kept on one row only: the
    latest, where the rows hold the same inputs (a retried request); none, where they differ (requests that
    shared an id). The others' keys become None, so that no outcome joins them; a note says what was done."""
    repeated = left.notna().to_numpy() & left.duplicated(keep=False).to_numpy() & left.isin(set(right)).to_numpy()
    if not repeated.any():
        return left
    rows = np.flatnonzero(repeated)
    times = (pd.to_datetime(current.times.iloc[rows], utc=True).dt.tz_localize(None).to_numpy()
             if current.times is not None else np.zeros(len(rows)))
    group = pd.DataFrame({"key": left.iloc[rows].to_numpy(), "t": times, "pos": rows,
                          "inputs": pd.util.hash_pandas_object(current.frame.iloc[rows].astype(str), index=False)
                          .to_numpy()})
    differ = group.groupby("key")["inputs"].transform("nunique").to_numpy() > 1
    latest = group.loc[~differ].sort_values(["t", "pos"], na_position="first").drop_duplicates("key", keep="last")
    out = left.copy()
    out.iloc[np.setdiff1d(rows, latest["pos"].to_numpy())] = None
    said = []
    for mask, retried in ((~differ, True), (differ, False)):
        keys = group.loc[mask, "key"]
        if not len(keys):
            continue
        n, one = keys.nunique(), keys.nunique() == 1
        held = (f"{n:,} outcome{' ' if one else 's '}of {source} {'names' if one else 'each name'} a {what} that the "
                f"log holds more than once ({len(keys):,} rows; for example {keys.iloc[0]!r})")
        said.append(f"{held} with the same inputs: {'a request' if one else 'requests'} retried with "
                    f"{'its' if one else 'their'} X-Request-ID, so {'it was' if one else 'each was'} joined to the "
                    "latest of those rows only" if retried else
                    f"{held} with different inputs: different requests shared the id, so {'it was' if one else 'they were'} "
                    "left out. Give each request its own X-Request-ID")
    notes.append("; ".join(said) + ".")
    return out


def _join_keys(current: Current, labels: pd.DataFrame, source: str, key: str | None,
               data: pd.DataFrame | None) -> tuple[pd.Series, pd.Series, str]:
    """The key of each monitored row and of each outcome, as text, and what the key is, in words."""
    if key is not None:
        if key not in labels.columns:
            raise DataError(f"--key names {key!r}, which {source} does not have.")
        rows = data if data is not None else current.frame
        if key not in rows.columns:
            raise DataError(f"--key names {key!r}, which the monitored rows do not have: join on a column both hold.")
        return _text(rows[key]), _text(labels[key]), repr(key)
    if current.requests is None:
        raise DataError(f"Say how {source} matches the rows: --key COLUMN (a column of both), or monitor a "
                        "prediction log, whose rows match outcomes by request_id.")
    rid = next((c for c in ("request_id", "_request_id") if c in labels.columns), None)
    if rid is None:
        raise DataError(f"{source} has no request_id column to match the logged rows by (the x-request-id of each "
                        "request): add one, or pass --key COLUMN.")
    row = next((c for c in ("row", "_row") if c in labels.columns), None)
    left = _text(current.requests["_request_id"])
    if row is None:
        several = current.requests["_row"].to_numpy() > 0
        asked = left.isin(set(_text(labels[rid])))
        if (several & asked.to_numpy()).any():
            raise DataError(f"Some requests named in {source} hold several rows: add a 'row' column (0 for a "
                            "request's first row) so each outcome finds its row.")
        return left, _text(labels[rid]), "request id"
    both = left + "#" + current.requests["_row"].astype(str).reset_index(drop=True)
    rows = pd.to_numeric(labels[row], errors="coerce").astype("Int64").astype(str).reset_index(drop=True)
    return both, _text(labels[rid]) + "#" + rows, "request id and row"


def _text(s: pd.Series) -> pd.Series:
    """Keys compared as categories are (``3``, ``3.0`` and ``" 3 "`` are one key)."""
    return s.reset_index(drop=True).map(category_key).astype(object)
