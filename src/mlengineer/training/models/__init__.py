"""Model families, one module each, registered under a key in ``FAMILIES``."""

from __future__ import annotations

import importlib
import os

# OpenMP threads that spin while they wait make LightGBM, XGBoost and torch 5-20x slower when another
# process shares the cores; passive waiting costs little on an idle machine. Read when the libraries load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .base import FAMILIES, FitContext, FittedModel, ModelFamily, get_family, register

__all__ = ["FAMILIES", "FitContext", "FittedModel", "ModelFamily", "get_family", "load_all", "register"]

_MODULES = ("linear", "forest", "lightgbm", "xgboost", "catboost", "knn", "mlp")


def load_all() -> dict[str, ModelFamily]:
    """Import every family module so that each registers itself; returns the registry."""
    for name in _MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return FAMILIES
