"""The commands that judge a model, from Python as the CLI runs them: ``mlengineer.evaluate``,
``compare_models``, ``recalibrate`` and ``explain_rows`` take a model or what names one (a bundle folder, a run
id, ``models:/NAME@ALIAS``) and rows as a DataFrame, records or a table file, and answer what the commands say.

    >>> result = mlengineer.evaluate("churn-model", "test.csv")                  # doctest: +SKIP
    >>> mlengineer.compare_models("churn-model", "baseline", test_df)["verdict"]  # doctest: +SKIP
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from ..bundle.model import Model
from ..errors import ModelError

__all__ = ["compare_models", "evaluate", "explain_rows", "open_any", "recalibrate"]

#: what ``compare_models`` takes in place of a model: a constant answer (the class shares, or the mean)
BASELINE = "baseline"


def open_any(model: Any, *, tracking_uri: str | None = None, argument: str = "model") -> Model:
    """The Model ``model`` is or names: a Model as it is; a bundle folder read as is (no MLflow, no tracking
    code); a run id (``runs:/ID``, the bare id) or a registry reference looked up in ``tracking_uri``."""
    if isinstance(model, Model):
        return model
    if not isinstance(model, str | PathLike) or not str(model).strip():
        raise ModelError(f"{argument} takes a Model (mlengineer.load(...), mlengineer.train(...)) or what names one: a "
                         f"bundle folder, a run id or models:/NAME@ALIAS; got {_what(model)}.")
    if Path(model).exists():
        from ..bundle.model import load

        return load(Path(model))
    from ..tracking.lookup import open_model

    return open_model(str(model), tracking_uri=tracking_uri)


def rows_of(data: Any) -> Any:
    """Rows as given (a DataFrame, records, one record), or a table file's rows read as the CLI reads them."""
    if isinstance(data, str | PathLike):
        from ..data.load import load_table

        return load_table(Path(data))
    return data


def evaluate(model: Any, data: Any, *, n_boot: int = 200, seed: int = 0, slices: bool = True,
             weights: bool = True, tracking_uri: str | None = None) -> dict[str, Any]:
    """What ``mlengineer evaluate MODEL DATA`` reports, as a dict: metrics with bootstrap intervals (``n_boot``
    resamples), the constant baseline, curves, calibration, slices (``slices=False``: none). ``model``: a Model,
    a bundle folder, a run id or ``models:/NAME@ALIAS`` (in ``tracking_uri``); ``data``: a DataFrame, records or
    a table file holding the target, at least 10 labelled rows. Rows count for the model's weight column where
    ``data`` holds it, unless ``weights`` is False."""
    from ..evaluation.evaluate import evaluate as run

    return run(open_any(model, tracking_uri=tracking_uri), rows_of(data), n_boot=n_boot, seed=seed, slices=slices,
               weights=weights)


def compare_models(a: Any, b: Any, data: Any, *, metric: str | None = None, n_boot: int = 1000, seed: int = 0,
                   alpha: float = 0.05, weights: bool = True, tracking_uri: str | None = None) -> dict[str, Any]:
    """What ``mlengineer compare A B --data DATA`` says, as a dict: both scores on the labelled ``data`` (a
    DataFrame, records or a table file), their difference with its interval and a paired test at level
    ``alpha``. ``a`` and ``b`` are models or what names them (see ``evaluate``); either may be ``"baseline"``,
    a constant answer."""
    from ..evaluation.compare import compare_models as run

    def side(m: Any, argument: str) -> Any:
        return m if isinstance(m, str) and m == BASELINE else open_any(m, tracking_uri=tracking_uri, argument=argument)

    return run(side(a, "a"), side(b, "b"), rows_of(data), metric=metric, n_boot=n_boot, seed=seed, alpha=alpha,
               weights=weights)


def recalibrate(model: Model, data: Any = None, *, method: str = "auto", cost_fp: float | None = None,
                cost_fn: float | None = None, target_precision: float | None = None,
                target_recall: float | None = None, seed: int = 0, weights: bool = True,
                positive_class: Any = None) -> dict[str, Any]:
    """What ``mlengineer calibrate`` does, on a loaded ``model``, which it changes in place (``model.save(path)``
    keeps the change): refit its probability calibrator and conformal scores on ``data`` (labelled rows the
    model never saw: a DataFrame, records or a table file; by default the validation rows it kept), and choose a
    binary model's decision threshold by ``cost_fp``/``cost_fn``, ``target_precision`` or ``target_recall``.
    ``positive_class``: the class the threshold is about (default: the second in sorted order). Returns what was
    done, with the calibration error before and after."""
    from ..evaluation.threshold import positive_index
    from ..evaluation.uncertainty import recalibrate as run

    if not isinstance(model, Model):
        raise ModelError(f"recalibrate changes the model it is given, so it needs a loaded one; got {_what(model)}: "
                         "model = mlengineer.load(...), then recalibrate(model, ...) and model.save(...) to keep it.")
    return run(model, None if data is None else rows_of(data), method=method, cost_fp=cost_fp, cost_fn=cost_fn,
               target_precision=target_precision, target_recall=target_recall, seed=seed, weights=weights,
               positive=None if positive_class is None else positive_index(model, positive_class,
                                                                           option="positive_class"))


def explain_rows(model: Any, data: Any, *, top: int = 5, target_class: Any = None,
                 tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """What ``mlengineer explain MODEL ROWS`` says, one dict a row: the prediction, the base value and the ``top``
    columns that moved it most, each with its value and contribution (they add up to the output). ``data``: a
    DataFrame, records, one record or row (``df.iloc[0]``), or a table file; ``target_class``: the class whose
    probability is explained (default: a binary model's second class, a multiclass model's predicted one)."""
    from ..explain.contributions import explain_rows as run

    return run(open_any(model, tracking_uri=tracking_uri), rows_of(data), top=top, target_class=target_class)


def _what(value: Any) -> str:
    return repr(value) if value is None or isinstance(value, str | PathLike) else type(value).__name__
