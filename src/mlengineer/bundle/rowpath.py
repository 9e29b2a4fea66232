"""One record, end to end, without a DataFrame: the plan, the encoder and the predictor compiled at load.

    path = RowPath.compile(model)     # None when a column is text or a picture, or a step has no row form
    raw = path.predict_raw(record)    # what ``model.predict_raw(record)`` gives, to the last bit or 1e-12

The cleaning plan becomes a converter per column (``data/row.py``), the encoder a writer per column into a
float32 row (``features/row.py``), and the predictor a tree of row functions: an ensemble's members and a
bag's fold models each answer through the family's ``row_function`` where it has one (a linear model's
formula without scikit-learn, LightGBM's single-row C call, the MLP's forward pass in numpy, k-NN's distances
by one product, CatBoost's trees walked in numpy, a forest through LightGBM's tree walker), else through
their own ``predict_raw``. A record
whose values are not plain scalars goes the usual way, so the errors are the batch path's own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import numpy as np

from ..data.row import RowCleaner, compile_row_cleaner
from ..features.row import RowEncoder, compile_row_encoder
from ..training.ensemble import row_predictor

__all__ = ["RowPath", "plan_roles", "row_predictor"]

RowFunction = Callable[[np.ndarray], np.ndarray]
_SCALARS = (str, int, float, bool, type(None), np.generic, dt.date, dt.datetime, Decimal)


class RowPath:
    """A model's single-record prediction, decided once: see the module's docstring."""

    def __init__(self, clean: RowCleaner, encode: RowEncoder, predict: RowFunction, columns: list[str]) -> None:
        self.clean = clean
        self.encode = encode
        self.predict = predict
        self.columns = columns

    @classmethod
    def compile(cls, model: Any) -> RowPath | None:
        """The row path of ``model`` (a bundle's Model), or None when part of it has no one-row form."""
        planned = plan_roles(model.plan)
        enc_roles = getattr(model.encoder, "roles_", None)
        if planned is None or enc_roles is None or any(planned.get(c) != r for c, r in enc_roles.items()):
            return None
        clean = compile_row_cleaner(model.plan)
        encode = compile_row_encoder(model.encoder)
        if clean is None or encode is None:
            return None
        return cls(clean, encode, row_predictor(model.predictor), list(model.plan.feature_columns))

    def accepts(self, record: Mapping[str, Any]) -> bool:
        """Whether every value of ``record`` the model reads is a plain scalar (anything else, a list or a
        nested object, goes through the batch path, which names what is wrong with it)."""
        for c in self.columns:
            v = record.get(c)
            if not isinstance(v, _SCALARS):
                return False
        return True

    def features(self, record: Mapping[str, Any]) -> np.ndarray:
        """The (1, features) float32 row ``Model.encode`` gives for ``record``."""
        return self.encode(self.clean(record))

    def predict_raw(self, record: Mapping[str, Any]) -> np.ndarray:
        """The predictor's raw output for ``record``: (1, k) probabilities or (1,) values (no calibrator)."""
        return self.predict(self.features(record))


def plan_roles(plan: Any) -> dict[str, str] | None:
    for step in plan.steps:
        roles = getattr(step, "roles", None)
        if isinstance(roles, dict):
            return dict(roles)
    return None
