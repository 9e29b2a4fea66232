"""Monitoring as ``mlengineer monitor`` runs it: find the model, read the live rows and their outcomes, monitor.

    >>> model, result = monitor_model("models:/price@champion", log="logs/", window="1d")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .current import Current, from_data, from_log, select_time
from .monitor import monitor
from .outcomes import attach_labels

__all__ = ["FAIL_ON", "failed_conditions", "json_ready", "load_current", "monitor_model", "version_note"]

#: what ``--fail-on`` can name; each sets exit status 1 when found (bad input is 2)
FAIL_ON = ("drift", "performance", "relation")


def load_current(model: Any, *, log: str | Path | None = None, data: Any = None, labels: Any = None,
                 key: str | None = None, time_column: str | None = None, since: str | None = None,
                 until: str | None = None, names: set[str] | None = None) -> Current:
    """The live rows to monitor: a prediction log folder (``log``) or new rows (``data``: a path or a
    DataFrame), restricted to ``since``/``until``, with outcomes from ``labels`` (a path or a DataFrame)."""
    from ..bundle.rows import read_marks  # the training file's thousands dots and decimal commas
    from ..data.load import load_table

    if (log is None) == (data is None):
        raise ConfigError("Pass either --log DIR (a server's prediction log) or --data FILE (new rows), one of them.")
    table = None
    if log is not None and time_column is not None:
        raise ConfigError(f"--time-column {time_column} is for --data: a prediction log's rows carry their own time "
                          "(_ts). Leave it out.")
    if log is not None:
        current = from_log(model, log, names=names)
    else:
        source = str(data) if not hasattr(data, "columns") else "the data"
        table = data if hasattr(data, "columns") else load_table(data, marks=read_marks(model.metadata))
        current = from_data(model, table, source, time_column=time_column)
    if labels is not None:
        lsource = str(labels) if not hasattr(labels, "columns") else "the outcomes"
        frame = labels if hasattr(labels, "columns") else load_table(labels, marks=read_marks(model.metadata))
        current = attach_labels(current, frame, model=model, source=lsource, key=key, data=table)
        # the key joins outcomes to rows: a column of the table the user named, not one clients send
        current.unknown_columns = [c for c in current.unknown_columns if c != key]
    return select_time(current, since, until)


def monitor_model(spec: Any, *, tracking_uri: str | None = None, log_model: str | None = None,
                  window: str | None = None, by_version: bool = False, weights: bool = True,
                  read: Callable[[Any], Any] | None = None, **sources: Any) -> tuple[Any, dict[str, Any]]:
    """Open the model ``spec`` names (a folder, ``models:/NAME@ALIAS`` or a run id, or a Model), read the
    live rows ``sources`` describe (see ``load_current``) and monitor them. ``read``: given the open model,
    answers the live rows as ``data`` (Spark reads a table by the marks the model's training file used)."""
    from ..tracking.lookup import open_model, open_registered
    from ..tracking.registry import is_model_ref

    version, names, registered = None, set(), None  # the registered version, when a registry reference names it
    if isinstance(spec, str) and is_model_ref(spec):  # its files checked against the digest the registry recorded
        info, model = open_registered(spec, tracking_uri=tracking_uri)
        version = str(info.version)
        names.add(info.name)
        registered = (str(info.name), version)
    else:
        model = spec if hasattr(spec, "predict_raw") else open_model(str(spec), tracking_uri=tracking_uri)
    names.add(model.name)
    if log_model:
        names.add(log_model)
    if read is not None:
        sources["data"] = read(model)
    current = load_current(model, names=names, **sources)
    note = version_note(current, version, by_version=by_version)
    if note:
        current.notes = [*current.notes, note]
    return model, monitor(model, current, window=window, by_version=by_version, weights=weights,
                          registered=registered)


def version_note(current: Current, version: str | None, *, by_version: bool = False) -> str | None:
    """What the user must know when a prediction log's rows were answered by other versions than ``version``
    (the one monitored; None when not known, as for a bundle folder, and then only several versions count):
    they are all tested against this model's reference. None when there is nothing to say."""
    if current.versions is None or not len(current):
        return None
    counts = current.versions.astype(str).value_counts()
    others = counts.drop(version, errors="ignore") if version is not None else counts
    if not len(others) or (version is None and len(counts) < 2):
        return None
    split = "the version windows split them" if by_version else "--by-version splits them"
    listed = ", ".join(f"version {v}: {int(n):,}" for v, n in list(others.items())[:3])
    more = f", and {len(others) - 3} more" if len(others) > 3 else ""
    if version is None:
        return (f"The {len(current):,} rows were answered by {len(counts)} model versions ({listed}{more}), all "
                f"tested against this model's reference ({split}).")
    which = f"version {others.index[0]}" if len(others) == 1 else f"other versions ({listed}{more})"
    return (f"{int(others.sum()):,} of {len(current):,} rows were answered by {which}, not version {version}, "
            f"whose reference they are all tested against ({split}).")


def failed_conditions(result: dict[str, Any], fail_on: list[str]) -> list[str]:
    """The ``--fail-on`` conditions the result meets (exit status 1 when any)."""
    bad = [c for c in fail_on if c not in FAIL_ON]
    if bad:
        raise ConfigError(f"--fail-on takes {' or '.join(FAIL_ON)}; got {bad[0]!r}.")
    return [c for c in fail_on if result["alarms"].get(c)]


def json_ready(value: Any) -> Any:
    """``value`` with every number that is not finite (a metric of rows of one class, a log's infinite
    value) as None: JSON has no NaN, and strict readers (jq, JavaScript) refuse it."""
    import math

    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):  # numpy's float64 is a float too
        return None
    return value
