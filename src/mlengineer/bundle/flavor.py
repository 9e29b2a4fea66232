"""The MLflow side of a bundle folder: MLmodel with a pyfunc flavour, its signature and its requirements.

The flavour names a loader module (``mlengineer.bundle.pyfunc``) rather than a pickled Python object, so
``mlflow.pyfunc.load_model(path)`` imports mlengineer and reads the bundle's own files; nothing of MLflow's
is unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["LOADER_MODULE", "families_used", "ignored_columns", "requirements", "save_flavor"]

LOADER_MODULE = "mlengineer.bundle.pyfunc"
#: what every bundle needs to predict, whatever its models
_BASE_PACKAGES = ("mlengineer", "numpy", "pandas", "scikit-learn", "joblib")


def _signature(model: Any) -> Any:
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec
    from mlflow.types.schema import Schema as MlflowSchema

    # every input as Any: MLflow's own type check is stricter than the bundle's cleaning plan, which reads each
    # column by its role and names a bad value itself (MLflow refused a NaN in a column of whole numbers, a
    # date as datetime64 where the table held text, "1" for a category of numbers, 1 for a column of decimals)
    cols: list[Any] = [ColSpec(AnyType(), name, required=True) for name in model.feature_names]
    # the training table's other columns (an identifier, a dropped column, the target, the weights), which the
    # model takes and ignores: optional inputs, so that MLflow passes them without a warning on every call
    cols += [ColSpec(AnyType(), name, required=False) for name in ignored_columns(model)]
    outputs: list[Any] = [ColSpec("string" if model.task.is_classification else "double", "prediction")]
    outputs += [ColSpec("double", f"proba_{c}") for c in model.classes]
    # MLflow hands a pyfunc only the params its signature declares: without this, predict(df, params=
    # {"interval": 0.9}) dropped the interval with a warning
    params = ParamSchema([ParamSpec("interval", "double", None)])
    return ModelSignature(inputs=MlflowSchema(cols), outputs=MlflowSchema(outputs), params=params)


def ignored_columns(model: Any) -> list[str]:
    """The columns of the training table that are no features: rows may hold them, and the model ignores them."""
    features = set(model.feature_names)
    names = [*(c.name for c in model.schema.columns), model.target, model.metadata.get("weight_column")]
    return [n for n in dict.fromkeys(n for n in names if n) if n not in features]


def families_used(metadata: dict[str, Any]) -> set[str]:
    """The model families whose fitted models the bundle predicts with."""
    board = {row.get("model"): row.get("family") for row in metadata.get("leaderboard", [])}
    names = [m.get("model") for m in metadata.get("ensemble") or []]
    if not names and metadata.get("leaderboard"):
        names = [metadata["leaderboard"][0].get("model")]
    return {str(board.get(n, n)) for n in names}


def requirements(metadata: dict[str, Any]) -> list[str]:
    """The bundle's pip requirements, pinned to the versions it was trained with: the base packages and
    those the families of its models name (torch only where a neural network is one of them), so that
    serving it elsewhere (``mlflow models serve``) installs what it needs."""
    from importlib.metadata import PackageNotFoundError, version

    from ..training.models import requirements_of

    # pyarrow is left to mlengineer's own range: predicting does not need it, and a pin of today's release
    # conflicts with full MLflow's upper bound (mlflow 3.17 wants pyarrow<26)
    reqs = []
    families = requirements_of(sorted(families_used(metadata)))
    for pkg in dict.fromkeys([*_BASE_PACKAGES, *families, *metadata.get("feature_packages", [])]):
        try:
            reqs.append(f"{pkg}=={version(pkg).split('+')[0]}")  # no local label (torch's +cpu): pip finds it
        except PackageNotFoundError:
            continue
    return reqs


def save_flavor(dest: Path, artifacts: Path, model: Any) -> None:
    """Write the MLflow model folder ``dest`` around ``artifacts`` (the folder holding ``bundle/``)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import logging
    import warnings

    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    logging.getLogger("mlflow.models.model").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's advice on input examples, not the user's concern
        import mlflow.pyfunc

        mlflow.pyfunc.save_model(
            path=str(dest), loader_module=LOADER_MODULE, data_path=str(artifacts),
            signature=_signature(model), pip_requirements=requirements(model.metadata),
            metadata={"mlengineer_task": model.task.kind, "mlengineer_target": model.target},
        )
        # MLflow copies the data folder under data/; the bundle keeps its documented place, artifacts/
        from mlflow.models import Model as MLmodel

        (dest / "data" / artifacts.name).rename(dest / artifacts.name)
        (dest / "data").rmdir()
        spec = MLmodel.load(str(dest / "MLmodel"))
        spec.flavors["python_function"]["data"] = artifacts.name
        spec.save(str(dest / "MLmodel"))
