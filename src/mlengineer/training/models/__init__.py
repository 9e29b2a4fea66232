"""Model families, one module each, registered under a key in ``FAMILIES``."""

from __future__ import annotations

import importlib

from .base import FAMILIES, FitContext, FittedModel, ModelFamily, get_family, register

__all__ = ["FAMILIES", "FitContext", "FittedModel", "ModelFamily", "get_family", "load_all", "register"]

_MODULES = ("linear", "forest", "lightgbm")


def load_all() -> dict[str, ModelFamily]:
    """Import every family module so that each registers itself; returns the registry."""
    for name in _MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return FAMILIES
