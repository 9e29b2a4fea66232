"""Tables as Spark DataFrames: Parquet, CSV and JSON files or folders (partitioned ``year=2024/`` folders
included), Delta tables (the Parquet files their log says are live, read without the delta-spark package),
and SQL over the session's catalog (a Hive table by name) or over DATA as the view ``data``.

Column names are tidied as the local loader tidies them, structs are flattened into dotted columns and lists,
maps and binary values become text as the local loader writes them (``nested.py``), so that both engines hand
the same columns to the schema, JSON's in the order the local reader gives them (``json_files.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..bundle.rows import recorded_marks
from ..data.files import is_local
from ..data.formats import FORMATS, csv_options, format_of
from ..data.parquet_parts import common_folder, is_pattern, matching
from ..errors import DataError
from .csv_files import dotted_columns, read_csv
from .json_files import ordered, read_json
from .nested import flat_columns
from .parts import check_csv_headers, csv_header, parquet_groups, read_parquet_parts

__all__ = ["LocalSource", "SparkTable", "check_source", "delta_files", "driver_sample", "is_local", "known_columns",
           "qcol", "read_table"]


@dataclass
class SparkTable:
    """A table read on Spark, with how it was read (for the one line a command prints)."""

    frame: Any
    where: str
    how: list[str] = field(default_factory=list)
    #: read as a union of parts of several schemas (``parts.read_parquet_parts``), or a query's result,
    #: whose plan may hold a union or a coalesce: xgboost's barrier stage refuses either as its input
    merged: bool = False
    #: columns renamed because the CSV header names them twice ({``x.1``: ``x``}), as ``load_table`` records them
    #: in ``df.attrs["source"]["renamed_columns"]``: the audit says so
    renamed: dict[str, str] = field(default_factory=dict)
    #: read from JSON: its lists arrive as raw text, and Spark's schema inference has already made a struct
    #: null in every row a string (``nested.flat_columns`` need not look for one)
    from_json: bool = False
    #: read from a JSON document (``[{...}, ...]``) rather than JSON Lines: how its raw text is parsed locally
    json_document: bool = False
    #: read from JSON: its columns' names in the order the local reader gives them (``json_files.column_order``)
    order: list[str] = field(default_factory=list)
    #: how a CSV file wrote its numbers, in the words of a bundle's ``read_marks`` (``pipeline.build``): its
    #: decimal comma and the columns read with thousands dots; empty where it wrote neither
    marks: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> dict[str, Any]:
        """How the table was read, in the keys of the local reader's ``df.attrs["source"]``."""
        return {"path": self.where, "format": " ".join(self.how),
                **({"renamed_columns": dict(self.renamed)} if self.renamed else {})}


def qcol(name: str) -> Any:
    """A column by name, quoted so that dots and spaces in names are taken literally."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _data_files(root: Path) -> list[Path]:
    """The data files under ``root`` (a file, or a folder of parts): hidden, ``_``-prefixed (``_SUCCESS``,
    ``_delta_log``) and checksum files left out, as Spark leaves them out."""
    if root.is_file():
        return [root]
    if not root.exists() and is_pattern(str(root)):  # 'rows/part-*.csv': the files it matches
        return matching(str(root))
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".crc")
                  and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts))


def _format(files: list[Path], where: str) -> str:
    kinds = set()
    for p in files:
        suffixes = [s.lower() for s in p.suffixes if s.lower() in FORMATS]
        if suffixes:
            kinds.add(FORMATS[suffixes[-1]])
        elif p.stat().st_size:
            kinds.add(format_of(p)[0])
    kinds.discard("")
    if not kinds:
        raise DataError(f"{where!r} holds no Parquet, CSV or JSON files: check the path.")
    if len(kinds) > 1:
        raise DataError(f"{where!r} mixes {' and '.join(sorted(kinds))} files: keep one format per folder.")
    fmt = kinds.pop()
    if fmt == "excel":
        raise DataError(f"Spark does not read Excel workbooks ({where!r}): save the sheet as CSV, or drop --engine "
                        "spark.")
    return "json" if fmt == "jsonl" else fmt


def delta_files(root: Path) -> list[Path]:
    """The Parquet files a Delta table's log holds live at its latest version (adds minus removes, from the
    last checkpoint on). Features that change how files are read (deletion vectors, column mapping) are
    refused with a message, since reading the files alone would give wrong rows."""
    log = root / "_delta_log"
    live: dict[str, None] = {}
    start = -1
    last = log / "_last_checkpoint"
    if last.is_file():
        import pyarrow.parquet as pq

        start = int(json.loads(last.read_text())["version"])
        # one file, or several parts (NNN.checkpoint.0000000001.0000000003.parquet)
        for part in sorted(log.glob(f"{start:020d}.checkpoint*.parquet")):
            rows = pq.read_table(part, columns=["add"]).to_pylist()
            live.update({row["add"]["path"]: None for row in rows if row.get("add")})
    commits = sorted((int(p.name.split(".")[0]), p) for p in log.glob("*.json") if p.name.split(".")[0].isdigit())
    for version, path in commits:
        if version <= start:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            action = json.loads(line) if line.strip() else {}
            features = set(action.get("protocol", {}).get("readerFeatures") or [])
            if features & {"deletionVectors", "columnMapping"}:
                raise DataError(f"The Delta table {str(root)!r} uses {', '.join(sorted(features))}: read it with "
                                "the delta-spark package (--spark-conf spark.jars.packages=io.delta:...) and --sql.")
            if "add" in action:
                live[action["add"]["path"]] = None
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    if not commits and start < 0:
        raise DataError(f"{str(log)!r} holds no commits: is {str(root)!r} a Delta table?")
    return [root / unquote(p) for p in live]


_UNREADABLE = (("time32", "a time of day"), ("time64", "a time of day"), ("timestamp[ns", "a timestamp in nanoseconds"),
               ("month_day_nano_interval", "an interval"))
#: seconds in one stored unit of a Parquet duration (Spark reads its whole numbers)
_DURATION_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@dataclass
class LocalSource:
    """What is at a local DATA path, found in one walk of its files (and of its Parquet footers):
    ``check_source`` makes it before Spark starts, and ``read_table`` reads from it without walking again."""

    source: str
    root: Path
    pattern: bool = False  # a pattern of file names ('rows/part-*.csv') rather than a path
    delta: bool = False  # a Delta table: its log, read by ``delta_files``, names the files
    files: list[Path] = field(default_factory=list)
    fmt: str = ""
    #: Parquet parts by schema (``parts.parquet_groups``); CSV's reading options
    groups: list[tuple[dict[str, Any], list[Path]]] = field(default_factory=list)
    csv: dict[str, Any] = field(default_factory=dict)
    checked: bool = False  # by ``check_source``: its column types and headers are known to be readable


def _walk(source: str, marks: dict[str, Any] | None = None) -> LocalSource:
    root = Path(source.removeprefix("file://"))
    pattern = not root.exists() and is_pattern(str(root))
    if not root.exists() and not pattern:
        raise DataError(f"Data file {str(root)!r} does not exist: check the path.")
    if root.is_dir() and (root / "_delta_log").is_dir():
        return LocalSource(source, root, delta=True)
    files = _data_files(root)
    if not files:
        raise DataError(f"{str(root)!r} holds no data files (hidden and _-prefixed ones are skipped): check the path.")
    found = LocalSource(source, root, pattern, files=files, fmt=_format(files, str(root)))
    if found.fmt == "parquet":
        found.groups = parquet_groups(files)
    elif found.fmt == "csv":
        found.csv = csv_options(files[0], format_of(files[0])[1], marks=marks)
    return found


def _check_parquet_types(types: dict[str, Any], path: Path) -> None:
    """Name the first column of a Parquet file whose type Spark cannot read, before Spark tries."""
    for name, kind in ((n, str(t)) for n, t in types.items()):
        what = next((w for prefix, w in _UNREADABLE if kind.startswith(prefix)), None)
        if what is not None:
            raise DataError(f"Column {name!r} of {str(path)!r} is {what} ({kind}), which Spark cannot read: "
                            "write it as text or as a timestamp in microseconds, or drop it.")


def _check_csv(found: LocalSource) -> None:
    check_csv_headers(found.files, found.csv)


def check_source(source: str | None, marks: dict[str, Any] | None = None) -> LocalSource | None:
    """The checks that need no Spark, made before one starts: a local path exists, holds data files, its
    Parquet columns are of types Spark reads and its CSV parts agree. Returns what it found, for ``read_table``
    (None for a remote source, or none). ``marks``: how a model's training file wrote its numbers and the
    columns read as their text (``data.formats.sniff_csv``'s, from ``bundle.rows.read_marks`` or
    ``written_marks``), which a CSV file is read by."""
    if not source or not is_local(source):
        return None
    found = _walk(source, marks)
    if found.fmt == "parquet":
        if found.groups:  # one part of each schema
            for types, paths in found.groups:
                _check_parquet_types(types, paths[0])
        else:  # a footer that cannot be read: check the first part's, if it can be (Spark names a damaged one)
            import pyarrow.parquet as pq

            try:
                schema = pq.read_schema(found.files[0])
            except Exception:
                schema = []
            _check_parquet_types({f.name: f.type for f in schema}, found.files[0])
    elif found.fmt == "csv":
        _check_csv(found)
    found.checked = True
    return found


def known_columns(found: LocalSource) -> list[str] | None:
    """The columns Spark will read from ``found``, named as ``_tidy`` names them, where the files tell without
    Spark: a CSV file's header, Parquet parts' footers. None where only reading tells (JSON, a Delta table,
    ``year=2024/`` partition folders, structs to flatten, a blank name, a name given twice)."""
    if found.delta or any("=" in part for p in found.files for part in p.relative_to(
            common_folder(found.files) if found.pattern else found.root).parts[:-1]):
        return None
    if found.fmt == "csv" and found.csv.get("header", 0) == 0:
        raw = next((h for h in (csv_header(p, found.csv["sep"], found.csv["encoding"]) for p in found.files)
                    if h is not None), None)
    elif found.fmt == "parquet" and found.groups:
        import pyarrow as pa

        types = {n: t for group, _ in found.groups for n, t in group.items()}
        raw = None if any(pa.types.is_struct(t) for t in types.values()) else list(types)
    else:
        return None
    names = [str(n).strip() for n in raw or []]  # Spark names a blank one _c2, and tells names apart by case only
    return names if names and all(names) and len({n.lower() for n in names}) == len(names) else None


def _read_path(spark: Any, source: str, found: LocalSource | None, marks: dict[str, Any] | None = None
               ) -> SparkTable:
    if not is_local(source):
        suffix = Path(source.rstrip("/")).suffix.lower()
        fmt = FORMATS.get(suffix, "parquet")
        if fmt == "csv":
            return SparkTable(read_csv(spark, [source], None, {})[0], source, ["CSV"])
        if fmt in ("json", "jsonl"):
            frame, order = read_json(spark, [source], False)
            return SparkTable(frame, source, ["JSON"], from_json=True, order=order)
        return SparkTable(spark.read.format(fmt).load(source), source, [fmt.upper()])
    found = found if found is not None and found.source == source else _walk(source, marks)
    root, files = found.root, found.files
    if found.delta:
        files = delta_files(root)
        if not files:
            raise DataError(f"The Delta table {str(root)!r} holds no live files: it has no rows.")
        frame = spark.read.option("basePath", str(root)).parquet(*map(str, files))
        return SparkTable(frame, str(root), ["Delta", f"{len(files)} live Parquet files"])
    how = [found.fmt.upper()] + ([f"{len(files)} parts"] if root.is_dir() or found.pattern else [])
    # a pattern's files are read as a list (Spark's own globs know no '**'), beside their common folder
    paths = [str(f) for f in files] if found.pattern else [str(root)]
    if found.fmt == "parquet":
        if len(found.groups) > 1:
            base = common_folder(files) if found.pattern else root
            frame, words = read_parquet_parts(spark, base, found.groups)
            return _durations_as_seconds(SparkTable(frame, str(root), [*how, words], merged=True), found)
        return _durations_as_seconds(SparkTable(spark.read.parquet(*paths), str(root), how), found)
    if found.fmt == "json":
        with open(files[0], "rb") as f:  # the beginning only: the file may be larger than memory
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        document = head[:1] == b"["
        frame, order = read_json(spark, paths, document, files)
        return SparkTable(frame, str(root), how, from_json=True, json_document=document, order=order)
    if not found.checked:
        _check_csv(found)
    comma = found.csv.get("decimal") == ","
    frame, renamed = read_csv(spark, paths, files, found.csv)
    # the read line names the columns of thousands dots, as the local reader's does, and the bundle records them
    dotted = [str(frame.columns[j]).strip() for j in dotted_columns(found.csv) if j < len(frame.columns)]
    how += ["decimal comma"] if comma else []
    how += [f"dots as thousands marks in {', '.join(map(repr, dotted[:5]))}"] if dotted else []
    return SparkTable(frame, str(root), how, renamed=renamed, marks=recorded_marks(found.csv.get("decimal"), dotted))


def _durations_as_seconds(table: SparkTable, found: LocalSource) -> SparkTable:
    """The Parquet durations of ``table`` (whole numbers of their unit to Spark) as seconds, as the local
    loader reads them."""
    import pyarrow as pa

    units = {name: _DURATION_UNITS[t.unit] for types, _ in found.groups for name, t in types.items()
             if pa.types.is_duration(t)}
    if units:
        table.frame = table.frame.withColumns({n: qcol(n).cast("double") * u for n, u in units.items()})
        table.how.append(f"durations as seconds: {', '.join(list(units)[:5])}")
    return table


def _tidy(frame: Any, where: str, *, from_json: bool = False, document: bool = False, order: Any = ()) -> Any:
    """Names as stripped text (blank ones numbered), each named once; structs flattened into dotted columns,
    lists and maps as JSON text (``nested.flat_columns``), binary values as text, decimals as doubles: the
    columns the local loader would hand over, in ``order`` where one is given (JSON: ``json_files.ordered``)."""
    from pyspark.sql import types as T

    names = [str(f.name).strip() or f"column_{i + 1}" for i, f in enumerate(frame.schema.fields)]
    _once(names, where)
    leaves = flat_columns(frame, names, look_for_nulls=not from_json,
                          json_mode=("document" if document else "lines") if from_json else None)
    _once([name for _, _, name in leaves], where)  # a field's dotted name may be another column's
    cols = []
    for c, kind, name in leaves:
        if isinstance(kind, T.BinaryType):
            c = c.cast("string")
        elif isinstance(kind, T.DecimalType):
            c = c.cast("double")
        elif isinstance(kind, T.DayTimeIntervalType | T.YearMonthIntervalType):
            c = _seconds(c, kind)
        cols.append(c.alias(name))
    if order:
        cols = [cols[j] for j in ordered([name for _, _, name in leaves], list(order))]
    return frame.select(*cols)


def _once(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise DataError(f"{where!r} has two columns named {n!r}: give each column its own name.")
        seen.add(n)


#: seconds in one unit of a day-time interval's last field: day, hour, minute, second
_DAY_TIME_UNIT = {0: 86400, 1: 3600, 2: 60, 3: 1}


def _seconds(c: Any, kind: Any) -> Any:
    """An interval column as seconds (a double), as the local loader reads durations (DuckDB's ``epoch``): Spark
    casts an interval to the count of its last field's units; a year is 365.25 days and a month left over 30."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(kind, T.DayTimeIntervalType):
        return c.cast("decimal(38,6)").cast("double") * _DAY_TIME_UNIT[kind.endField]
    months = c.cast("long") * (12 if kind.endField == 0 else 1)
    years = (months / 12).cast("long")
    return (years * 365.25 + (months - years * 12) * 30) * 86400.0 + F.lit(0.0)


def read_table(spark: Any, source: str | None, *, sql: str | None = None, found: LocalSource | None = None,
               marks: dict[str, Any] | None = None) -> SparkTable:
    """``source`` (a file, a folder of parts, a Delta table, or a remote URI Spark can reach) as a Spark
    DataFrame; with ``sql``, the query's result, ``source`` (when given) being the view ``data``. ``found``
    is what ``check_source(source, marks)`` returned: the files it found are read without walking the folder
    again; ``marks`` as ``check_source`` takes them, where it was not called."""
    if sql:
        how = ["SQL"]
        if source:  # the view holds the columns the local loader hands DuckDB: flat, lists as text
            data = _read_path(spark, source, found, marks)
            _tidy(data.frame, data.where, from_json=data.from_json, document=data.json_document,
                  order=data.order).createOrReplaceTempView("data")
            how.append(f"over {source} as the view 'data'")
        table = SparkTable(spark.sql(sql), "the query", how, merged=True)
    elif not source:
        raise DataError("No data given: pass a file or folder, or --sql QUERY (a table in Spark's catalog).")
    else:
        table = _read_path(spark, source, found, marks)
    table.frame = _tidy(table.frame, table.where, from_json=table.from_json, document=table.json_document,
                        order=table.order)
    return table


def driver_sample(frame: Any, n_rows: int, max_rows: int, *, seed: int = 0) -> Any:
    """About ``max_rows`` rows drawn at random from ``frame`` (which has ``n_rows``), as pandas, through
    Arrow: what the driver holds stays the same size however large the table grows. (A sample cut to an
    exact size would favour the first partitions, which in a table written in time order are the oldest.)"""
    if n_rows > max_rows:
        frame = frame.sample(withReplacement=False, fraction=max_rows / n_rows, seed=seed)
    return frame.toPandas()
