"""The serve command: a model behind uvicorn, with N worker processes. The model is named as every command names
one (``MODEL_HELP``): a bundle folder, a run id (its run's bundle, served as a folder is: it follows nothing), or a
registry reference, whose alias (``models:/NAME@ALIAS``) it follows as the alias moves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ._common import MODEL_HELP, TrackingOption, handle_errors, say

#: settings whose command-line option has another name than the setting
_OPTIONS = {"max_body_bytes": "--max-body-mb", "model": "MODEL"}


def serve_cmd(
    model_ref: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", help="Worker processes (about one per core)."),
    api_key: str | None = typer.Option(
        None, "--api-key", help="Require this key (X-API-Key or Authorization: Bearer); health checks stay open. "
                                "Default: the MLENGINEER_API_KEY variable."),
    max_body_mb: float = typer.Option(10.0, "--max-body-mb", help="Largest request body, in MB (413 above)."),
    max_batch_rows: int = typer.Option(10_000, "--max-batch-rows", help="Most rows in one request (413 above)."),
    unseen_categories: str = typer.Option("warn", "--unseen-categories",
                                          help="A category the model never saw: accept, warn (in the answer) or reject (422)."),
    extra_columns: str = typer.Option("reject", "--extra-columns",
                                      help="A column the model does not know: reject (422) or ignore."),
    prediction_log: str = typer.Option("predictions", "--prediction-log",
                                       help="Folder of the prediction log (Parquet files) for monitoring."),
    no_prediction_log: bool = typer.Option(False, "--no-prediction-log", help="Do not log predictions."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="JSON access lines on stderr."),
    poll_interval: float = typer.Option(10.0, "--poll-interval",
                                        help="Seconds between looks at a registry alias for a new version."),
    tracking_uri: str = TrackingOption,
    graceful_timeout: float = typer.Option(30.0, "--graceful-timeout",
                                           help="Seconds to finish requests in flight when stopped."),
    read_timeout: float = typer.Option(30.0, "--read-timeout",
                                       help="Seconds a request's headers may take to arrive, and its body may pause (408 after)."),
) -> None:
    """Serve a model over HTTP: Open Inference Protocol v2, MLflow's /invocations and POST /predict. A
    registry alias (models:/NAME@ALIAS) is followed as it moves; a folder, a run id or a version is not."""
    from ..errors import ConfigError
    from ..serving.server import serve
    from ..serving.settings import ServeSettings, api_key_problem
    from ..tracking.registry import is_model_ref

    if not max_body_mb * 1024 * 1024 >= 1024:  # the option is in MB; the setting, in bytes, says >= 1024
        raise ConfigError(f"--max-body-mb must be at least 0.001 (1 KB); got {max_body_mb:g}.")
    api_key, key_from = _api_key(api_key)
    key_problem = api_key_problem(api_key, variable=key_from != "--api-key")
    if key_problem is not None:  # an empty key would serve everyone: refused, never taken as "no key"
        raise ConfigError(f"{key_from} {key_problem}.")
    log_folder = None if no_prediction_log else Path(prediction_log).expanduser().resolve()
    if log_folder is not None:
        check_log_folder(log_folder)
    folder = Path(model_ref).expanduser()
    try:
        settings = ServeSettings.model_validate(dict(
            model=model_ref if is_model_ref(model_ref) or not folder.exists() else str(folder.resolve()),
            host=host, port=port, workers=workers, api_key=api_key,
            max_body_bytes=int(max_body_mb * 1024 * 1024), max_batch_rows=max_batch_rows,
            unseen_categories=unseen_categories, extra_columns=extra_columns,
            prediction_log=log_folder,
            access_log=access_log, poll_interval=poll_interval, tracking_uri=tracking_uri,
            graceful_timeout=graceful_timeout, read_timeout=read_timeout,
        ))
    except ValueError as e:  # pydantic names the option and what it accepts
        err = e.errors()[0] if hasattr(e, "errors") else {"loc": ["?"], "msg": str(e)}
        field = str(err["loc"][0])
        raise ConfigError(f"{_OPTIONS.get(field, '--' + field.replace('_', '-'))}: {err['msg']}.") from None

    # load once here, so that a bad bundle or reference is one line and exit 2, before any worker starts
    settings, served, chosen = _load(settings)
    name, version, task, target = served.name, served.version, served.model.task.kind, served.model.target
    how, warning = _how_chosen(settings, version)
    chosen = chosen or how
    if workers > 1:  # each worker loads its own copy of this very version; this process only supervises
        from ..serving.supervisor import Pin

        served = Pin.of(served)

    def ready(port: int) -> None:
        say("Serving ", (name, "bold"), f" version {version} ({chosen}{task}, target {target!r}) on "
            f"http://{host}:{port} with {workers} worker{'s' if workers > 1 else ''}  "
            f"(docs at /docs, Open Inference Protocol at /v2/models/{name}, MLflow at /invocations)")
        if warning is not None:
            say(("warning:", "yellow"), f" {warning}")

    serve(settings, served=served, on_ready=ready)


def _load(settings: Any) -> tuple[Any, Any, str]:
    """The settings to serve with, the model loaded and warmed, and how a run id chose it (``run ID; ``). A
    folder or a registry reference is loaded as the workers load it; anything else is what every command
    takes (``tracking.lookup.open_model``): a run id's bundle, served from its folder like any folder (it
    follows no alias), or a one-line error naming what was not found."""
    from ..serving.runtime import load_served, serve_model
    from ..tracking.registry import is_model_ref

    if is_model_ref(settings.model) or Path(settings.model).exists():
        return settings, load_served(settings), ""
    from ..tracking.lookup import open_model

    model = open_model(settings.model, tracking_uri=settings.tracking_uri)
    folder = str(Path(model.path or settings.model).resolve())
    settings = settings.model_copy(update={"model": folder})
    run_id = str(model.metadata.get("run_id") or "")
    served = serve_model(settings, model, ref=folder, version="1")
    return settings, served, f"run {run_id}; " if run_id else ""


def _api_key(given: str | None) -> tuple[str | None, str]:
    """The key, and where it came from: ``--api-key``, else the variable. The variable is read here, not by the
    option's parser, which would take one set but empty for an unset one: an empty key is refused, never taken
    for no key."""
    import os

    from ..serving.settings import API_KEY_ENV

    if given is None:
        return os.environ.get(API_KEY_ENV), API_KEY_ENV
    return given, "--api-key"


def _how_chosen(settings: Any, version: str) -> tuple[str, str | None]:
    """For a registry reference, which version it named and how (``models:/price, which its alias
    'champion' names; ``), and a warning when it follows no alias and the registry's aliases name another."""
    from ..tracking.registry import how_chosen, is_model_ref

    if not is_model_ref(settings.model):
        return "", None
    words, warning = how_chosen(settings.model, version, tracking_uri=settings.tracking_uri)
    return f"{words}; ", warning


def check_log_folder(folder: Path) -> None:
    """Refuse a --prediction-log that names a file (or lies under one) before the server starts: the log is a
    folder of Parquet files, made when missing."""
    from ..errors import ConfigError

    for at in (folder, *folder.parents):
        if at.exists():
            if not at.is_dir():
                where = "is a file" if at == folder else f"lies under {str(at)!r}, which is a file"
                raise ConfigError(f"--prediction-log must be a folder: {str(folder)!r} {where}. Name a folder (it "
                                  "is made when missing), or pass --no-prediction-log.")
            return


def register(app: typer.Typer) -> None:
    app.command("serve")(handle_errors(serve_cmd))
