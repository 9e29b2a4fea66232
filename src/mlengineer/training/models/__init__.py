"""Model families, one module each, registered under a key in ``FAMILIES``.

Adding a family is one new module in this folder, with ``@register`` on its ``ModelFamily`` subclass,
and its name in ``FAMILY_MODULES``; a family defined elsewhere (a plugin, a test) calls ``register(cls)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from .base import (
    COST_REFERENCE,
    FAMILIES,
    Attribution,
    FitContext,
    FittedModel,
    ModelFamily,
    get_family,
    register,
    unregister,
)
from .threads import choose_wait_policy

# how OpenMP threads wait (LightGBM, XGBoost, torch), read when those libraries load: ``threads.py``
choose_wait_policy()

__all__ = ["COST_REFERENCE", "FAMILIES", "FAMILY_MODULES", "Attribution", "FitContext", "FittedModel",
           "ModelFamily", "get_family", "load_all", "register", "requirements_of", "unregister"]

#: the built-in families' modules: each registers its families when imported
FAMILY_MODULES = ("linear", "forest", "lightgbm", "xgboost", "catboost", "knn", "svm", "mlp", "tabm", "text", "cnn")


def load_all() -> dict[str, ModelFamily]:
    """Import every family module so that each registers itself; returns the registry."""
    for name in FAMILY_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return FAMILIES


def requirements_of(family_names: Iterable[str]) -> list[str]:
    """The pip packages that models of these families need to predict, sorted, each once:
    ``requirements_of(["lightgbm", "mlp"]) == ["lightgbm", "torch"]``. Unknown names are skipped."""
    registry = load_all()
    return sorted({pkg for name in family_names if name in registry for pkg in registry[name].packages})
