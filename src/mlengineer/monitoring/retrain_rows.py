"""What ``retrain`` learns from and tests on, and what the user must be told about it: the new rows that have an
outcome (how many had none and were left out), whether the rows both models are tested on repeat rows the
champion trained on (a comparison on them flatters the champion, as ``evaluate`` warns of such rows), and the
name of the challenger's training run, which says what it is.

    >>> rows, note = labelled_rows(champion, current)      # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .current import Current

__all__ = ["labelled_rows", "name_challenger_run", "trained_rows_note"]


def labelled_rows(model: Any, current: Current) -> tuple[pd.DataFrame, str | None]:
    """The live rows with an outcome, as a training table (the target decoded), oldest first; and a note of
    how many rows had no outcome and were left out (None when every row has one)."""
    mask = current.labelled
    if not mask.any():
        raise DataError(f"None of the rows of {current.source} has an outcome: pass --labels with the outcomes, "
                        f"or rows holding the target column {model.target!r}.")
    frame = current.frame if current.extra is None else pd.concat([current.frame, current.extra], axis=1)
    column = model.metadata.get("weight_column")
    if column and column not in frame.columns and current.weights is not None:  # the weights came with the outcomes
        frame = frame.assign(**{column: current.weights.to_numpy()})
    rows = frame.loc[mask].reset_index(drop=True).copy()
    y = np.asarray(current.y)[mask]
    rows[model.target] = np.asarray(model.classes, dtype=object)[y.astype(np.int64)] if model.task.is_classification \
        else y
    if current.times is not None:
        order = np.argsort(pd.to_datetime(current.times[mask], utc=True).to_numpy(), kind="stable")
        rows = rows.iloc[order].reset_index(drop=True)
    left = int((~mask).sum())
    note = (f"{left:,} of the {len(mask):,} rows of {current.source} have no outcome and were left out: retrain "
            f"learns from and tests on the {int(mask.sum()):,} rows whose outcome is known.") if left else None
    return rows, note


def trained_rows_note(champion: Any, test: pd.DataFrame, base: pd.DataFrame) -> tuple[dict[str, Any] | None,
                                                                                     str | None]:
    """How many of the rows both models are tested on are copies of rows of the champion's training table
    (found in its reference sample, as ``evaluate`` finds them: ``evaluation.seen.rows_found``'s answer, None
    for a bundle without one), and the warning to print when they are more than a few; it says whether the
    challenger learns from them too (``base``, the rows it learns from beside the new ones, holds them)."""
    from ..bundle.reference import DRIFT, load_reference
    from ..evaluation.seen import SEEN_SHARE, row_keys, rows_as_read, rows_found

    reference = load_reference(champion)
    if reference is None or DRIFT not in reference.columns or not len(test):
        return None, None
    reference = reference.loc[reference[DRIFT].to_numpy(dtype=bool)]
    columns = [c for c in dict.fromkeys([*champion.feature_names, champion.target])
               if c in reference.columns and c in test.columns]
    if not columns or not len(reference):
        return None, None
    # rows as the model reads them: a reference keeps them as written ("$314,813"), the new rows decoded
    reference, test, base = (rows_as_read(champion, f[[c for c in columns if c in f.columns]])
                              for f in (reference, test, base))
    seen = rows_found(row_keys(reference[columns]), test, columns,
                      population=int(champion.metadata.get("n_train_rows") or 0))
    if seen["share"] < SEEN_SHARE:
        return seen, None
    part = "all" if seen["share"] >= 0.999 else f"{'' if seen['exact'] else 'about '}{seen['share']:.0%}"
    both = all(c in base.columns for c in columns) and rows_found(
        row_keys(base[columns]), test, columns, population=len(base))["share"] >= SEEN_SHARE
    flatters = ("so the comparison flatters the champion, and the challenger, which learns from them too: it "
                "tells little between them" if both else "so the comparison flatters the champion")
    return seen, (f"Careful: {part} of the {len(test):,} newest rows both models are tested on are copies of rows "
                  f"the champion trained on, {flatters} (a model does better on rows it learnt from). For an "
                  "honest test, pass new rows kept apart from its training.")


def name_challenger_run(challenger: Any, champion_name: str, tracking_uri: str | None) -> str | None:
    """Name the challenger's training run ``<champion>-retrain-<n>``, ``n`` one more than the retrains of that
    name the experiment holds already, so that ``mlengineer runs`` tells it from the champion's own training
    and from other retrains; the name given (None without a recorded run)."""
    from ..tracking.store import mlflow_client

    run_id = challenger.metadata.get("run_id")
    if not run_id:
        return None
    client = mlflow_client(tracking_uri)
    experiment = client.get_run(run_id).info.experiment_id
    prefix = f"{champion_name}-retrain-"
    found = client.search_runs([experiment], max_results=5000, filter_string="" if "'" in prefix else
                               f"attributes.run_name LIKE '{prefix}%'")
    taken = [r.info.run_name.removeprefix(prefix) for r in found if (r.info.run_name or "").startswith(prefix)]
    name = f"{prefix}{max([int(t) for t in taken if t.isdigit()], default=0) + 1}"
    client.update_run(run_id, name=name)
    client.set_tag(run_id, "mlengineer.retrain_of", champion_name)
    return name
