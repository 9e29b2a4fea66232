"""Registry commands: register a bundle as a new model version, point an alias at a version, and check a
bundle against its manifest."""

from __future__ import annotations

import typer

from ._common import handle_errors, say


def register_cmd(
    model_path: str = typer.Argument(..., metavar="MODEL", help="A model bundle folder, or the id of the run "
                                     "that recorded it."),
    name: str = typer.Option(..., "--name", "-n", help="The registered model's name."),
    description: str = typer.Option(None, "--description", help="A note on this version."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow registry (default ./mlruns.db)."),
) -> None:
    """Register a bundle in MLflow's model registry as a new version of NAME."""
    from pathlib import Path

    from ..bundle.notes import some_of
    from ..tracking.lookup import open_model
    from ..tracking.registry import register

    bundle = model_path  # a run id (or another registered version) names a folder of the store's
    if not Path(model_path).exists():
        bundle = str(open_model(model_path, tracking_uri=tracking_uri).path or model_path)
    info = register(bundle, name, tracking_uri=tracking_uri, description=description)
    say("Registered ", (info.name, "bold"), " version ", (info.version, "bold"), ". Serve it with "
        f"'mlengineer serve models:/{info.name}/{info.version}', or promote it with "
        f"'mlengineer promote {info.name} {info.version} --alias champion'.")
    if info.problems:  # one line, however many columns: the first few problems, then how many more
        say(("warning:", "yellow"), f" clients of models:/{info.name}@champion would fail against this version: "
            f"{some_of(info.problems, 3)}.", soft_wrap=True)


def promote_cmd(
    name: str = typer.Argument(..., help="The registered model's name."),
    version: str = typer.Argument(..., help="The version to promote."),
    alias: str = typer.Option("champion", "--alias", help="The alias to point at VERSION."),
    force: bool = typer.Option(False, "--force", help="Promote even when clients of the alias's current version "
                               "could not call this one, or would misread its answers: servers on the alias switch "
                               "to it all the same, and those clients get errors (422) or other answers."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow registry (default ./mlruns.db)."),
) -> None:
    """Point an alias (default champion) at a version; servers on models:/NAME@ALIAS switch to it."""
    from ..bundle.notes import some_of
    from ..tracking.registry import promote

    info = promote(name, version, alias=alias, tracking_uri=tracking_uri, force=force)
    say(f"models:/{info.name}@{alias} is now version ", (info.version, "bold"), ".")
    if info.problems:
        say(("warning (--force):", "yellow"), f" servers on models:/{info.name}@{alias} switch to version "
            f"{info.version} at their next look, and log it; clients that call it as they called the version before "
            f"get errors (422) or answers they may misread: {some_of(info.problems, 3)}.", soft_wrap=True)


def verify_cmd(
    model_path: str = typer.Argument(..., metavar="MODEL", help="A model bundle folder, a registered version "
                                     "(models:/NAME@ALIAS or models:/NAME/VERSION) or a run id."),
    trust: bool = typer.Option(False, "--trust", help="Write a manifest for a bundle that has none (saved by an "
                               "older mlengineer), after you checked where it came from."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow registry (default ./mlruns.db)."),
) -> None:
    """Check every file of a bundle against its manifest (a registered version also against the digest the
    registry recorded), then that it loads; exit 2 when it does not."""
    from pathlib import Path

    from ..bundle.manifest import MANIFEST, bundle_digest, write_manifest
    from ..bundle.store import bundle_dir
    from ..tracking.lookup import open_model

    path = Path(model_path)
    if trust and path.is_dir() and (path / "MLmodel").is_file() and not (path / MANIFEST).exists():
        bundle_dir(path)  # a foreign MLflow model is refused before anything is written into it
        write_manifest(path)
        say(f"Wrote {MANIFEST} for {path}: its files as they are now are trusted.")
    model = open_model(model_path, tracking_uri=tracking_uri)  # a registered version: its recorded digest too
    where = path if path.exists() else Path(model.path or model_path)
    what = model_path if path.exists() else f"{model_path} ({where})"
    say(f"{what}: every file matches its manifest (digest {(bundle_digest(where) or '?')[:16]}); the model loads.",
        soft_wrap=True)  # one line, however long the store's path


def register(app: typer.Typer) -> None:
    app.command("register")(handle_errors(register_cmd))
    app.command("promote")(handle_errors(promote_cmd))
    app.command("verify")(handle_errors(verify_cmd))
