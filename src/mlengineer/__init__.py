"""mlengineer: from a raw table of real-world data to a tested, explained, served and monitored model.

    >>> import mlengineer
    >>> model = mlengineer.train("salaries.csv", target="salary_in_usd", time_budget=60)  # doctest: +SKIP
    >>> model.predict(rows)                                                               # doctest: +SKIP
    >>> model.save("salary-model"); mlengineer.load("salary-model")                        # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .api import load, train
from .config import TrainConfig
from .errors import ConfigError, DataError, MLEngineerError, ModelError, SchemaError, ServingError
from .estimators import AutoClassifier, AutoRegressor
from .model import Model

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
