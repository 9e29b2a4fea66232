"""The serve command: a model bundle behind uvicorn and FastAPI."""

from __future__ import annotations

import typer

from ._common import console, handle_errors


def serve_cmd(
    model_path: str = typer.Argument(..., metavar="MODEL", help="A model bundle folder."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
) -> None:
    """Serve a model over HTTP: Open Inference Protocol v2 and POST /predict."""
    import socket

    import uvicorn

    from ..errors import ServingError
    from ..model import load
    from ..serving.app import create_app

    model = load(model_path)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ServingError(f"Cannot listen on {host}:{port} ({e.strerror}): choose another --port.") from None
    app = create_app(model)
    console.print(f"Serving [bold]{model.name}[/] ({model.task.kind}, target {model.target!r}) on "
                  f"http://{host}:{port}  (docs at /docs, Open Inference Protocol at /v2/models/{model.name})")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("serve")(handle_errors(serve_cmd))
