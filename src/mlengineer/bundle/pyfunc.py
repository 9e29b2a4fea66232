"""MLflow's loader for a bundle folder (the pyfunc flavour's ``loader_module``), so that MLflow's own loaders
and servers can use it: ``mlflow.pyfunc.load_model(path).predict(df)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["BundlePyfunc"]


class BundlePyfunc:
    """A loaded bundle behind pyfunc's ``predict``: one row per input row (prediction, probabilities)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        interval = (params or {}).get("interval")
        return self.model.predict_frame(model_input, interval=interval)


def _load_pyfunc(data_path: str) -> BundlePyfunc:
    """Called by MLflow with the flavour's data folder (``MODEL_DIR/artifacts``); the name is MLflow's."""
    from .model import load

    return BundlePyfunc(load(Path(data_path).parent))
