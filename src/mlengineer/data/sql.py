"""Read the result of a SQL query: PostgreSQL (or any SQLAlchemy URL), SQLite and DuckDB files, or DuckDB
in memory over files and tables handed to it.

Rows are fetched in chunks (a server-side cursor on PostgreSQL) so a large result never sits in the driver
and in pandas at once, and the connection is read-only where the database allows: reading data never
writes to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DataError

__all__ = ["DRIVERS", "installed_drivers", "read_sql", "with_driver"]

#: per database behind a server, the drivers SQLAlchemy can use for it, most preferred first:
#: (driver, module, pip package)
DRIVERS = {"postgresql": (("psycopg", "psycopg", "psycopg[binary]"), ("psycopg2", "psycopg2", "psycopg2-binary")),
           "mysql": (("mysqldb", "MySQLdb", "mysqlclient"), ("pymysql", "pymysql", "pymysql"))}

_SQLITE_MAGIC = b"SQLite format 3\x00"
_NO_ROWS = ("The query returned no rows: check its WHERE clause and that --db names the database that holds "
            "the table.")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300].rstrip(" .") if text else type(e).__name__


def _url_for_file(path: str) -> str:
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"Database file {path!r} does not exist: pass a path or a SQLAlchemy URL.")
    with p.open("rb") as f:
        head = f.read(16)
    if head == _SQLITE_MAGIC or p.suffix.lower() in (".sqlite", ".sqlite3", ".db") and head[:6] == b"SQLite":
        return f"sqlite:///{p.resolve()}"
    if p.suffix.lower() in (".duckdb", ".ddb") or head[8:12] == b"DUCK":
        return f"duckdb:///{p.resolve()}"
    raise DataError(f"{path!r} is neither a SQLite nor a DuckDB database file: pass one, or a SQLAlchemy URL.")


def installed_drivers(backend: str) -> list[tuple[str, str, str]]:
    """The entries of ``DRIVERS`` for the database ``backend`` ('postgresql', 'mysql') whose module is installed,
    most preferred first; none for another database."""
    import importlib.util

    def installed(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False

    return [entry for entry in DRIVERS.get(backend.lower(), ()) if installed(entry[1])]


def with_driver(url: str) -> str:
    """``url`` naming the installed driver of its database where it names none (``postgresql://`` becomes
    ``postgresql+psycopg2://`` where only psycopg2 is installed): the one rule reading data with --db and the
    tracking store both follow, as SQLAlchemy's own default (psycopg 3 since SQLAlchemy 2.1) may not be what is
    installed. A URL that names a driver, of another database, or with no driver installed, is kept as it is."""
    scheme, sep, rest = url.partition("://")
    there = installed_drivers(scheme) if sep else []
    return f"{scheme}+{there[0][0]}://{rest}" if there else url


def read_sql(query: str, url: str | None, *, chunksize: int = 50_000,
             tables: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Run ``query`` against the database at ``url`` (a SQLAlchemy URL or a SQLite/DuckDB file), in chunks.

    ``url=None`` runs it in DuckDB in memory, where ``tables`` are registered by name and files can be named
    in the query (``SELECT * FROM 'rows/*.parquet'``).
    """
    if not query or not query.strip():
        raise DataError("The SQL query is empty: pass --sql \"SELECT ...\".")
    if url is None:
        df = _read_duckdb(query, None, chunksize, tables or {})
    else:
        if "://" not in url:
            url = _url_for_file(url)
        if url.startswith("duckdb:"):
            path = url.split("://", 1)[1].removeprefix("/")
            if not Path(path).expanduser().is_file():
                raise DataError(f"DuckDB file {path!r} does not exist: check the path in --db.")
            df = _read_duckdb(query, path, chunksize, {})
        else:
            df = _read_sqlalchemy(query, url, chunksize)
    if df.empty:
        raise DataError(_NO_ROWS)
    seen: set[str] = set()
    for c in df.columns:
        if c in seen:
            raise DataError(f"The query returns two columns named {c!r}: give each one its own name with AS.")
        seen.add(c)
    return df


def _read_duckdb(query: str, path: str | None, chunksize: int, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    import duckdb
    import pyarrow as pa

    where = repr(path) if path else "DuckDB"
    try:
        con = duckdb.connect(path, read_only=True) if path else duckdb.connect()
    except duckdb.Error as e:
        raise DataError(f"Cannot open the DuckDB database {where}: {_first_line(e)}") from None
    try:
        for name, frame in tables.items():
            con.register(name, frame)
        relation = con.sql(query)
        if relation is None:
            raise DataError("The query returns no rows: --sql takes a SELECT (or another query that returns rows).")
        intervals = [c for c, t in zip(relation.columns, relation.types, strict=True) if str(t) == "INTERVAL"]
        if intervals:  # as seconds (a year as 365.25 days, a month as 30), as other durations are read
            quoted = ['"' + c.replace('"', '""') + '"' for c in intervals]
            relation = relation.project(f"* REPLACE ({', '.join(f'epoch({q}) AS {q}' for q in quoted)})")
        reader = relation.to_arrow_reader(chunksize)
        table = pa.Table.from_batches(list(reader), schema=reader.schema)
        df = table.to_pandas()
        if intervals:
            df.attrs["seconds"] = intervals
        return df
    except duckdb.Error as e:
        raise DataError(f"The query failed in {where}: {_first_line(e)}; fix the query in --sql.") from None
    finally:
        con.close()


def _read_sqlalchemy(query: str, url: str, chunksize: int) -> pd.DataFrame:
    import sqlalchemy as sa

    try:
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)  # as the user wrote it
        parsed = sa.engine.make_url(with_driver(url))  # no driver named: the one installed
    except sa.exc.ArgumentError:
        raise DataError(f"{url!r} is not a database URL: use dialect://user:password@host/database.") from None
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = 10
        if parsed.drivername == "postgresql" and not installed_drivers("postgresql"):
            raise DataError("Reading from PostgreSQL needs a driver: pip install 'mlengineer[sql]'.")
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database or ""
        if db and db != ":memory:" and not Path(db).is_file():
            raise DataError(f"SQLite file {db!r} does not exist: check the path in --db.")
        if db and db != ":memory:":  # open the file read-only
            parsed = parsed.set(database=f"file:{Path(db).resolve()}", query={"mode": "ro", "uri": "true"})
    try:
        engine = sa.create_engine(parsed, connect_args=connect_args)
    except (ImportError, ModuleNotFoundError) as e:
        extra = " (pip install 'mlengineer[sql]')" if parsed.get_backend_name() == "postgresql" else ""
        raise DataError(f"The driver for {shown!r} is not installed{extra}: {_first_line(e)}.") from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
        raise DataError(f"Cannot use the database URL {shown!r}: {_first_line(e)}.") from None
    frames: list[pd.DataFrame] = []
    intervals: list[str] = []
    try:
        try:
            con = engine.connect()
        except sa.exc.SQLAlchemyError as e:
            raise DataError(f"Cannot connect to {shown!r}: {_first_line(getattr(e, 'orig', None) or e)}; check "
                            "the user, password, host, port and database in --db.") from None
        with con:
            try:
                if engine.dialect.name == "postgresql":
                    con.exec_driver_sql("SET TRANSACTION READ ONLY")
                if engine.dialect.paramstyle in ("format", "pyformat"):  # a literal % (LIKE 'a%', x % 3)
                    query = query.replace("%", "%%")
                if engine.dialect.name == "postgresql":
                    query, intervals = _postgres_seconds(con, query)
                result = con.execution_options(stream_results=True).exec_driver_sql(query)
                if not result.returns_rows:
                    raise DataError("The query returns no rows: --sql takes a SELECT (or another query that "
                                    "returns rows).")
                columns = list(result.keys())
                while rows := result.fetchmany(chunksize):
                    frames.append(pd.DataFrame.from_records(rows, columns=columns, coerce_float=True))
            except sa.exc.SQLAlchemyError as e:
                raise DataError(f"The query failed on {shown!r}: {_first_line(getattr(e, 'orig', None) or e)}; fix "
                                "the query in --sql.") from None
    finally:
        engine.dispose()
    if not frames:
        raise DataError(_NO_ROWS)
    # a chunk of only NULLs has no type of its own: let the whole column decide
    df = (pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]).infer_objects()
    if intervals:
        df[intervals] = df[intervals].astype("float64")
        df.attrs["seconds"] = intervals
    return df


_PG_INTERVAL = 1186  # the OID of PostgreSQL's interval type


def _postgres_seconds(con: Any, query: str) -> tuple[str, list[str]]:
    """``query`` with its interval columns as seconds, the way PostgreSQL's own ``EXTRACT(EPOCH ...)`` counts
    them (a year as 365.25 days, a month as 30, as DuckDB and Spark do; the driver counts a year as 365), and
    those columns' names. The result's types come from the query planned with ``LIMIT 0``; a query that cannot
    be wrapped so (a statement other than a SELECT) is run as it is."""
    import sqlalchemy as sa

    body = query.strip().rstrip(";").strip()
    try:
        with con.begin_nested():
            probe = con.exec_driver_sql(f"SELECT * FROM ({body}) AS _q LIMIT 0")
            described = list(probe.cursor.description or [])
            probe.close()
    except sa.exc.SQLAlchemyError:
        return query, []
    names = [d[0] for d in described]
    intervals = [d[0] for d in described if d[1] == _PG_INTERVAL]
    if not intervals or len(set(names)) < len(names):
        return query, []

    def quoted(c: str) -> str:
        return '"' + c.replace('"', '""') + '"'

    cols = [f"EXTRACT(EPOCH FROM {quoted(c)})::float8 AS {quoted(c)}" if c in intervals else quoted(c) for c in names]
    return f"SELECT {', '.join(cols)} FROM ({body}) AS _q", intervals
