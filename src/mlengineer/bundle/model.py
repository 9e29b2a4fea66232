"""The Model bundle: schema + cleaning plan + feature encoder + fitted predictor + metadata, in one folder.

The folder is an MLflow model (pyfunc flavour), so ``mlflow.pyfunc.load_model(path).predict(df)`` works;
mlengineer itself reads the bundle's own files directly (no MLflow import on the serving path):

    MODEL_DIR/
      MLmodel, python_model.pkl, requirements.txt ...   MLflow's files
      artifacts/bundle/
        schema.json          the Schema contract (column roles and domains)
        cleaning_plan.json   the CleaningPlan contract
        metadata.json        task, metric, scores, leaderboard, data fingerprint, package versions, ...
        estimator.joblib     the fitted FeatureEncoder and predictor (pickled: load only bundles you trust)
        validation.npz       the validation rows' truth and predictions, for intervals and calibration

A bundle is written to a temporary folder beside its destination and renamed into place, so a failed save
leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from ..data.clean import CleaningPlan
from ..data.schema import Schema
from ..errors import ModelError, SchemaError
from ..tasks import Task

__all__ = ["BUNDLE_SUBDIR", "Model", "load"]

BUNDLE_SUBDIR = Path("artifacts") / "bundle"
FORMAT_VERSION = 1
SMALL_BATCH = 64  # up to this many rows, prediction works on column arrays instead of DataFrames


class Model:
    """A trained model, ready to predict on raw rows shaped like the training table."""

    def __init__(self, *, schema: Schema, plan: CleaningPlan, encoder: Any, predictor: Any, task: Task,
                 metadata: dict[str, Any], validation: dict[str, np.ndarray] | None = None,
                 extras: dict[str, Any] | None = None) -> None:
        self.schema = schema
        self.plan = plan
        self.encoder = encoder
        self.predictor = predictor
        self.task = task
        self.metadata = metadata
        self.validation = validation or {}
        #: fitted add-ons of later stages (calibrator, conformal scores, explainer), saved with the bundle
        self.extras: dict[str, Any] = dict(extras or {})
        self.path: Path | None = None

    # -- facts ---------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "model")

    @property
    def target(self) -> str:
        return str(self.schema.target)

    @property
    def classes(self) -> list[Any]:
        return list(self.task.classes)

    @property
    def feature_names(self) -> list[str]:
        return self.plan.feature_columns

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, task={self.task.kind!r}, target={self.target!r})"

    # -- predicting ----------------------------------------------------------------------------------------
    def to_frame(self, data: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Rows as a DataFrame: a DataFrame as is, one record, or a list of records."""
        if isinstance(data, pd.DataFrame):
            return data
        return pd.DataFrame(_records(data))

    def encode(self, data: Any) -> np.ndarray:
        """Raw rows (a DataFrame, one record, or a list of records) to the feature matrix, through the one
        cleaning code path. A few rows skip building DataFrames: the plan and the encoder work on column
        arrays with the same per-value conversions, which keeps one-row latency low."""
        if isinstance(data, pd.DataFrame):
            if len(data) == 0:
                raise SchemaError("No rows to predict: send at least one row.")
            if len(data) > SMALL_BATCH:
                return self.encoder.transform(self.plan.apply(data, training=False))
            # one conversion of the whole frame: pulling columns one by one costs ~20 us each in pandas 3
            matrix = (np.asarray([data.iloc[0].tolist()], dtype=object) if len(data) == 1
                      else data.to_numpy(dtype=object))
            position: dict[Any, int] = {}
            for i, c in enumerate(data.columns):
                position.setdefault(c, i)
            cols = {c: matrix[:, position[c]] for c in self.feature_names if c in position}
        else:
            records = _records(data)
            cols = {}
            for c in self.feature_names:
                present = [c in r for r in records]
                if any(present):
                    arr = np.empty(len(records), dtype=object)
                    arr[:] = [r.get(c) for r in records]
                    cols[c] = arr
        return self.encoder.transform(self.plan.apply_arrays(cols))

    def predict_raw(self, data: Any) -> np.ndarray:
        """Probabilities (n, k) for classification, values (n,) for regression."""
        raw = self.predictor.predict_raw(self.encode(data))
        calibrator = self.extras.get("calibrator")
        if calibrator is not None and self.task.is_classification:
            raw = calibrator.transform(raw)
        return raw

    def predict(self, data: Any) -> np.ndarray:
        """Predicted labels (classification) or values (regression), in the input's row order."""
        return self.decide(self.predict_raw(data))

    def decide(self, raw: np.ndarray) -> np.ndarray:
        """Labels or values from raw outputs. A binary model with a chosen decision threshold (set by
        ``mlengineer calibrate``) answers its positive class from that probability on, not from 50%."""
        threshold = self.extras.get("threshold")
        if threshold is not None and self.task.kind == "binary":
            return np.asarray(self.classes, dtype=object)[(raw[:, 1] >= threshold["value"]).astype(np.int64)]
        return self.task.decode(raw)

    def predict_proba(self, data: Any) -> pd.DataFrame:
        """Class probabilities, one column per class in sorted label order."""
        if not self.task.is_classification:
            raise ModelError("predict_proba needs a classification model; this one predicts values (regression).")
        raw = self.predict_raw(data)
        return pd.DataFrame(raw, columns=[str(c) for c in self.classes])

    def predict_frame(self, data: Any, *, interval: float | None = None) -> pd.DataFrame:
        """One row per input row: ``prediction``, and ``proba_<class>`` columns for classification.

        ``interval`` (a coverage such as 0.9) adds ``lower`` and ``upper`` columns for regression, and a
        ``prediction_set`` column (a JSON list of labels) for classification: conformal ranges and sets that
        hold the truth that often on rows like the calibration rows.
        """
        raw = self.predict_raw(data)
        out = pd.DataFrame({"prediction": self.decide(raw)})
        if self.task.is_classification:
            for i, c in enumerate(self.classes):
                out[f"proba_{c}"] = raw[:, i]
        if interval is not None and self.task.is_classification:
            import json

            out["prediction_set"] = [json.dumps(s, default=str) for s in self.prediction_set(raw, interval)]
        elif interval is not None:
            out["lower"], out["upper"] = self.prediction_interval(raw, interval)
        return out

    def check_interval(self, coverage: float) -> float:
        """``coverage`` as a float, or the error that ranges or sets of that coverage would raise: a coverage
        outside (0, 1), or a model without the calibration rows they are fitted on. Lets a caller fail before
        it predicts anything (Spark checks on the driver before it starts the job)."""
        from ..evaluation.intervals import check_coverage

        coverage = check_coverage(coverage)
        if self.extras.get("conformal") is None:
            if self.task.is_classification:
                raise ModelError("This model has no conformal calibration: run 'mlengineer calibrate MODEL' first.")
            if "y" not in self.validation:
                raise ModelError("This model kept no validation rows, so it cannot give prediction intervals.")
        return coverage

    def prediction_interval(self, raw: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds around regression predictions ``raw`` for the wanted ``coverage``."""
        from ..evaluation.intervals import interval_bounds

        if self.task.is_classification:
            raise ModelError("Prediction intervals are for regression; this model predicts classes: use prediction_set.")
        coverage = self.check_interval(coverage)
        conformal = self.extras.get("conformal")
        if conformal is not None:
            return conformal.bounds(raw, coverage)
        return interval_bounds(raw, self.validation["y"], self.validation["pred"], coverage)

    def prediction_set(self, raw: np.ndarray, coverage: float) -> list[list[Any]]:
        """For each row of class probabilities ``raw``, the labels that together hold the true label with
        probability ``coverage`` (a conformal prediction set; the most probable label is always in it)."""
        if not self.task.is_classification:
            raise ModelError("Prediction sets are for classification; this model predicts values: use prediction_interval.")
        member = self.extras["conformal"].sets(raw, self.check_interval(coverage))
        return [[c for c, m in zip(self.classes, row, strict=True) if m] for row in member]

    # -- saving and loading --------------------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the bundle to ``path`` atomically and return the path."""
        dest = Path(path).resolve()
        if dest.exists() and not overwrite:
            raise ModelError(f"{str(dest)!r} already exists: choose another --out or remove it.")
        if dest.exists() and not (dest / "MLmodel").exists():
            raise ModelError(f"{str(dest)!r} exists and is not a model bundle: choose another --out.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            bundle = work / "bundle"
            bundle.mkdir()
            self._write_bundle(bundle)
            staged = work / "model"
            _save_pyfunc(staged, bundle, self)
            old = None
            if dest.exists():
                old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
                dest.rename(old)
            staged.rename(dest)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.path = dest
        return dest

    def _write_bundle(self, bundle: Path) -> None:
        (bundle / "schema.json").write_text(self.schema.to_json(), encoding="utf-8")
        (bundle / "cleaning_plan.json").write_text(self.plan.to_json(), encoding="utf-8")
        meta = {**self.metadata, "format_version": FORMAT_VERSION, "task": self.task.to_dict()}
        (bundle / "metadata.json").write_text(json.dumps(_jsonable(meta), indent=1), encoding="utf-8")
        joblib.dump({"encoder": self.encoder, "predictor": self.predictor, "extras": self.extras},
                    bundle / "estimator.joblib", compress=3)
        if self.validation:
            np.savez_compressed(bundle / "validation.npz", **self.validation)  # type: ignore[arg-type]


def _records(data: Any) -> list[Mapping[str, Any]]:
    """One record or a list of records, checked to be JSON-object-like rows."""
    if isinstance(data, Mapping):
        return [data]
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if len(data) == 0:
            raise SchemaError("No rows to predict: send at least one record.")
        if not all(isinstance(r, Mapping) for r in data):
            raise SchemaError("Each row must be a JSON object of column: value.")
        return list(data)
    raise SchemaError(f"Cannot predict on {type(data).__name__}: pass a DataFrame or records.")


def _bundle_dir(path: Path) -> Path:
    """The folder holding mlengineer's files inside an MLflow model folder."""
    mlmodel = path / "MLmodel"
    if not mlmodel.is_file():
        raise ModelError(f"{str(path)!r} is not a model bundle (no MLmodel file): pass a folder written by 'mlengineer train'.")
    default = path / BUNDLE_SUBDIR
    if (default / "metadata.json").is_file():
        return default
    import yaml

    try:
        spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
        rel = spec["flavors"]["python_function"]["artifacts"]["bundle"]["path"]
    except (KeyError, TypeError, yaml.YAMLError):
        raise ModelError(f"{str(path)!r} is an MLflow model but not one made by mlengineer.") from None
    return path / rel


def load(path: str | Path) -> Model:
    """Load a bundle written by ``Model.save`` (or by ``mlengineer train``)."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"Model {str(p)!r} does not exist: pass the folder written by 'mlengineer train --out'.")
    if not p.is_dir():
        raise ModelError(f"{str(p)!r} is a file, not a model bundle folder: pass the folder written by 'mlengineer train'.")
    bundle = _bundle_dir(p)
    try:
        schema = Schema.from_json((bundle / "schema.json").read_text(encoding="utf-8"))
        plan = CleaningPlan.from_json((bundle / "cleaning_plan.json").read_text(encoding="utf-8"))
        meta = json.loads((bundle / "metadata.json").read_text(encoding="utf-8"))
        fitted = joblib.load(bundle / "estimator.joblib")
    except FileNotFoundError as e:
        raise ModelError(f"Model bundle {str(p)!r} is incomplete: {Path(e.filename or '').name} is missing.") from None
    except (ValueError, EOFError, OSError, ImportError, AttributeError) as e:
        raise ModelError(f"Model bundle {str(p)!r} cannot be read ({type(e).__name__}: {str(e)[:120]}); "
                         "it may come from another mlengineer version.") from None
    validation = {}
    if (bundle / "validation.npz").is_file():
        with np.load(bundle / "validation.npz", allow_pickle=False) as z:
            validation = {k: z[k] for k in z.files}
    model = Model(schema=schema, plan=plan, encoder=fitted["encoder"], predictor=fitted["predictor"],
                  task=Task.from_dict(meta["task"]), metadata=meta, validation=validation,
                  extras=fitted.get("extras"))
    model.path = p.resolve()
    return model


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


# -- the MLflow pyfunc flavour -----------------------------------------------------------------------------

_MLFLOW_TYPES = {"int": "long", "float": "double", "bool": "boolean", "datetime": "datetime"}


def _signature(model: Model) -> Any:
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec
    from mlflow.types.schema import Schema as MlflowSchema

    cols: list[Any] = []
    for name in model.feature_names:
        dtype = model.schema[name].dtype
        kind = next((v for k, v in _MLFLOW_TYPES.items() if dtype.startswith(k)), "string")
        cols.append(ColSpec(kind, name, required=True))
    outputs: list[Any] = [ColSpec("string" if model.task.is_classification else "double", "prediction")]
    outputs += [ColSpec("double", f"proba_{c}") for c in model.classes]
    return ModelSignature(inputs=MlflowSchema(cols), outputs=MlflowSchema(outputs))


#: packages a bundle needs beyond the always-installed ones, by the model family that needs them
_FAMILY_PACKAGES = {"mlp": "torch"}


def _families_used(metadata: dict[str, Any]) -> set[str]:
    """The model families whose fitted models the bundle predicts with."""
    board = {row.get("model"): row.get("family") for row in metadata.get("leaderboard", [])}
    names = [m.get("model") for m in metadata.get("ensemble") or []]
    if not names and metadata.get("leaderboard"):
        names = [metadata["leaderboard"][0].get("model")]
    return {str(board.get(n, n)) for n in names}


def _requirements(model: Model | None = None) -> list[str]:
    """The bundle's pip requirements, pinned to the versions it was trained with; torch only where a neural
    network is one of its models, so that serving it elsewhere (``mlflow models serve``) installs it."""
    from importlib.metadata import PackageNotFoundError, version

    # pyarrow is left to mlengineer's own range: predicting does not need it, and a pin of today's release
    # conflicts with full MLflow's upper bound (mlflow 3.17 wants pyarrow<26)
    reqs = []
    extra = sorted({_FAMILY_PACKAGES[f] for f in _families_used(model.metadata) if f in _FAMILY_PACKAGES}) \
        if model is not None else []
    for pkg in ("mlengineer", "numpy", "pandas", "scikit-learn", "lightgbm", "xgboost-cpu", "catboost",
                "joblib", *extra):
        try:
            reqs.append(f"{pkg}=={version(pkg).split('+')[0]}")  # no local label (torch's +cpu): pip finds it
        except PackageNotFoundError:
            continue
    return reqs


def _save_pyfunc(dest: Path, bundle: Path, model: Model) -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import logging
    import warnings

    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    logging.getLogger("mlflow.models.model").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's advice on input examples and pickling, not the user's concern
        import mlflow.pyfunc

        from .pyfunc import BundlePythonModel

        mlflow.pyfunc.save_model(
            path=str(dest), python_model=BundlePythonModel(), artifacts={"bundle": str(bundle)},
            signature=_signature(model), pip_requirements=_requirements(model),
            metadata={"mlengineer_task": model.task.kind, "mlengineer_target": model.target},
        )
