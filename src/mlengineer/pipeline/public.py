"""The Python face of the commands: ``mlengineer.train`` with its options as arguments, and the commands that
judge a model, ``mlengineer.evaluate``, ``compare_models``, ``recalibrate`` and ``explain_rows``, which take a
model or what names one (a bundle folder, a run id, ``models:/NAME@ALIAS``) and rows as a DataFrame, records
or a table file, and answer what the commands say.

    >>> result = mlengineer.evaluate("churn-model", "test.csv")                  # doctest: +SKIP
    >>> mlengineer.compare_models("churn-model", "baseline", test_df)["verdict"]  # doctest: +SKIP

The messages these share with the CLI name the Python argument where the CLI's name its flag: ``drop=`` for
``--drop``, ``weight_column='w'`` for ``--weight-column w`` (``ARGUMENTS``, from TrainConfig's fields).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from ..bundle.model import RECALIBRATE, Model
from ..bundle.rows import read_marks
from ..errors import Argument, ConfigError, ModelError, python_words, said_in_python
from ..training.config import TrainConfig, flag_arguments

__all__ = ["ARGUMENTS", "PHRASES", "compare_models", "evaluate", "explain_rows", "open_any", "recalibrate", "train"]

#: the CLI's flags as the Python face's arguments: TrainConfig's fields, then the commands' own options
ARGUMENTS: dict[str, Argument] = {
    **flag_arguments(), "--out": Argument("out"), "--name": Argument("name"), "--config": Argument("config"),
    "--no-track": Argument("track=False", "switch"), "--data": Argument("data"),
    "--no-weights": Argument("weights=False", "switch"), "--cost-fp": Argument("cost_fp", "number"),
    "--cost-fn": Argument("cost_fn", "number"), "--target-precision": Argument("target_precision", "number"),
    "--target-recall": Argument("target_recall", "number"), "--positive-class": Argument("positive_class"),
    "--top": Argument("top", "number"), "--class": Argument("target_class"),
}
#: what a message suggests running, said as the call that does it
PHRASES = {**RECALIBRATE, "validation: kfold in the --config file": "validation='kfold'",
           # a config file's words for its values, as Python writes them
           " (or one '- a' per line in YAML)": "", "takes true or false": "takes True or False",
           "takes a mapping of name: value": "takes a dict of name: value",
           " (or one '- name' per line in YAML)": ""}

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


def train(data: pd.DataFrame | str | Path, target: str | None = None, *, time_budget: float = 60.0,
          metric: str | None = None, task: str = "auto", families: list[str] | str | None = None,
          drop: list[str] | str | None = None, keep: list[str] | str | None = None,
          column_roles: dict[str, str] | None = None, weight_column: str | None = None,
          group_column: str | None = None, time_column: str | None = None, validation: str = "auto",
          holdout_fraction: float = 0.2, calibration_fraction: float = 0.0, seed: int = 0,
          max_predict_ms_per_row: float | None = None, max_models: int | None = None,
          ensemble_metric: str | None = None, ensemble_lean_se: float | None = 1.0, target_transform: str = "auto",
          tune: bool = True,
          max_search_rows: int | None = None, n_jobs: int = 0, engine: str = "local", spark_master: str | None = None,
          spark_conf: dict[str, str] | None = None, tracking_uri: str | None = None, experiment: str = "mlengineer",
          out: str | Path | None = None, track: bool = True, name: str | None = None,
          config: TrainConfig | None = None, progress: Callable[..., None] | None = None) -> Model:
    """Train a model on ``data`` (a DataFrame or a table file's path) to predict its column ``target``.

    The search: ``time_budget`` seconds in all; ``metric`` to optimise (the task's default if None); ``task``
    auto, binary, multiclass or regression; ``families`` to try (a name or a list; all if None). The columns:
    ``drop`` (never features), ``keep`` (kept though the audit would drop them), ``column_roles`` (column ->
    role), ``weight_column`` (row weights), ``group_column`` (a group's rows on one side of a split),
    ``time_column`` (validate on the latest rows). The rest are TrainConfig's fields of the same names (see its
    documentation). ``out``: the folder the bundle is saved to; ``track``: record the run in MLflow
    (``tracking_uri``, ./mlruns.db if None; ``experiment``); ``name``: the model's name (the ``out`` folder's by
    default). ``config``: a TrainConfig to start from, whose fields the arguments given other values than
    their defaults override; ``progress``: called as the search goes (the command's progress bar). Messages
    name these arguments (``drop=``), as the command's name its flags.

    >>> model = train("salaries.csv", target="salary_in_usd", time_budget=30)  # doctest: +SKIP
    """
    from ..training.trainer import no_progress
    from .run import train as run

    if progress is not None and not callable(progress):
        raise ConfigError(f"progress= takes a function called as the search goes (or None); got "
                          f"{type(progress).__name__}.")

    given = locals()
    options = {k: given[k] for k, field in TrainConfig.model_fields.items()
               if k in given and k != "target" and given[k] != (None if field.default_factory else field.default)}
    with said_in_python(ARGUMENTS, PHRASES):
        model = run(data, target, config=config, out=out, track=track, name=name, progress=progress or no_progress,
                    **options)
    say_what_training_did(model)
    return model


#: where the Python face says what training did to the table: ``logging.getLogger("mlengineer")``
log = logging.getLogger("mlengineer")


def say_what_training_did(model: Model) -> None:
    """Log what the command prints of the table after training: each finding of the audit that changed what
    the model learns from (a column dropped, a leaky one above all; rows dropped; a column kept as asked) at
    WARNING, which a notebook shows unless told otherwise, and the other findings and the columns kept and
    dropped, each with its reason, at INFO. Logging, not ``warnings``: it reports what a run did (every run,
    not once a line of code as warnings are shown), and ``log.setLevel`` quiets or widens it."""
    meta = model.metadata
    kept = set((meta.get("config") or {}).get("keep") or [])
    for f in meta.get("findings", []):
        done = ("rows dropped" if f.get("action") == "drop_rows" else
                ("kept (keep=)" if f.get("column") in kept else "column dropped")
                if f.get("action") == "drop_column" and f["severity"] == "error" else "")
        if f["severity"] != "info" or done:
            column = f"column {f['column']!r}: " if f.get("column") else ""
            said = f"{f['message']}{f' ({done})' if done else ''} {f.get('suggestion') or ''}".strip()
            log.log(logging.WARNING if done else logging.INFO, "Data audit, %s%s", column, python_words(said, ARGUMENTS))
    dropped = model.plan.dropped_columns
    reasons = "; ".join(f"{c}: {python_words(str(why), ARGUMENTS).rstrip('.')}" for c, why in dropped.items())
    log.info("Cleaning: kept %d feature columns%s.", len(model.feature_names),
             f"; dropped {len(dropped)} ({reasons})" if dropped else "")


def rows_of(data: Any, model: Any = None) -> Any:
    """Rows as given (a DataFrame, records, one record), or a table file's rows read as the CLI reads them: a
    ``model``'s (a Model; a baseline is none) with the thousands dots and decimal commas of its training file."""
    if isinstance(data, str | PathLike):
        from ..data.load import load_table

        return load_table(Path(data), marks=read_marks(model.metadata) if isinstance(model, Model) else None)
    return data


def evaluate(model: Any, data: Any, *, n_boot: int = 200, seed: int = 0, slices: bool = True,
             weights: bool = True, tracking_uri: str | None = None) -> dict[str, Any]:
    """What ``mlengineer evaluate MODEL DATA`` reports, as a dict: metrics with bootstrap intervals (``n_boot``
    resamples), the constant baseline, curves, calibration, slices (``slices=False``: none). ``model``: a Model,
    a bundle folder, a run id or ``models:/NAME@ALIAS`` (in ``tracking_uri``); ``data``: a DataFrame, records or
    a table file holding the target, at least 10 labelled rows. Rows count for the model's weight column where
    ``data`` holds it, unless ``weights`` is False."""
    from ..evaluation.evaluate import evaluate as run

    with said_in_python(ARGUMENTS, PHRASES):
        model = open_any(model, tracking_uri=tracking_uri)
        return run(model, rows_of(data, model), n_boot=n_boot, seed=seed, slices=slices, weights=weights)


def compare_models(a: Any, b: Any, data: Any, *, metric: str | None = None, n_boot: int = 1000, seed: int = 0,
                   alpha: float = 0.05, weights: bool = True, tracking_uri: str | None = None) -> dict[str, Any]:
    """What ``mlengineer compare A B --data DATA`` says, as a dict: both scores on the labelled ``data`` (a
    DataFrame, records or a table file), their difference with its interval and a paired test at level
    ``alpha``. ``a`` and ``b`` are models or what names them (see ``evaluate``); either may be ``"baseline"``,
    a constant answer."""
    from ..evaluation.compare import compare_models as run

    def side(m: Any, argument: str) -> Any:
        return m if isinstance(m, str) and m == BASELINE else open_any(m, tracking_uri=tracking_uri, argument=argument)

    with said_in_python(ARGUMENTS, PHRASES):
        first, second = side(a, "a"), side(b, "b")
        return run(first, second, rows_of(data, first if isinstance(first, Model) else second), metric=metric, n_boot=n_boot, seed=seed,
                   alpha=alpha, weights=weights)


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
    with said_in_python(ARGUMENTS, PHRASES):
        return run(model, None if data is None else rows_of(data, model), method=method, cost_fp=cost_fp,
                   cost_fn=cost_fn, target_precision=target_precision, target_recall=target_recall, seed=seed,
                   weights=weights, positive=None if positive_class is None else positive_index(
                       model, positive_class, option="positive_class"))


def explain_rows(model: Any, data: Any, *, top: int = 5, target_class: Any = None,
                 tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """What ``mlengineer explain MODEL ROWS`` says, one dict a row: the prediction, the base value and the ``top``
    columns that moved it most, each with its value and contribution (they add up to the output). ``data``: a
    DataFrame, records, one record or row (``df.iloc[0]``), or a table file; ``target_class``: the class whose
    probability is explained (default: a binary model's second class, a multiclass model's predicted one)."""
    from ..explain.contributions import explain_rows as run

    with said_in_python(ARGUMENTS, PHRASES):
        model = open_any(model, tracking_uri=tracking_uri)
        return run(model, rows_of(data, model), top=top, target_class=target_class)


def _what(value: Any) -> str:
    return repr(value) if value is None or isinstance(value, str | PathLike) else type(value).__name__
