"""CSV read by Spark as the local reader reads it: quoted cells that hold line breaks or quotes written twice
(``""``, as pandas writes them), a header naming a column twice (``x, x.1``, as pandas names them; Spark says
``x0, x1``), no header (``column_1``...), numbers written with a decimal comma, and in a file of decimal points,
columns of numbers written with thousands dots (1.234.567); a column whose role keeps its text (``written_marks``)
is read as its text.

Spark reads a file whose quoted cells may hold line breaks whole, in one task (its ``multiLine``): a file
larger than one split (128 MiB) is read so only when one of its lines holds an odd number of quotes (a cell
going on to the next line), found in one pass over its lines; other files are split among tasks as usual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.sheets import renamed_columns
from ..data.values import thousands_dots_cell
from .parts import csv_header

__all__ = ["csv_reader", "dotted_columns", "multi_line", "pandas_names", "read_csv"]

#: a table larger than this on disk infers CSV column types from a tenth of its rows
_SAMPLING_BYTES = 1 << 30
#: a file larger than this is split among tasks unless a quoted cell in it holds a line break (Spark's split size)
SPLIT_BYTES = 128 << 20


def csv_reader(spark: Any, *, lines: bool = True) -> Any:
    """Spark's CSV reader reading quoted cells as pandas reads them: a quote written twice (``""``) is one
    quote (Spark's default escape is a backslash), and, with ``lines``, a line break inside quotes is part of
    the cell."""
    return spark.read.option("multiLine", lines).option("quote", '"').option("escape", '"')


def multi_line(spark: Any, paths: list[str], sizes: list[int] | None) -> bool:
    """Whether the CSV files at ``paths`` must be read whole (``multiLine``): yes when none is larger than a
    split (``sizes``, None where unknown) and so read whole anyway, else when a line holds an odd number of
    quotes, that is a quoted cell that goes on to the next line (one pass, ending at the first such line)."""
    from pyspark.sql import functions as F

    if sizes is not None and max(sizes, default=0) <= SPLIT_BYTES:
        return True
    line = F.col("value")
    quotes = F.length(line) - F.length(F.regexp_replace(line, '"', ""))
    return bool(spark.read.text(paths).where(quotes % 2 == 1).limit(1).count())


def read_csv(spark: Any, paths: list[str], files: list[Path] | None, opts: dict[str, Any]
             ) -> tuple[Any, dict[str, str]]:
    """The CSV parts at ``paths`` as one DataFrame, its columns named as the local reader names them, and the
    columns renamed because the header names them twice. ``files`` and ``opts`` (``csv_options``: delimiter,
    encoding, header, decimal comma) are known for local files; None and {} for a remote path."""
    sizes = None if files is None else [p.stat().st_size for p in files]
    reader = (csv_reader(spark, lines=multi_line(spark, paths, sizes)).option("header", opts.get("header", 0) == 0)
              .option("inferSchema", True).option("mode", "PERMISSIVE")
              .option("samplingRatio", 0.1 if sum(sizes or [0]) > _SAMPLING_BYTES else 1.0))
    for key, option in (("sep", "sep"), ("encoding", "encoding"), ("skipinitialspace", "ignoreLeadingWhiteSpace")):
        if opts.get(key):
            reader = reader.option(option, opts[key])
    comma = opts.get("decimal") == ","
    cells = set(opts.get("converters") or ()) if comma else set(dotted_columns(opts))
    written = set(opts.get("dtype") or ())  # a categorical, text or identifier column of dotted numbers: its text
    frame = reader.csv(paths)
    frame, renamed = _local_names(string_cells(reader, frame, paths, cells | written) if cells | written else frame,
                                  files or [], opts)
    return (_decimal_commas(frame, cells, others=comma, skip=written) if comma or cells else frame), renamed


def dotted_columns(opts: dict[str, Any]) -> list[int]:
    """The positions of the columns ``opts`` (``csv_options``'s) reads with thousands dots (1.234.567) in a file
    whose other numbers write a decimal point."""
    return sorted(j for j, f in (opts.get("converters") or {}).items() if f is thousands_dots_cell)


def pandas_names(names: list[str]) -> list[str]:
    """A header's names made unique as pandas' CSV reader makes them: a repeated name gets ``.1``, ``.2``, ...,
    skipping a suffix another column of the header already has (``x, x, x.1`` is read as ``x, x.2, x.1``)."""
    names = list(names)
    counts: dict[str, int] = {}
    for i, old in enumerate(names):
        col, n = old, counts.get(old, 0)
        while n > 0:
            counts[old] = n + 1
            col = f"{old}.{n}"
            n = n + 1 if col in names else counts.get(col, 0)
        names[i] = col
        counts[col] = n + 1
    return names


def _local_names(frame: Any, files: list[Path], opts: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """``frame`` (CSV read by Spark) with the names the local reader gives its columns: ``column_1``... without a
    header; a name the header repeats as pandas renames it (``x, x.1``, where Spark says ``x0, x1``), with the
    columns so renamed ({new name: the header's})."""
    if opts.get("header", 0) is None:
        return frame.toDF(*[f"column_{i + 1}" for i in range(len(frame.columns))]), {}
    if not files:
        return frame, {}
    raw = next((h for h in (csv_header(p, opts["sep"], opts["encoding"]) for p in files) if h is not None), None)
    if raw is None or len(raw) != len(frame.columns) or len(set(raw)) == len(raw):
        return frame, {}
    names = [new if old else spark for new, old, spark in zip(pandas_names(raw), raw, frame.columns, strict=True)]
    if len({n.lower() for n in names}) < len(names):  # Spark tells names apart regardless of case: keep its own
        return frame, {}
    return frame.toDF(*names), renamed_columns(names, raw)


#: text pandas reads as missing by default (its na_values), which a column of numbers may hold
_NA_TEXT = ["#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
            "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
#: white space at either end of a text, as Python's ``str.strip`` takes it off (a no-break space too)
TRIM = r"(?U)^\s+|\s+$"
_COMMA_NUMBER = r"^[-+]?([0-9]+|[0-9]*,[0-9]+)([eE][-+]?[0-9]+)?$"
#: ``comma_decimal_cell``'s numbers: 1,5 / 1,5e3 (no dot, ending in a digit), or ``values._COMMA_NUMBER``
#: (1.234,5 with thousands dots, 12, with a comma and no decimals)
_CELL_NUMBER = (r"^[-+]?([0-9]+,?[0-9]*|,[0-9]+)([eE][-+]?[0-9]+)?(?<=[0-9])$"
                r"|^([-+]?([1-9][0-9]{0,2}(\.[0-9]{3})+|[0-9]+)(,[0-9]*)?|[-+]?,[0-9]+)$")
_UNIT_PARTS = (r"(?U)^((\()?\s*(-?)\s*([$€£¥])?\s*(-?)\s*)([0-9][0-9,.]*|\.[0-9]+)(\s*([$€£¥%])?\s*(\))?)$")
_UNIT_COMMA = r"^([-+]?([1-9][0-9]{0,2}(\.[0-9]{3})+|[0-9]+)(,[0-9]*)?|[-+]?,[0-9]+)$"


def _col(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _point(text: Any) -> Any:
    """A number written with decimal commas (and thousands dots) written with a decimal point: 1.234,5 as 1234.5."""
    from pyspark.sql import functions as F

    return F.translate(F.regexp_replace(text, r"\.", ""), ",", ".")


def _comma_cell(c: Any) -> tuple[Any, Any]:
    """(the number, the text) of a cell as ``values.comma_decimal_cell`` reads it: a number as a double (null
    otherwise); a number written with a currency or percent sign as text with a decimal point ("3,50 €" as
    "3.50 €"), other text as it is."""
    from pyspark.sql import functions as F

    s = F.regexp_replace(c, TRIM, "")
    number = F.when(s.rlike(_CELL_NUMBER), _point(s).try_cast("double"))
    num = F.regexp_extract(s, _UNIT_PARTS, 6)
    unit = F.when(s.rlike(_UNIT_PARTS) & num.rlike(_UNIT_COMMA),
                  F.concat(F.regexp_extract(s, _UNIT_PARTS, 1), _point(num), F.regexp_extract(s, _UNIT_PARTS, 7)))
    return number, F.coalesce(F.when(number.isNotNull(), _point(s)), unit, c)


def string_cells(reader: Any, frame: Any, paths: list[str], columns: Any) -> Any:
    """``frame`` read again with the ``columns`` (positions) that Spark read as numbers read as text: a cell
    the local reader reads cell by cell (1.234 has a thousands dot, 1234, not 1.234)."""
    from pyspark.sql import types as T

    fields = frame.schema.fields
    if all(j >= len(fields) or isinstance(fields[j].dataType, T.StringType) for j in columns):
        return frame
    return reader.schema(T.StructType([T.StructField(f.name, T.StringType()) if j in columns else f
                                       for j, f in enumerate(fields)])).csv(paths)


def _decimal_commas(frame: Any, cells: Any = (), *, others: bool = True, skip: Any = ()) -> Any:
    """Text columns whose every value is a number written with a decimal comma (``1,5``; whole numbers and
    pandas' missing-value words may be among them) as doubles, as the local reader's ``decimal=","`` reads
    them; the columns at the positions ``cells`` (``sniff_csv``'s converters) cell by cell as it reads them
    (``comma_decimal_cell``: 1.234,5, 3,50 €, and 1.234.567 in a file of decimal points): as doubles where every
    value is a number, else as text with decimal points. Without ``others`` (a file of decimal points) only
    ``cells`` are read so; the columns at ``skip`` keep their text. One pass counts, for each text column, its
    values that are not such numbers."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    fields = frame.schema.fields
    texts = [(j, f.name) for j, f in enumerate(fields) if isinstance(f.dataType, T.StringType)
             and j not in skip and (others or j in cells)]
    if not texts:
        return frame

    def trimmed(name: str) -> Any:
        return F.trim(_col(name))

    def number(j: int, name: str) -> Any:
        if j in cells:
            return _comma_cell(_col(name))[0]
        return F.when(trimmed(name).rlike(_COMMA_NUMBER), F.regexp_replace(trimmed(name), ",", ".").cast("double"))

    counts = frame.agg(*[F.count(F.when(trimmed(n).isNotNull() & ~trimmed(n).isin(_NA_TEXT)
                                        & number(j, n).isNull(), 1)).alias(f"o{j}") for j, n in texts]).first()
    out, read = [], {j for j, _ in texts}
    for j, f in enumerate(fields):
        c = _col(f.name)
        if j not in read or (j not in cells and counts[f"o{j}"]):
            out.append(c)
        elif not counts[f"o{j}"]:
            out.append(F.when(~trimmed(f.name).isin(_NA_TEXT), number(j, f.name)).alias(f.name))
        else:
            out.append(F.when(~trimmed(f.name).isin(_NA_TEXT), _comma_cell(c)[1]).alias(f.name))
    return frame.select(*out)
