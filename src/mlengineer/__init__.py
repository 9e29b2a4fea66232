"""mlengineer: from a raw table of real-world data to a tested, explained, served and monitored model.

    >>> import mlengineer
    >>> model = mlengineer.train("salaries.csv", target="salary_in_usd", time_budget=60)  # doctest: +SKIP
    >>> model.predict(rows)                                                               # doctest: +SKIP
    >>> model.save("salary-model"); mlengineer.load("salary-model")                        # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, DataError, MLEngineerError, ModelError, SchemaError, ServingError
from .training.config import TrainConfig

if TYPE_CHECKING:
    from .bundle.model import Model
    from .pipeline.estimators import AutoClassifier, AutoRegressor
    from .pipeline.run import train

# the heavy parts (learners, pandas pipelines) load on first use, so the CLI and `import mlengineer` start fast
_LAZY = {"train": "pipeline.run", "AutoClassifier": "pipeline.estimators",
         "AutoRegressor": "pipeline.estimators", "Model": "bundle.model"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlengineer' has no attribute {name!r}")


def load(model: str | Path, *, tracking_uri: str | None = None) -> Model:
    """The model ``model`` names: a bundle folder (``train(..., out=...)``, ``Model.save``), the id of an MLflow
    run that recorded one (``runs:/ID`` or the bare id, looked up in ``tracking_uri``, ./mlruns.db by default),
    or a registry reference (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``)."""
    if Path(model).exists():  # a folder is read as is: no MLflow, no tracking code
        from .bundle.model import load as read

        return read(model)
    from .tracking.lookup import open_model

    return open_model(str(model), tracking_uri=tracking_uri)


try:
    __version__ = version("mlengineer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "AutoClassifier",
    "AutoRegressor",
    "ConfigError",
    "DataError",
    "MLEngineerError",
    "Model",
    "ModelError",
    "SchemaError",
    "ServingError",
    "TrainConfig",
    "__version__",
    "load",
    "train",
]
