"""Registry commands: register a bundle as a new model version, point an alias at a version."""

from __future__ import annotations

import typer

from ._common import console, handle_errors


def register_cmd(
    model_path: str = typer.Argument(..., metavar="MODEL", help="A model bundle folder."),
    name: str = typer.Option(..., "--name", "-n", help="The registered model's name."),
    description: str = typer.Option(None, "--description", help="A note on this version."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow registry (default ./mlruns.db)."),
) -> None:
    """Register a bundle in MLflow's model registry as a new version of NAME."""
    from ..tracking.registry import register

    info = register(model_path, name, tracking_uri=tracking_uri, description=description)
    console.print(f"Registered [bold]{info.name}[/] version [bold]{info.version}[/]. Serve it with "
                  f"'mlengineer serve models:/{info.name}/{info.version}', or promote it with "
                  f"'mlengineer promote {info.name} {info.version} --alias champion'.")


def promote_cmd(
    name: str = typer.Argument(..., help="The registered model's name."),
    version: str = typer.Argument(..., help="The version to promote."),
    alias: str = typer.Option("champion", "--alias", help="The alias to point at VERSION."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow registry (default ./mlruns.db)."),
) -> None:
    """Point an alias (default champion) at a version; servers on models:/NAME@ALIAS switch to it."""
    from ..tracking.registry import promote

    info = promote(name, version, alias=alias, tracking_uri=tracking_uri)
    console.print(f"models:/{info.name}@{alias} is now version [bold]{info.version}[/].")


def register(app: typer.Typer) -> None:
    app.command("register")(handle_errors(register_cmd))
    app.command("promote")(handle_errors(promote_cmd))
