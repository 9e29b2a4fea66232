"""What every command shares: the console, error handling and reading DATA arguments.

User text (file names, columns, values, commands) prints literally: ``say`` and ``table`` take plain strings
as text, never as rich markup, so ``pip install 'mlengineer[ui]'`` or a column named ``[id]`` keep their
brackets; styles go in as ``(text, style)`` pairs or ``rich.text.Text``."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import MLEngineerError

# wide enough for result tables when the output is a file or a CI log rather than a terminal
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

F = TypeVar("F", bound=Callable[..., Any])

#: a piece of a printed line: plain text (printed as is), a (text, style) pair, or a rich Text
Part = str | tuple[str, str] | Text

SqlOption = typer.Option(None, "--sql", help="A SQL query to read the data from: against --db, or in DuckDB over "
                         "DATA (as the table 'data') or over the files it names.")
DbOption = typer.Option(None, "--db", help="Database for --sql: a SQLAlchemy URL (postgresql://user:pw@host/db) "
                        "or a SQLite/DuckDB file.")
#: a model as every command that takes one names it (``tracking.lookup.open_model``)
MODEL_HELP = "A model: a bundle folder, a run id (from 'mlengineer runs'), or models:/NAME@ALIAS (or /VERSION)."
TrackingOption = typer.Option(None, "--tracking-uri", help="The MLflow store a run id or models:/ name is looked up "
                              "in (default ./mlruns.db).")


def handle_errors(fn: F) -> F:
    """Turn mlengineer's errors into one line on stderr and exit status 2; no traceback for bad input."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MLEngineerError as e:
            say(("error:", "bold red"), " ", str(e), out=err_console, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            say(("interrupted", "yellow"), out=err_console)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def read_data(path: str | None, sql: str | None = None, db: str | None = None, *,
              said: Callable[[Any], str] | None = None, out: Console | None = None, model: Any = None,
              roles: dict[str, str] | None = None) -> Any:
    """The table a command's DATA argument (or --sql/--db) names. What reading it did is said on ``out``:
    the command's own line on what was read (``said(df)``), if it has one, then, when the first sheet of a
    workbook was read while other sheets hold rows too, a line saying so. The rows of a ``model`` are read
    with the thousands dots and decimal commas its training file was read with; the columns ``roles`` gives as
    categories, text or identifiers are read as their text (118.951.736 no number)."""
    from ..data.formats import written_marks
    from ..data.load import load_table
    from ..data.sheets import source_note
    from ..errors import DataError

    if sql or db:
        df = load_table(path or "", sql=sql, db=db, marks=written_marks(_marks(model), roles))
    elif not path:
        raise DataError("No data given: pass a file path, or --sql QUERY --db URL.")
    else:
        df = load_table(path, marks=written_marks(_marks(model), roles))
    if said is not None:
        say(said(df), out=out)
    note = source_note(dict(df.attrs.get("source") or {}))
    if note:
        say((note, "yellow"), out=out)
    return df


def _marks(model: Any) -> dict[str, Any] | None:
    """How a model's training file wrote its numbers (``read_marks``); None for no model."""
    from ..bundle.rows import read_marks

    return None if model is None else read_marks(model.metadata)


@contextlib.contextmanager
def named_source(source: str) -> Iterator[None]:
    """Errors of the data (a missing column, a value of the wrong type) raised inside, with the file they are
    in named first, as ``predict`` names it; a message that names it already is left as it is."""
    from ..errors import DataError, SchemaError

    try:
        yield
    except (DataError, SchemaError) as e:
        if source in str(e):
            raise
        raise type(e)(f"{source}: {e}") from None


def parse_roles(items: list[str]) -> dict[str, str]:
    """--column-role COLUMN=ROLE options as a mapping."""
    from ..errors import ConfigError

    roles = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--column-role takes COLUMN=ROLE; got {item!r}.")
        col, role = item.split("=", 1)
        roles[col.strip()] = role.strip()
    return roles


def say(*parts: Part, out: Console | None = None, soft_wrap: bool = False) -> None:
    """Print one line made of ``parts``: strings literally, ``(text, style)`` pairs styled.

    >>> say("Report written to ", (str(path), "bold"), ".")  # doctest: +SKIP
    """
    (out or console).print(Text.assemble(*parts), highlight=False, soft_wrap=soft_wrap)


def table(title: str | Text, columns: list[str], rows: list[list[Any]], *, widths: dict[str, int] | None = None
          ) -> Table:
    """A result table; cells print literally (a ``Text`` cell keeps its style), numbers through ``fmt``.
    ``widths`` gives columns a least width (so a role's name or an amount stays on one line)."""
    t = Table(title=Text(title) if isinstance(title, str) else title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(Text(c), overflow="fold", min_width=(widths or {}).get(c))
    for r in rows:
        t.add_row(*[v if isinstance(v, Text) else Text(fmt(v)) for v in r])
    return t


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:
            return "-"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return str(v)


def setup_environment() -> None:
    """Quiet third-party chatter a user did not ask for."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    import warnings

    warnings.filterwarnings("ignore")


def path_arg(p: str) -> Path:
    return Path(p).expanduser()


def is_tty() -> bool:
    return sys.stderr.isatty()
