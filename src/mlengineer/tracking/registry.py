"""MLflow's model registry for bundles: register a bundle as a new version, point an alias at a version, and
resolve ``models:/NAME@ALIAS`` (or ``models:/NAME/VERSION``) to a local bundle folder.

The store is the tracking store (a local SQLite file by default, see ``tracking.store.default_tracking_uri``).
Registering copies the bundle into the store's artifacts, so a version never changes afterwards even if the
folder it came from is retrained or deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import ConfigError, ModelError, ServingError
from .store import default_tracking_uri, experiment_id, mlflow_module

__all__ = ["ModelRef", "ModelVersionInfo", "is_model_ref", "promote", "register", "resolve"]

REGISTRY_EXPERIMENT = "mlengineer-registry"
_REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))?/?$")


@dataclass(frozen=True)
class ModelRef:
    """``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/NAME`` (the latest version)."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, ref: str) -> ModelRef:
        m = _REF.match(ref.strip())
        if not m:
            raise ConfigError(f"{ref!r} is not a registry reference: write models:/NAME@ALIAS or models:/NAME/VERSION.")
        return cls(name=m["name"], alias=m["alias"], version=m["version"])

    def __str__(self) -> str:
        if self.alias:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}" + (f"/{self.version}" if self.version else "")


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    source: str
    aliases: tuple[str, ...] = ()


def is_model_ref(text: str) -> bool:
    return text.strip().startswith("models:/")


def _client(tracking_uri: str | None) -> tuple[Any, Any]:
    mlflow = mlflow_module(tracking_uri)
    return mlflow, mlflow.MlflowClient()


def _is_missing(e: Exception) -> bool:
    # an unknown alias is INVALID_PARAMETER_VALUE in MLflow's SQL store, an unknown name or version NOT_FOUND
    code = getattr(e, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or (
        code == "INVALID_PARAMETER_VALUE" and "not found" in str(e))


def _store_error(e: Exception, uri: str | None) -> ServingError:
    return ServingError(f"The model registry {uri or default_tracking_uri()!r} cannot be used: "
                        f"{str(e).splitlines()[0][:200]}. Pass --tracking-uri to use another.")


def register(bundle: str | Path, name: str, *, tracking_uri: str | None = None,
             description: str | None = None) -> ModelVersionInfo:
    """Register the bundle folder ``bundle`` as a new version of the registered model ``name``."""
    from ..bundle.model import load

    model = load(bundle)  # a folder that is not a usable bundle fails here, before the registry is touched
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]*", name):
        raise ConfigError(f"--name must be letters, digits, '.', '_' or '-' (no '/' or '@'); got {name!r}.")
    mlflow, client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        try:
            client.get_registered_model(name)
        except MlflowException as e:
            if not _is_missing(e):
                raise
            client.create_registered_model(name, description=f"{model.task.kind} model of {model.target!r}")
        exp_id = experiment_id(mlflow, REGISTRY_EXPERIMENT)
        with mlflow.start_run(experiment_id=exp_id, run_name=f"register {name}") as run:
            mlflow.set_tags({"mlengineer.target": model.target, "mlengineer.task": model.task.kind,
                             "mlengineer.bundle": str(Path(bundle).resolve())})
            mlflow.log_artifacts(str(Path(bundle)), artifact_path="model")
        source = f"{run.info.artifact_uri.rstrip('/')}/model"
        mv = client.create_model_version(name, source, run_id=run.info.run_id, description=description,
                                         tags={"mlengineer.task": model.task.kind,
                                               "mlengineer.target": model.target})
    except MlflowException as e:
        raise _store_error(e, tracking_uri) from None
    return ModelVersionInfo(name=name, version=str(mv.version), source=source)


def _versions(client: Any, name: str) -> list[str]:
    return sorted((str(v.version) for v in client.search_model_versions(f"name='{name}'")), key=int)


def promote(name: str, version: str | int, *, alias: str = "champion", tracking_uri: str | None = None) -> ModelVersionInfo:
    """Point ``alias`` of the registered model ``name`` at ``version``; a server on ``models:/NAME@ALIAS``
    picks it up on its next look."""
    if not re.fullmatch(r"[A-Za-z][\w\-]*", alias) or re.fullmatch(r"v\d+", alias, flags=re.I):
        raise ConfigError(f"--alias must start with a letter, use letters, digits, '_' or '-', and not look "
                          f"like a version (v1); got {alias!r}.")
    _, client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    version = str(version)
    try:
        try:
            mv = client.get_model_version(name, version)
        except MlflowException as e:
            if not _is_missing(e):
                raise
            try:
                known = _versions(client, name)
            except MlflowException:
                known = []
            if not known:
                raise ModelError(f"No registered model named {name!r}: register one with "
                                 f"'mlengineer register MODEL --name {name}'.") from None
            raise ModelError(f"Model {name!r} has no version {version}; its versions are {', '.join(known)}.") from None
        client.set_registered_model_alias(name, alias, version)
    except MlflowException as e:
        raise _store_error(e, tracking_uri) from None
    return ModelVersionInfo(name=name, version=version, source=str(mv.source), aliases=(alias,))


def lookup(ref: ModelRef, *, client: Any) -> ModelVersionInfo:
    """The version ``ref`` names now (an alias moves; a version does not)."""
    from mlflow.exceptions import MlflowException

    try:
        if ref.alias:
            mv = client.get_model_version_by_alias(ref.name, ref.alias)
        elif ref.version:
            mv = client.get_model_version(ref.name, ref.version)
        else:
            known = _versions(client, ref.name)
            if not known:
                raise ModelError(f"No registered model named {ref.name!r}, or it has no versions: register one "
                                 f"with 'mlengineer register MODEL --name {ref.name}'.")
            mv = client.get_model_version(ref.name, known[-1])
    except MlflowException as e:
        if _is_missing(e):
            what = f"alias {ref.alias!r}" if ref.alias else f"version {ref.version}"
            raise ModelError(f"{ref} does not exist: the registered model {ref.name!r} has no {what}. "
                             f"Use 'mlengineer promote {ref.name} VERSION --alias {ref.alias or 'champion'}'.") from None
        raise
    return ModelVersionInfo(name=ref.name, version=str(mv.version), source=str(mv.source),
                            aliases=tuple(getattr(mv, "aliases", ()) or ()))


def local_path(source: str, *, name: str, version: str, tracking_uri: str | None = None) -> Path:
    """A local folder holding the version's bundle: the artifact folder itself for a local store, else a
    download into the user's cache."""
    parsed = urlparse(source)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    import mlflow.artifacts

    dest = Path.home() / ".cache" / "mlengineer" / "registry" / name / version
    if (dest / "model" / "MLmodel").is_file():
        return dest / "model"
    dest.mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dest),
                                                     tracking_uri=tracking_uri))


def resolve(ref: str | ModelRef, *, tracking_uri: str | None = None) -> tuple[ModelVersionInfo, Path]:
    """The version a registry reference names now, and a local folder holding its bundle."""
    ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise ModelError(f"{ref} cannot be found: there is no registry at {uri!r}. Register a model first "
                         "('mlengineer register MODEL --name NAME') or pass --tracking-uri.")
    _, client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        info = lookup(ref, client=client)
    except MlflowException as e:
        raise _store_error(e, tracking_uri) from None
    return info, local_path(info.source, name=info.name, version=info.version, tracking_uri=tracking_uri)
