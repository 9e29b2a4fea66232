"""The Model bundle: what a trained model is (``Model``), how it is saved and loaded, and its MLflow flavour."""

from .model import Model, load

__all__ = ["Model", "load"]
