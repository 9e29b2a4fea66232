"""The training run, start to end: read the table, train, build the bundle, save it and record the run."""

from __future__ import annotations

import difflib
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from ..bundle.model import Model
from ..bundle.store import StagedBundle, check_destination, commit_bundle, discard_bundle, stage_bundle
from ..data.formats import written_marks
from ..data.images import image_root, table_folder
from ..data.load import as_read, load_table, unread
from ..errors import ConfigError, DataError, MLEngineerError
from ..training.config import TrainConfig
from ..training.trainer import Progress, check_columns, fit_pipeline, no_progress
from .build import build_model

__all__ = ["check_data", "check_named_columns", "default_name", "save_and_track", "train"]


def train(
    data: pd.DataFrame | str | Path,
    target: str | None = None,
    *,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    track: bool = True,
    name: str | None = None,
    progress: Progress = no_progress,
    **options: Any,
) -> Model:
    """Train a model on ``data`` (a DataFrame or a file path) to predict ``target``: the run behind the command
    and ``mlengineer.train`` (``public.train``, which lists the options as its arguments and says its messages
    in their names).

    ``options`` are TrainConfig fields (``time_budget``, ``metric``, ``task``, ``seed``, ``weight_column``: a
    column of row weights, which predicting never needs, ...). With ``out``
    the bundle is saved there; with ``track`` the run is recorded in MLflow (``tracking_uri``, ./mlruns.db
    if unset). ``name`` names the model (the server, the run, the report and ``compare`` say it); by
    default the ``out`` folder's name.

    >>> model = train("salaries.csv", target="salary_in_usd", time_budget=30)  # doctest: +SKIP
    """
    if config is None:
        config = TrainConfig.build(target=target, **options)
    elif target is not None or options:
        config = TrainConfig.build(**{**config.model_dump(), **({"target": target} if target else {}), **options})
    if out is not None:
        check_destination(out)  # before training: a wrong --out costs no training time
    if config.engine == "spark":  # the spark stage stands above this one: it calls us, not the other way
        raise ConfigError("engine 'spark' trains on Spark: run 'mlengineer train DATA --engine spark', or call "
                          "mlengineer.spark.train_spark(...) from Python.")
    check_data(data)
    source = None
    if not isinstance(data, pd.DataFrame):
        source = str(data)
        data = load_table(data, marks=written_marks(None, config.column_roles))  # a role's text as written
    elif unread(data):  # a frame handed over: read as a file of it would be (nested objects, lists, zoned times)
        data = as_read(data.copy())
    check_named_columns(data, config)  # before the store: a mistyped column leaves no ./mlruns.db behind
    check_columns(data, config)  # a mistyped target
    if track:  # before training too (after reading: a wrong path leaves no store): no training time lost
        from ..tracking.runs import prepare_recording

        prepare_recording(config.tracking_uri)  # the store opens; a run open in this thread can be the parent
    with image_root(table_folder(data)):  # image paths in the table are relative to its folder
        result = fit_pipeline(data, config, progress=progress)
        model = build_model(result, data, name=name or default_name(out, source, config.target), source=source)
    return save_and_track(model, result, out=out, track=track)


def check_data(data: Any) -> None:
    """Refuse what ``train`` cannot read as a table, naming what it got."""
    if isinstance(data, pd.DataFrame):
        odd = [c for c in data.columns if not isinstance(c, str)]
        if odd:
            raise DataError(f"The data's column names must be text; {odd[0]!r} ({type(odd[0]).__name__}) is not: "
                            "rename them first, e.g. df.columns = df.columns.astype(str).")
        if data.empty:
            what = "no rows" if not len(data) else "no columns"
            raise DataError(f"The data holds {what} ({data.shape[0]:,} rows x {data.shape[1]:,} columns): train "
                            "needs labelled rows of columns.")
        twice = data.columns[data.columns.duplicated()]
        if len(twice):
            raise DataError(f"The data names the column {twice[0]!r} twice (a pd.concat(axis=1) of frames that "
                            "share a column?): give each column its own name.")
    elif not isinstance(data, str | PathLike):
        raise DataError(f"data must be a pandas DataFrame or the path of a table file; got {type(data).__name__}: "
                        "pass pd.DataFrame(data), or use AutoClassifier / AutoRegressor for arrays.")


def check_named_columns(data: pd.DataFrame, config: TrainConfig) -> None:
    """The columns the options name beside the target (--drop, --keep, --column-role, --group-column,
    --time-column) are in ``data``, or the one-line DataError naming the first that is not, with the closest of
    the table's names and its columns, as a mistyped target's does. A target the table lacks is left to
    ``check_columns``, which says it first."""
    if config.target not in data.columns:
        return
    said = config.said
    named = [*((said("drop", "--drop", c), c) for c in config.drop),
             *((said("keep", "--keep", c), c) for c in config.keep),
             *((said("column_roles", "--column-role", c), c) for c in config.column_roles),
             (said("group_column", "--group-column"), config.group_column),
             (said("time_column", "--time-column"), config.time_column)]
    columns = [str(c) for c in data.columns]
    for flag, column in named:
        if column is None or column in data.columns:
            continue
        near = [c for c in columns if c.casefold() == column.casefold()] or \
            difflib.get_close_matches(column, columns, n=1, cutoff=0.6)
        shown = ", ".join(columns[:30]) + (", ..." if len(columns) > 30 else "")
        raise DataError(f"{flag} names the column {column!r}, which the data does not have"
                        f"{f' (did you mean {near[0]!r}?)' if near else ''}; its columns are: {shown}.")


def save_and_track(model: Model, result: Any, *, out: str | Path | None, track: bool) -> Model:
    """The last step of every training run, in memory or on Spark: save ``model`` to ``out`` (when given)
    and record the run in MLflow (when ``track``), the bundle written inside the run so it knows its id.

    A trained model is never thrown away for the store's sake: when the run cannot be recorded, the bundle is
    saved to ``out`` all the same and the error says so (and carries the model as its ``model``). The bundle is
    written beside ``out`` and moved into place once the run is recorded: on Ctrl-C the run ends KILLED, ``out``
    keeps what it held before (nothing, or an older bundle) and no staging folder is left beside it."""
    config = result.config
    if not track:
        if out is not None:
            model.save(out)
        return model
    import shutil
    import tempfile

    from ..tracking.runs import log_training_run

    scratch: list[Path] = []
    staged: list[StagedBundle] = []
    failed: list[BaseException] = []

    def save(run_id: str) -> Path | None:
        model.metadata["run_id"] = run_id  # in the saved bundle too: it was written inside the run
        try:
            if out is not None:
                staged.append(stage_bundle(model, out))
                return staged[0].folder
            scratch.append(Path(tempfile.mkdtemp(prefix="mlengineer-run-")))  # the run keeps the bundle all the
            return model.save(scratch[0] / "model")  # same, so that mlengineer.load(run_id) opens it
        except BaseException as e:
            failed.append(e)
            raise

    try:
        log_training_run(model, result, tracking_uri=config.tracking_uri, experiment=config.experiment,
                         run_name=model.name, save=save, bundle_at=out)
        if staged:
            model.path = commit_bundle(staged[0])
    except KeyboardInterrupt:
        if out is not None:
            _remove_own_staging(Path(out))
        raise
    except MLEngineerError as e:
        if failed and e is failed[0]:
            raise
        raise _not_recorded(e, model, out, staged) from None
    finally:
        for folder in scratch:
            shutil.rmtree(folder, ignore_errors=True)
            model.path = None  # the scratch copy is gone; the run holds the bundle
        for bundle in staged:
            discard_bundle(bundle)  # moved into place by now, or never to be
    return model


def _not_recorded(error: MLEngineerError, model: Model, out: str | Path | None,
                  staged: list[StagedBundle]) -> MLEngineerError:
    """The store's error, saying where the trained model is all the same (saved to ``out`` if it was not yet)."""
    saved: list[Path] = []
    if staged:  # written inside the run, which could not be ended: moved into place all the same
        saved.append(commit_bundle(staged[0]))
        model.path = saved[0]
    elif out is not None:
        model.metadata.pop("run_id", None)  # no run holds it
        saved.append(model.save(out))
    where = (f"the model is saved in {str(saved[0])!r} all the same" if saved else
             "the model was not saved (pass out= to keep it on disk); it is on this error's .model")
    recorded = type(error)(f"{error} The training's run was not recorded: {where}.")
    recorded.model = model  # type: ignore[attr-defined]
    return recorded


def _remove_own_staging(out: Path) -> None:
    """The staging folders this process left beside ``out`` when Ctrl-C cut it (any other process's are swept
    by the next save once it is gone)."""
    import shutil

    from ..data.files import owner_tag

    dest = out.expanduser().resolve()
    if dest.parent.is_dir():
        for leftover in dest.parent.glob(f".{dest.name}.staging-{owner_tag()}-*"):
            shutil.rmtree(leftover, ignore_errors=True)


def default_name(out: str | Path | None, source: str | None, target: str | None) -> str:
    """A model's name when none is given: the folder it is saved to (``--out churn-model`` names it
    churn-model), else the data file's name without suffixes, else its target."""
    if out is not None and Path(out).name:
        return Path(out).name
    if source:
        return Path(source).name.split(".")[0]
    return target or "model"
