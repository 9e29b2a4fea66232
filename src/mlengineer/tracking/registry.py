"""MLflow's model registry for bundles: register a bundle as a new version, point an alias at a version, and
resolve ``models:/NAME@ALIAS`` (or ``models:/NAME/VERSION``) to a local bundle folder. ``models:/NAME`` names
the version the default alias (``champion``) names, else the newest: never a version ``promote`` refused.

The store is the tracking store (a local SQLite file by default, see ``tracking.store.default_tracking_uri``).
Registering copies the bundle into the store's artifacts, so a version never changes afterwards even if the
folder it came from is retrained or deleted; the version records the bundle's digest (its manifest's), and
whoever loads the version checks the copy against it. Promoting compares the new version with the version the
alias names now (the inputs clients send; the task, target and classes they get back) and refuses a model its
clients could not call or would misread (``--force`` overrides); each alias keeps the history of the versions
it named, for ``rollback``, and each version when an alias was last pointed at it, so that a server that
refused it tries it again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..bundle.compat import client_problems
from ..bundle.manifest import bundle_digest, readable_digest
from ..bundle.model import Model, load
from ..bundle.notes import some_of
from ..errors import ConfigError, ModelError, ServingError
from .artifacts import local_path
from .store import (
    check_outer_run,
    experiment_id,
    masked,
    missing_sqlite_store,
    mlflow_module,
    owner_tags,
    recording_run,
    shown_uri,
)

__all__ = ["DEFAULT_ALIAS", "FORCED_TAG", "PROMOTED_TAG", "ModelRef", "ModelVersionInfo", "alias_history", "how_chosen",
           "is_model_ref", "load_version", "promote", "register", "resolve", "rollback"]

REGISTRY_EXPERIMENT = "mlengineer-registry"
DIGEST_TAG = "mlengineer.bundle_digest"
#: the alias ``promote`` moves unless told another, and the version ``models:/NAME`` names when it is set
DEFAULT_ALIAS = "champion"
#: a registered model tag per alias: the versions it named, oldest first, comma-separated
HISTORY_TAG = "mlengineer.alias_history.{alias}"
#: a version's tag: an operator pointed the alias at it knowing what clients may fail (promote --force, rollback)
FORCED_TAG = "mlengineer.forced.{alias}"
#: a version's tag: when promote or rollback last pointed the alias at it (a server that refused it tries again)
PROMOTED_TAG = "mlengineer.promoted.{alias}"
_REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))?/?$")
#: the names ``register`` gives: they fit in a models:/ reference and on a command line unquoted
_NAME = re.compile(r"[A-Za-z0-9][\w.\-]*")


@dataclass(frozen=True)
class ModelRef:
    """``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/NAME`` (the version the default alias
    names, else the newest)."""

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
        tail = f"@{self.alias}" if self.alias else f"/{self.version}" if self.version else ""
        return f"models:/{self.name}{tail}"


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    source: str
    aliases: tuple[str, ...] = ()
    #: the bundle's digest recorded when the version was registered (None for versions registered before)
    digest: str | None = None
    #: why clients of the version an alias named would fail against this one (register's warnings)
    problems: tuple[str, ...] = ()
    #: the aliases an operator pointed at this version all the same (promote --force, rollback), each with the
    #: version it named then: servers serving that version follow (a server on another was not weighed)
    forced: dict[str, str] = field(default_factory=dict)
    #: the aliases promote or rollback pointed at this version, each with when it last did
    promoted: dict[str, str] = field(default_factory=dict)


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
    text = masked(str(e).splitlines()[0][:200].rstrip(".") if str(e) else type(e).__name__, uri)
    return ServingError(f"The model registry {shown_uri(uri)!r} cannot be used: {text}. Pass --tracking-uri to use "
                        "another.")


def _existing_store(uri: str | None, what: str) -> None:
    """Refuse a SQLite registry file that is not there, rather than create an empty one (a mistyped
    --tracking-uri would then answer that no model exists); ``what`` begins the message."""
    if missing_sqlite_store(uri):
        raise ModelError(f"{what}: there is no registry at {shown_uri(uri)!r}. Register a model "
                         "first ('mlengineer register MODEL --name NAME') or pass the --tracking-uri it was "
                         "registered in.")


def _check_alias(alias: str) -> None:
    """An alias MLflow takes and ``models:/NAME@ALIAS`` can name, refused in one line before the store sees it."""
    if not re.fullmatch(r"[A-Za-z][\w\-]*", alias) or re.fullmatch(r"v\d+", alias, flags=re.I):
        raise ConfigError(f"--alias must start with a letter, use letters, digits, '_' or '-', and not look "
                          f"like a version (v1); got {alias!r}.")
    if alias.lower() == "latest":  # MLflow keeps it for the newest version
        raise ConfigError("--alias 'latest' is kept by MLflow for the newest version: choose another name, "
                          "such as champion.")


def _register_hint(name: str) -> str:
    """The command that registers ``name``, or, for a name ``register`` refuses, what a name may hold."""
    if _NAME.fullmatch(name):
        return f"Register one with 'mlengineer register MODEL --name {name}'."
    tidy = re.sub(r"[^\w.\-]+", "-", name).strip("-") or "NAME"
    return f"Registered names are letters, digits, '.', '_' or '-': register one with 'mlengineer register MODEL --name {tidy}'."


def register(bundle: str | Path, name: str, *, tracking_uri: str | None = None,
             description: str | None = None, alias: str = "champion") -> ModelVersionInfo:
    """Register the bundle folder ``bundle`` as a new version of the registered model ``name``. The
    answer's ``problems`` say why clients of the version ``alias`` names now could not call this one."""
    model = load(bundle)  # checked against its manifest: a folder that is not a usable bundle fails here
    if not _NAME.fullmatch(name):
        raise ConfigError(f"--name must be letters, digits, '.', '_' or '-' (no '/' or '@'); got {name!r}.")
    check_outer_run(tracking_uri)  # a notebook's open run: nested under it, or refused when elsewhere
    mlflow, client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    digest = bundle_digest(Path(bundle)) or ""
    try:
        _ensure_registered_model(client, name, model)
        exp_id = experiment_id(mlflow, REGISTRY_EXPERIMENT)
        with recording_run(mlflow, experiment_id=exp_id, run_name=f"register {name}", tags=owner_tags()) as run:
            mlflow.set_tags({"mlengineer.target": model.target, "mlengineer.task": model.task.kind,
                             "mlengineer.bundle": str(Path(bundle).resolve()), DIGEST_TAG: digest})
            mlflow.log_artifacts(str(Path(bundle)), artifact_path="model")
        source = f"{run.info.artifact_uri.rstrip('/')}/model"
        mv = client.create_model_version(name, source, run_id=run.info.run_id, description=description,
                                         tags={"mlengineer.task": model.task.kind,
                                               "mlengineer.target": model.target, DIGEST_TAG: digest})
        problems = _problems_against_alias(client, name, alias, model, tracking_uri)
    except MlflowException as e:
        raise _store_error(e, tracking_uri) from None
    return ModelVersionInfo(name=name, version=str(mv.version), source=source, digest=digest or None,
                            problems=tuple(problems))


def _ensure_registered_model(client: Any, name: str, model: Model) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return
    except MlflowException as e:
        if not _is_missing(e):
            raise
    try:
        client.create_registered_model(name, description=f"{model.task.kind} model of {model.target!r}")
    except MlflowException:  # another process registered the name in between
        client.get_registered_model(name)


def _problems_against_alias(client: Any, name: str, alias: str, model: Model, tracking_uri: str | None) -> list[str]:
    """Why clients of ``models:/name@alias`` would fail against ``model``; none where the alias names none."""
    try:
        current = lookup(ModelRef(name=name, alias=alias), client=client)
    except ModelError:
        return []
    return client_problems(load_version(current, tracking_uri=tracking_uri), model)


def load_version(info: ModelVersionInfo, *, tracking_uri: str | None = None) -> Model:
    """The bundle of a registered version, checked against its manifest and against the digest the registry
    recorded when it was registered."""
    path = local_path(info.source, name=info.name, version=info.version, tracking_uri=tracking_uri)
    if info.digest and readable_digest(path, f"Version {info.version} of {info.name!r}") != info.digest:
        raise ModelError(f"Version {info.version} of {info.name!r} is not the bundle that was registered (its digest "
                         f"differs from the one recorded): its files in the store were replaced. Register the "
                         "bundle again.")
    return load(path)


def _versions(client: Any, name: str) -> list[str]:
    return sorted((str(v.version) for v in client.search_model_versions(f"name='{name}'")), key=int)


def promote(name: str, version: str | int, *, alias: str = "champion", tracking_uri: str | None = None,
            force: bool = False) -> ModelVersionInfo:
    """Point ``alias`` of the registered model ``name`` at ``version``; a server on ``models:/NAME@ALIAS``
    picks it up on its next look. A version that clients of the alias's current version could not call (its
    inputs), or whose answers they would misread (another task, target or fewer classes), is refused unless
    ``force``; the answer's ``problems`` list what ``force`` let through."""
    if not re.fullmatch(r"\s*\d+\s*", str(version)):
        raise ConfigError(f"VERSION must be a version number such as 3; got {str(version)[:40]!r}: a model's "
                          "versions are numbered 1, 2, 3, ... as they are registered.")
    _check_alias(alias)
    _existing_store(tracking_uri, f"models:/{name}/{str(version).strip()} cannot be promoted")
    _, client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    version = str(int(str(version).strip()))
    try:
        info = lookup(ModelRef(name=name, version=version), client=client, missing_version=True)
        problems, was = _promotion_problems(client, info, alias, tracking_uri)
        if problems and not force:
            raise ModelError(f"Version {version} of {name!r} cannot take the alias {alias!r}: {some_of(problems)}. "
                             "Its clients would fail; pass --force to promote it anyway (servers on the alias follow, "
                             "and log what may fail).")
        if problems:
            client.set_model_version_tag(name, version, FORCED_TAG.format(alias=alias),
                                         f"{was}: {'; '.join(problems)}"[:4000])
        _point(client, name, alias, version)
        _record_history(client, name, alias, version)
    except MlflowException as e:
        raise _store_error(e, tracking_uri) from None
    return ModelVersionInfo(name=name, version=version, source=info.source, aliases=(alias,), digest=info.digest,
                            problems=tuple(problems))


def _promotion_problems(client: Any, info: ModelVersionInfo, alias: str, tracking_uri: str | None
                        ) -> tuple[list[str], str | None]:
    """Why clients of the version ``alias`` names would fail against ``info``'s, and that version."""
    new = load_version(info, tracking_uri=tracking_uri)  # a damaged or replaced version is refused here
    try:
        current = lookup(ModelRef(name=info.name, alias=alias), client=client)
    except ModelError:
        return [], None
    if current.version == info.version:
        return [], current.version
    try:
        old = load_version(current, tracking_uri=tracking_uri)
    except ModelError:  # the alias names a version that no longer loads: nothing to stay compatible with
        return [], current.version
    return client_problems(old, new), current.version


def alias_history(client: Any, name: str, alias: str) -> list[str]:
    """The versions ``alias`` named, oldest first, as ``promote`` recorded them."""
    tags = dict(getattr(client.get_registered_model(name), "tags", {}) or {})
    return [v for v in tags.get(HISTORY_TAG.format(alias=alias), "").split(",") if v]


def _point(client: Any, name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``, marked with the time (a server that refused the version tries it again)."""
    client.set_model_version_tag(name, version, PROMOTED_TAG.format(alias=alias), str(datetime.now(UTC)))
    client.set_registered_model_alias(name, alias, version)


def _record_history(client: Any, name: str, alias: str, version: str) -> None:
    history = alias_history(client, name, alias)
    if not history or history[-1] != version:
        history.append(version)
    client.set_registered_model_tag(name, HISTORY_TAG.format(alias=alias), ",".join(history[-100:]))


def lookup(ref: ModelRef, *, client: Any, missing_version: bool = False) -> ModelVersionInfo:
    """The version ``ref`` names now (an alias moves; a version does not). ``missing_version`` words the
    error for a version asked for by number (listing the versions there are)."""
    from mlflow.exceptions import MlflowException

    try:
        if ref.alias:
            mv = client.get_model_version_by_alias(ref.name, ref.alias)
        elif ref.version:
            mv = client.get_model_version(ref.name, ref.version)
        else:
            mv = _default_version(client, ref.name)
    except MlflowException as e:
        if _is_missing(e) and ref.version and not ref.alias and (missing_version or _model_exists(client, ref.name)):
            raise _no_version(client, ref.name, ref.version) from None
        if _is_missing(e) and not _model_exists(client, ref.name):
            raise ModelError(f"{ref} does not exist: there is no registered model named {ref.name!r}. "
                             f"{_register_hint(ref.name)}") from None
        if _is_missing(e):
            what = f"alias {ref.alias!r}" if ref.alias else f"version {ref.version}"
            raise ModelError(f"{ref} does not exist: the registered model {ref.name!r} has no {what}. "
                             f"Use 'mlengineer promote {ref.name} VERSION --alias {ref.alias or 'champion'}'.") from None
        raise
    tags = dict(getattr(mv, "tags", {}) or {})
    forced, promoted = ({k.removeprefix(p): v for k, v in tags.items() if k.startswith(p)}
                        for p in (FORCED_TAG.format(alias=""), PROMOTED_TAG.format(alias="")))
    return ModelVersionInfo(name=ref.name, version=str(mv.version), source=str(mv.source),
                            aliases=tuple(getattr(mv, "aliases", ()) or ()), digest=tags.get(DIGEST_TAG) or None,
                            forced={a: v.split(":", 1)[0] for a, v in forced.items()}, promoted=promoted)


def _default_version(client: Any, name: str) -> Any:
    """What ``models:/NAME`` names: the default alias's version (checked by ``promote``), else the newest."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, DEFAULT_ALIAS)
    except MlflowException as e:
        if not _is_missing(e):
            raise
    known = _versions(client, name)
    if not known:
        raise ModelError(f"No registered model named {name!r}, or it has no versions. {_register_hint(name)}")
    return client.get_model_version(name, known[-1])


def how_chosen(ref: str | ModelRef, version: str, *, tracking_uri: str | None = None) -> tuple[str, str | None]:
    """How ``ref`` came to name ``version``, in words for a start line, and a one-line warning when ``ref``
    follows no alias while the registry's aliases name other versions than this one."""
    ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
    if ref.alias:
        return str(ref), None
    from mlflow.exceptions import MlflowException

    try:
        _, client = _client(tracking_uri)
        aliases = dict(getattr(client.get_registered_model(ref.name), "aliases", {}) or {})
    except MlflowException:  # the version is loaded already: words are not worth failing over
        return str(ref), None
    named = sorted(a for a, v in aliases.items() if str(v) == version)
    words = f"{ref}, " + (f"which its alias {named[0]!r} names" if named else "by number" if ref.version
                          else f"its newest version: no version has the alias {DEFAULT_ALIAS!r}")
    others = {a: str(v) for a, v in sorted(aliases.items()) if str(v) != version}
    if named or not others:
        return words, None
    listed = ", ".join(f"{a} names version {v}" for a, v in others.items())
    return words, (f"{ref} serves version {version}, which no alias names ({listed}): serve "
                   f"models:/{ref.name}@{next(iter(others))} to follow an alias, as promote and rollback move it.")


def _model_exists(client: Any, name: str) -> bool:
    """Whether a registered model ``name`` exists (True when the store cannot say: the caller's own error is
    then the one to show)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as e:
        return not _is_missing(e)
    return True


def _no_version(client: Any, name: str, version: str) -> ModelError:
    from mlflow.exceptions import MlflowException

    try:
        known = _versions(client, name)
    except MlflowException:
        known = []
    if not known:
        return ModelError(f"No registered model named {name!r}. {_register_hint(name)}")
    return ModelError(f"Model {name!r} has no version {version}; its versions are {', '.join(known)}.")


def resolve(ref: str | ModelRef, *, tracking_uri: str | None = None) -> tuple[ModelVersionInfo, Path]:
    """The version a registry reference names now, and a local folder holding its bundle."""
    ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
    _existing_store(tracking_uri, f"{ref} cannot be found")
    _, client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        info = lookup(ref, client=client)
    except MlflowException as e:
        raise _store_error(e, tracking_uri) from None
    return info, local_path(info.source, name=info.name, version=info.version, tracking_uri=tracking_uri)


def rollback(name: str, *, alias: str = "champion", tracking_uri: str | None = None) -> tuple[str, str]:
    """Point ``alias`` back at the version it named before the current one (from the history ``promote``
    keeps; without one, the highest version below the current); the versions it moved from and to. The
    history forgets the version rolled back from, so a second rollback goes one further back; versions deleted
    since are passed over."""
    _check_alias(alias)
    _existing_store(tracking_uri, f"models:/{name}@{alias} cannot be rolled back")
    _, client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        current = lookup(ModelRef(name=name, alias=alias), client=client).version
        versions = _versions(client, name)
        history = [v for v in alias_history(client, name, alias) if v in versions]
        if history and history[-1] == current:
            history = history[:-1]
        earlier = [v for v in history if v != current]
        if not earlier:
            earlier = [v for v in versions if int(v) < int(current)]
        if not earlier:
            raise ModelError(f"models:/{name}@{alias} names version {current} and no version came before it: there is "
                             "nothing to roll back to.")
        previous = earlier[-1]
        client.set_model_version_tag(name, previous, FORCED_TAG.format(alias=alias), f"{current}: rollback")
        _point(client, name, alias, previous)
        kept = history[: len(history) - history[::-1].index(previous)] if previous in history else [*history, previous]
        client.set_registered_model_tag(name, HISTORY_TAG.format(alias=alias), ",".join(kept[-100:]))
    except MlflowException as e:
        raise _store_error(e, tracking_uri) from None
    return current, previous
