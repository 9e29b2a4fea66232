"""The training run, start to end: read the table, train, build the bundle, save it and record the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..bundle.model import Model
from ..data.load import load_table
from ..training.config import TrainConfig
from ..training.trainer import Progress, fit_pipeline, no_progress
from .build import build_model

__all__ = ["train"]


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
    """Train a model on ``data`` (a DataFrame or a file path) to predict ``target``.

    ``options`` are TrainConfig fields (``time_budget``, ``metric``, ``task``, ``seed``, ...). With ``out``
    the bundle is saved there; with ``track`` the run is recorded in MLflow.

    >>> model = train("salaries.csv", target="salary_in_usd", time_budget=30)  # doctest: +SKIP
    """
    if config is None:
        config = TrainConfig.build(target=target, **options)
    elif target is not None or options:
        config = TrainConfig.build(**{**config.model_dump(), **({"target": target} if target else {}), **options})
    source = None
    if not isinstance(data, pd.DataFrame):
        source = str(data)
        data = load_table(data)
    result = fit_pipeline(data, config, progress=progress)
    model = build_model(result, data, name=name or (Path(source).name.split(".")[0] if source else config.target),
                        source=source)
    if not track:
        if out is not None:
            model.save(out)
        return model
    from ..tracking.runs import log_training_run

    def save(run_id: str) -> Path | None:
        model.metadata["run_id"] = run_id  # in the saved bundle too: it was written inside the run
        return model.save(out) if out is not None else None

    log_training_run(model, result, tracking_uri=config.tracking_uri, experiment=config.experiment,
                     run_name=model.name, save=save)
    return model
