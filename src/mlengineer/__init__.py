"""mlengineer: from a raw table of real-world data to a tested, explained, served and monitored model.

    >>> import mlengineer
    >>> model = mlengineer.train("salaries.csv", target="salary_in_usd", time_budget=60)  # doctest: +SKIP
    >>> model.predict(rows)                                                               # doctest: +SKIP
    >>> model.save("salary-model"); mlengineer.load("salary-model")                        # doctest: +SKIP
    >>> mlengineer.evaluate("salary-model", "test.csv")["metrics"]                          # doctest: +SKIP

``evaluate``, ``compare_models``, ``recalibrate`` and ``explain_rows`` do what the commands of those names do,
taking a model or what names one, and rows as a DataFrame, records or a table file.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    DataError,
    InputWarning,
    MLEngineerError,
    ModelError,
    SchemaError,
    ServingError,
)
from .training.config import TrainConfig

if TYPE_CHECKING:
    from .bundle.model import Model
    from .pipeline.estimators import AutoClassifier, AutoRegressor

    # on the package, not in __all__ (which names the classes and train/load): the judging commands' Python face
    from .pipeline.public import compare_models as compare_models
    from .pipeline.public import evaluate as evaluate
    from .pipeline.public import explain_rows as explain_rows
    from .pipeline.public import recalibrate as recalibrate
    from .pipeline.public import train

# the heavy parts (learners, pandas pipelines) load on first use, so the CLI and `import mlengineer` start fast
_LAZY = {"train": "pipeline.public", "AutoClassifier": "pipeline.estimators",
         "AutoRegressor": "pipeline.estimators", "Model": "bundle.model", "evaluate": "pipeline.public",
         "compare_models": "pipeline.public", "recalibrate": "pipeline.public", "explain_rows": "pipeline.public"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlengineer' has no attribute {name!r}")


def __dir__() -> list[str]:
    """What a notebook's completion offers: the public names, the lazy ones included (not the imports)."""
    return sorted({*__all__, *_LAZY, "errors"})


def load(model: str | Path, *, tracking_uri: str | None = None) -> Model:
    """The model ``model`` names: a bundle folder (``train(..., out=...)``, ``Model.save``), the id of an MLflow
    run that recorded one (``runs:/ID`` or the bare id, looked up in ``tracking_uri``, ./mlruns.db by default),
    or a registry reference (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``)."""
    if not isinstance(model, str | PathLike) or not str(model).strip():
        shown = repr(model) if model is None or isinstance(model, str) else type(model).__name__
        raise ModelError(f"load takes what names a model: a bundle folder, a run id or models:/NAME@ALIAS; got {shown}.")
    from .errors import said_in_python
    from .pipeline.public import ARGUMENTS, open_any  # a folder is read as is: no MLflow, no tracking code

    with said_in_python(ARGUMENTS):
        return open_any(model, tracking_uri=tracking_uri)


try:
    __version__ = version("mlengineer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "AutoClassifier",
    "AutoRegressor",
    "ConfigError",
    "DataError",
    "InputWarning",
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
