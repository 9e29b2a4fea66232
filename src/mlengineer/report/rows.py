"""Which rows the report (and ``evaluate``) measures on: the labelled rows given (or a sample of them), and how
many of them are rows of the model's training table, found in the bundle's reference sample, or rows
``mlengineer calibrate`` fitted its calibration on, so the report never calls rows "not seen in training" that
the model trained on, nor passes off its calibration rows as an honest test."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..evaluation.seen import SEEN_SHARE, row_keys, rows_as_read, rows_found
from .summary import share

__all__ = ["calibrated_words", "plain", "rows_words", "trained_rows", "validation_words"]


def trained_rows(model: Any, data: pd.DataFrame) -> dict[str, Any] | None:
    """How many of the labelled rows ``data`` are exact copies of rows of the model's training table:
    ``{"rows", "share", "exact"}``; ``exact`` when the reference sample holds the whole table (a count, not an
    estimate). None for a bundle without a reference sample."""
    from ..bundle.reference import DRIFT, load_reference

    reference = load_reference(model)
    if reference is None or DRIFT not in reference.columns or not len(data):
        return None
    reference = reference.loc[reference[DRIFT]]
    columns = [c for c in dict.fromkeys([*model.feature_names, model.target])
               if c in reference.columns and c in data.columns]
    if not columns or not len(reference):
        return None
    # the rows as the model reads them: the reference keeps them as written ("$314,813"), a file may write 314813.0
    return rows_found(row_keys(rows_as_read(model, reference[columns])), data, columns,
                      population=int(model.metadata.get("n_train_rows") or 0), model=model)


def rows_words(noun: str, seen: dict[str, Any] | None, sampled_from: int | None) -> tuple[str, str | None]:
    """What the measured rows are, in words ("customers it had not seen in training"), and a warning for the
    summary's top when many of them are rows the model trained on."""
    sample = f" (a random sample of the {sampled_from:,} given)" if sampled_from else ""
    if seen is None or seen["share"] < SEEN_SHARE:
        return f"{noun} it had not seen in training{sample}", None
    flatter = ("so the numbers below flatter it: a model does better on rows it learnt from. For an honest "
               f"measure, give {noun} that were kept apart from training.")
    if seen["share"] >= 0.999:
        return f"{noun} of its training table{sample}", f"<b>Careful</b>: these are {noun} the model trained on, {flatter}"
    about = "" if seen["exact"] else "about "
    part = f"{about}{share(seen['share'])}"
    return (f"{noun}{sample}, {part} of which are in its training table",
            f"<b>Careful</b>: {part} of these {noun} are copies of {noun} the model trained on, {flatter}")


def calibrated_words(model: Any, noun: str, cal: dict[str, Any] | None) -> tuple[str, str | None]:
    """What to add to the words of the measured rows, and a warning for the summary's top, when many of them
    are rows ``mlengineer calibrate`` fitted the model's calibration on (``evaluation.seen.calibration_rows``)."""
    if cal is None or cal["share"] < SEEN_SHARE:
        return "", None
    part = f"these are the {noun}" if cal["share"] >= 0.999 else (
        f"{'' if cal['exact'] else 'about '}{share(cal['share'])} of these {noun} are {noun}")
    if model.task.is_classification:
        fitted = "its probabilities, its sets of likely answers" + (
            " and its decision threshold" if model.extras.get("threshold") is not None else "")
        most = "its calibration error, the coverage of its sets" + (
            " and the threshold's precision and recall" if model.extras.get("threshold") is not None else "")
    else:
        fitted, most = "its ranges", "the share of true values its ranges held"
    warning = (f"<b>Careful</b>: {part} that 'mlengineer calibrate' fitted {fitted} on, so the numbers below "
               f"flatter it, {most} most of all. For an honest measure, give {noun} kept apart from training "
               "and from calibration.")
    return (", though its calibration was fitted on them" if cal["share"] >= 0.5 else ""), warning


def validation_words(model: Any, noun: str) -> str:
    """What the rows a report without data measures on are, in words: the validation rows the trainer kept, as
    they truly are. Under k folds they are the training rows themselves, each predicted by the fit of the fold that
    left it out (out-of-fold predictions), and the final model learned from them all (refit on every row, or the
    fold models kept, which together saw every row); a holdout's rows were left out of the search's fits, and the
    members refit on every row learned from them too."""
    meta = model.metadata
    if meta.get("calibration_rows_apart"):
        return f"{noun} kept apart from every fit"
    split = str(meta.get("split") or "")
    n = len((getattr(model, "validation", None) or {}).get("y", []))
    if "cross-validation" in split or n >= int(meta.get("n_train_rows") or 0) > 0:
        return (f"training {noun} (out-of-fold predictions: each by a fit that had not seen it; the final model "
                "learned from all of them)")
    if meta.get("refit_on_all_rows"):
        return f"validation {noun} (held out of the search's fits; the final model was then refit on them too)"
    return (f"validation {noun} (held out of the search's fits; members the final model refit on every row "
            "learned from them too)")


def plain(words: str) -> str:
    """A sentence of the report as plain text for the terminal: its tags left out, its entities read."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", words))
