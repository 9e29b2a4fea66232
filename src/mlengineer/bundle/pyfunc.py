"""The MLflow pyfunc wrapper of a bundle, so that MLflow's own loaders and servers can use it."""

from __future__ import annotations

import warnings
from pathlib import Path

from mlflow.pyfunc.model import PythonModel

__all__ = ["BundlePythonModel"]

with warnings.catch_warnings():
    # MLflow asks for type hints on predict to build a schema; the bundle carries its own signature
    warnings.simplefilter("ignore")

    class BundlePythonModel(PythonModel):
        """Loads the bundle's own files and predicts one row per input row (prediction, probabilities)."""

        # the bundle validates its own input (schema and cleaning plan): no type-hint validation by MLflow,
        # and none of its advice about type hints on every save
        _skip_type_hint_validation = True

        def load_context(self, context):
            from .model import BUNDLE_SUBDIR, load

            root = Path(context.artifacts["bundle"])
            for _ in BUNDLE_SUBDIR.parts:
                root = root.parent
            self._model = load(root)

        def predict(self, context, model_input, params=None):
            return self._model.predict_frame(model_input)
