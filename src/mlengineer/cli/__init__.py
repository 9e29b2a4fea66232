"""The ``mlengineer`` command line. Each command is a few lines that call the public API; the logic lives
in the stages. Commands are grouped in modules by area and registered here."""

from __future__ import annotations

import importlib

import typer

from ._common import setup_environment

__all__ = ["app", "main"]

app = typer.Typer(
    name="mlengineer",
    help="From a raw table to a tested, explained, served and monitored model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: command modules, each with a ``register(app)`` function
COMMAND_MODULES = ("train", "serve", "report", "demo", "evaluation", "registry", "data", "ui", "monitoring")

for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)


def main() -> None:
    setup_environment()
    app()
