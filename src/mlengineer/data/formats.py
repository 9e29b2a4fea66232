"""What a file is and how its delimited text is written: format and compression from the name or the first
bytes, and the encoding, delimiter, decimal comma and header row of CSV text, sniffed from a sample."""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import lzma
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .roles import _ID_NAME
from .values import MISSING_TOKENS, comma_decimal_cell, comma_decimal_cells, comma_number, thousands_dots_cell

__all__ = ["FORMATS", "ODD_BYTES", "SAMPLE_BYTES", "SUPPORTED_SUFFIXES", "comma_columns", "csv_options", "format_of",
           "read_csv_table", "read_sample", "sniff_csv", "text_comma_columns", "written_booleans", "written_marks"]

_COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2", ".xz": "xz"}
FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".tab": "csv", ".dat": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel",
}
SUPPORTED_SUFFIXES = tuple(FORMATS)
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
SAMPLE_BYTES = 1 << 16
_DELIMITERS = (",", ";", "\t", "|")


# -- what a file is ------------------------------------------------------------------------------------------
def format_of(path: Path) -> tuple[str, str | None]:
    """(format, compression) from the file name, or from its first bytes when the name says nothing."""
    suffixes = [s.lower() for s in path.suffixes if len(s) <= 8]
    compression = _COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    with path.open("rb") as f:
        head = f.read(8)
    magic = next((c for m, c in _MAGIC if head.startswith(m)), None)
    if magic and fmt != "parquet":
        compression = magic  # a compressed file whose name does not say so
    if fmt is None:
        if suffixes:
            raise DataError(
                f"Cannot tell the format of {str(path)!r} from its name: use one of "
                f"{', '.join(SUPPORTED_SUFFIXES)} (optionally with .gz, .zst, .bz2 or .xz)."
            )
        fmt = _format_from_content(path, compression, head)
    return fmt, compression


def _format_from_content(path: Path, compression: str | None, head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "excel"
    first = read_sample(path, compression, 4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if first[:1] in (b"{", b"["):
        return "json"
    return "csv"


def read_sample(path: Path, compression: str | None, n: int = SAMPLE_BYTES) -> bytes:
    """The first ``n`` bytes of the file, decompressed."""
    if compression == "zstd":
        import zstandard

        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as f:
            return bytes(f.read(n))
    opener: Any = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(compression or "")
    if opener is not None:
        with opener(path, "rb") as f:
            return bytes(f.read(n))
    with path.open("rb") as f:
        return f.read(n)


def _odd_bytes(e: UnicodeError) -> tuple[str, int]:
    """Bytes the file's encoding cannot read, read as Windows-1252 (Latin-1 where it has no character)."""
    if not isinstance(e, UnicodeDecodeError):
        raise e
    bad = e.object[e.start:e.end]
    return "".join(_cp1252_char(b) for b in bad), e.end


def _cp1252_char(b: int) -> str:
    try:
        return bytes([b]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(b)


#: the decoding error handler for a byte met past the sniffed sample that its encoding cannot read (a
#: UTF-8 file with one Windows-1252 'é' far down): the whole table and a stream of chunks read it alike
ODD_BYTES = "mlengineer-cp1252"
codecs.register_error(ODD_BYTES, _odd_bytes)


# -- sniffing delimited text ------------------------------------------------------------------------------
def _decode(sample: bytes) -> tuple[str, str]:
    """(text, encoding) of the sample: a byte-order mark wins, then UTF-8, Windows-1252 and Latin-1."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return sample.decode("utf-16", errors="ignore"), "utf-16"
    if len(sample) >= 4 and sample[1::2].count(0) > 0.4 * len(sample) / 2 and sample[0] != 0:
        return sample.decode("utf-16-le", errors="ignore"), "utf-16-le"  # UTF-16 without a byte-order mark
    utf8 = "utf-8-sig" if sample.startswith(b"\xef\xbb\xbf") else "utf-8"
    for enc in (utf8, "cp1252", "latin-1"):
        try:
            return sample.decode(enc), enc
        except UnicodeDecodeError as e:
            if enc == utf8 and e.start > len(sample) - 4:  # a character cut at the end of the sample
                return sample[: e.start].decode(enc), enc
    return sample.decode("latin-1"), "latin-1"


def _rows(lines: list[str], sep: str) -> list[list[str]]:
    try:
        return list(csv.reader(lines, delimiter=sep))
    except csv.Error:
        return []


def _sniff_delimiter(lines: list[str], suffix: str) -> str:
    """The delimiter that splits the sample's lines into the most consistent number of fields (> 1)."""
    if suffix in (".tsv", ".tab"):
        return "\t"
    best, best_score = ",", (0.0, 0)
    for sep in _DELIMITERS:
        counts = [len(r) for r in _rows(lines, sep) if r]
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        score = (round(counts.count(mode) / len(counts), 2), mode)
        if score > best_score:
            best, best_score = sep, score
    return best


def _is_number(v: str) -> bool:
    try:
        float(v.replace(",", "."))
        return True
    except ValueError:
        return False


def _has_header(rows: list[list[str]]) -> bool:
    """Whether the first row names the columns. A header cell is text; a file whose first row holds
    numbers exactly where the other rows do has no header. Tables that cannot tell (all text) have one."""
    if len(rows) < 2:
        return True
    first, body = rows[0], rows[1:]
    width = min(len(first), max(len(r) for r in body))
    numeric_cols = []
    for j in range(width):
        values = [r[j].strip() for r in body if j < len(r) and r[j].strip()]
        if values and sum(map(_is_number, values)) >= 0.9 * len(values):
            numeric_cols.append(j)
    if not numeric_cols:
        return True
    cells = [first[j].strip() for j in numeric_cols]
    if not all(c and _is_number(c) for c in cells):
        return True
    years = all(re.fullmatch(r"(19|20)\d\d", c) for c in cells) and len(set(cells)) == len(cells) > 1
    return bool(years and len(numeric_cols) == width)  # a wide table whose columns are years


#: a number written with a decimal comma, which no thousands separator writes: 48,88 / 0,336 / 1234,5 /
#: 1.234,5 (a thousands dot) / ,5
_DECIMAL_COMMA = re.compile(r"\d+,(\d{1,2}|\d{4,})|0,\d+|\d{4,},\d+|\d{1,3}(\.\d{3})+,\d+|,\d+")
#: 1.234.567: thousands dots, which no number written with a decimal point writes (1.234 alone may be either)
_THOUSANDS_DOTS = re.compile(r"[1-9]\d{0,2}(\.\d{3}){2,}(,\d*)?")
#: a decimal point no thousands dot writes (7.12, 0.336, 1.2345): where another column writes these, 1.234.567
#: says nothing of the file's decimal mark
_DECIMAL_POINT = re.compile(r"\d*\.(\d{1,2}|\d{4,})|0\.\d+")
#: 1,500: a thousands comma, or 1.5 with three decimals (a ';' between the fields tells which)
_COMMA_THREE = re.compile(r"[1-9]\d{0,2},\d{3}")
#: a number written with thousands commas, which no decimal comma writes: 1,234.5 / 1,234,567
_THOUSANDS_COMMA = re.compile(r"\d{1,3}(,\d{3})+\.\d*|\d{1,3}(,\d{3}){2,}")
_NUMBER_LIKE = re.compile(r"[-+(]?\s*[$€£¥]?\s*-?[\d.,]*\d[\d.,]*\s*[$€£¥%]?\s*\)?")
_UNIT_CHARS = "$€£¥%()+- "


def _decimal_comma_columns(body: list[list[str]], sep: str, keep: set[int]) -> tuple[list[int] | None, bool]:
    """Whether the sample's rows write their numbers with decimal commas: None when they do not; when they do, the
    columns of numbers the reader must read cell by cell (``comma_decimal_cell``), those holding a thousands dot, a
    currency or percent sign, or text (a placeholder) among the numbers. The columns that look like numbers tell
    (``keep`` and addresses aside): 48,88, 1.234,5 or 1.234.567 say decimal comma (a ',' between the fields aside),
    1,234.5 says thousands comma, 1,500 says decimal comma only between fields split by ';'; 1.234 alone says
    nothing (docs/design.md). Beside it, whether the sample writes a decimal point (6.97, 1,234.5)."""
    if sep == "," or not body:
        return None, False
    decimal = thousands = three = dots = points = False
    columns = []
    for j in range(max(len(r) for r in body)):
        cells = _filled(body, j)
        if j in keep or any(map(_ADDRESS.fullmatch, cells)):
            continue
        looks = [c for c in cells if _NUMBER_LIKE.fullmatch(c)]
        if not looks or len(looks) < 0.9 * len(cells):
            continue
        cores = [c.strip(_UNIT_CHARS) for c in looks]
        decimal = decimal or any(_DECIMAL_COMMA.fullmatch(c) for c in cores)
        dots = dots or any(_THOUSANDS_DOTS.fullmatch(c) for c in cores)
        points = points or any(_DECIMAL_POINT.fullmatch(c) for c in cores)
        thousands = thousands or any(_THOUSANDS_COMMA.fullmatch(c) for c in cores)
        three = three or any(_COMMA_THREE.fullmatch(c) for c in cores)
        # read cell by cell (slower than pandas' own decimal=",", but a '?' or a '1.234,5' met after the sample
        # would leave pandas' column text)
        if all(map(comma_number, looks)) and (len(looks) < len(cells) or any(not c.isdigit() for c in cores)):
            columns.append(j)
    if thousands or not (decimal or (dots and not points) or (three and sep == ";")):
        return None, points or thousands
    return columns, False


#: a number as thousands dots write it: 999, 12.345, 1.234.567 (a decimal comma after it in a quoted cell); its
#: first group has no leading zero (012.345 is a code)
_DOTTED = re.compile(r"-?([1-9]\d{0,2}(\.\d{3})*|0)(,\d+)?")
#: an IPv4 address, four groups of at most 255 (192.168.173.179), which no thousands dots write
_ADDRESS = re.compile(r"((25[0-5]|2[0-4]\d|[01]?\d?\d)\.){3}(25[0-5]|2[0-4]\d|[01]?\d?\d)")
#: a column whose name says it holds addresses, codes or versions (ip, part_code, hostAddress): no thousands dots
_CODE_NAME = re.compile(r"(^|[_\s.-])(?i:ip|ipv4|ip_?addr(ess)?|addr|address|host|code|version|serial|sku|part|"
                        r"phone|zip|postcode|isbn|ean)s?($|[_\s.-])|[a-z](Ip|Addr|Address|Code|Part)s?$")


def _dotted(cells: list[str]) -> bool:
    """Whether every cell may be a number written with thousands dots (999, 12.345, 1.234.567), an address not."""
    return all(_DOTTED.fullmatch(c) and not _ADDRESS.fullmatch(c) for c in cells)


def _thousands_dots_columns(body: list[list[str]], keep: set[int]) -> list[int]:
    """The columns (``keep`` aside) of a sample not written with decimal commas whose every filled cell is a number
    written with thousands dots, one at least with two (1.234.567; 12.345 alone may be a decimal point)."""
    return [j for j in range(max((len(r) for r in body), default=0)) if j not in keep
            and (cells := _filled(body, j)) and _dotted(cells) and any(_THOUSANDS_DOTS.fullmatch(c.lstrip("-")) for c in cells)]


def _filled(body: list[list[str]], j: int) -> list[str]:
    """The filled cells of the sample's column ``j``, stripped, placeholders (NA, ?) aside."""
    return [c for r in body if j < len(r) and (c := r[j].strip()) and c.lower() not in MISSING_TOKENS]


def written_marks(marks: dict[str, Any] | None, roles: dict[str, str] | None) -> dict[str, Any] | None:
    """``marks`` (``sniff_csv``'s) with the columns whose given role keeps their text (categorical, text,
    identifier) read as written (``as_written``): 118.951.736 no number of thousands dots."""
    kept = sorted(c for c, r in (roles or {}).items() if r in ("categorical", "text", "identifier"))
    return {**(marks or {}), "as_written": kept} if kept else marks


def sniff_csv(sample: bytes, suffix: str = ".csv", marks: dict[str, Any] | None = None) -> dict[str, Any]:
    """read_csv options for delimited text whose first bytes are ``sample``. ``marks``: how the training file's
    numbers were written (a model's ``read_marks``: ``decimal`` ',' and the ``thousands_dots`` columns), read so
    where the sample cannot tell (12.345 alone may be either). The columns ``as_written`` (``written_marks``) and
    those named like addresses, codes or identifiers (ip, part_code, customer_id) are read as their text."""
    text, encoding = _decode(sample)
    if "\x00" in text:
        raise DataError("it holds binary content, not text")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(text) >= len(sample) - 4 and len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of the sample may be cut in the middle
    lines = lines[:200]
    if not lines:
        raise DataError("it holds no text lines")
    sep = _sniff_delimiter(lines, suffix)
    rows = _rows(lines, sep)
    opts: dict[str, Any] = {"sep": sep, "encoding": encoding}
    if rows and not _has_header(rows):
        opts["header"] = None
    body = rows if "header" in opts else rows[1:]
    names = [f"column_{j + 1}" for j in range(max((len(r) for r in body), default=0))] if "header" in opts \
        else [c.strip() for r in rows[:1] for c in r]
    written = set((marks or {}).get("as_written") or ())
    keep = {j for j, n in enumerate(names) if n in written or _CODE_NAME.search(n) or _ID_NAME.search(n)}
    comma_columns, points = _decimal_comma_columns(body, sep, keep)
    if comma_columns is not None:  # 1,5;2,25: a decimal comma, as spreadsheets write in much of Europe
        opts["decimal"] = ","
        if comma_columns:  # 1.234,5, or a '?' among them
            opts["converters"] = dict.fromkeys(comma_columns, comma_decimal_cell)  # read cell by cell
    elif dotted := _thousands_dots_columns(body, keep):  # 1.234.567 in a file of decimal points: thousands dots
        opts["converters"] = dict.fromkeys(dotted, thousands_dots_cell)
    if marks:
        _as_trained(opts, names, body, marks, keep, points)
    _as_written(opts, body, keep)
    if len(lines) > 1 and sum(f"{sep} " in ln for ln in lines) > 0.8 * len(lines):
        opts["skipinitialspace"] = True
    if rows:
        widths = [len(r) for r in rows[1:] if r]
        if widths and "header" not in opts:
            mode = max(set(widths), key=widths.count)
            if mode > len(rows[0]) and widths.count(mode) > 0.9 * len(widths):
                raise DataError(
                    f"the header names {len(rows[0])} columns but the rows hold {mode} fields: add the missing "
                    "column names to the first line"
                )
    return opts


def _as_trained(opts: dict[str, Any], names: list[str], body: list[list[str]], marks: dict[str, Any],
                keep: set[int], points: bool) -> None:
    """``opts`` reading numbers as the training file wrote them (``marks``) where the sample cannot tell: its decimal
    comma (a file split by ';' or tabs whose sample holds 1.234 or whole numbers, no 6.97: ``points``), and its
    columns of thousands dots by name (column_N without a header) where each cell may be one (not 176019.30)."""
    converters = dict(opts.get("converters") or {})
    if marks.get("decimal") == "," and "decimal" not in opts and opts["sep"] != "," and not points:
        opts["decimal"] = ","
        for j in range(len(names)):  # 1.234: a thousands dot, read cell by cell as comma_decimal_cell reads it
            if j not in keep and (cells := _filled(body, j)) and all(map(comma_number, cells)) \
                    and any("." in c for c in cells) and not any(map(_ADDRESS.fullmatch, cells)):
                converters.setdefault(j, comma_decimal_cell)
    if opts.get("decimal") != ",":  # in a file of decimal commas, comma_decimal_cell reads thousands dots already
        dotted = set(marks.get("thousands_dots") or ())
        converters.update({j: thousands_dots_cell for j, name in enumerate(names)
                           if name in dotted and j not in keep and _dotted(_filled(body, j))})
    if converters:
        opts["converters"] = converters


def _as_written(opts: dict[str, Any], body: list[list[str]], keep: set[int]) -> None:
    """``opts`` reading as text the columns ``keep`` whose sample writes dotted numbers (118.951.736): a later
    12.345 is no number among codes."""
    if dtype := {j: str for j in keep if any(c.count(".") > 1 or "." in c and _DOTTED.fullmatch(c)
                                             for c in _filled(body, j))}:
        opts["dtype"] = dtype


def csv_options(path: Path, compression: str | None, sample: bytes | None = None,
                marks: dict[str, Any] | None = None) -> dict[str, Any]:
    """read_csv options for the delimited text file at ``path``, sniffed from its first bytes (``sample``, where
    the caller has read them already); ``marks`` as ``sniff_csv`` takes them."""
    suffixes = [s.lower() for s in path.suffixes]
    suffix = suffixes[-2] if compression and len(suffixes) > 1 else path.suffix.lower()
    return sniff_csv(read_sample(path, compression) if sample is None else sample, suffix, marks)


# -- reading delimited text ----------------------------------------------------------------------------------
def text_comma_columns(opts: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """``opts`` (``sniff_csv``'s) without its converters of decimal commas and thousands dots, a Python call a
    cell, and the positions of their columns: pandas' parser reads them with ``decimal=","`` (thousands dots as
    text), and a column it leaves text (1.234,5, 3,50 €, a '?', 1.234.567) ``comma_columns`` reads after, at once."""
    marks = opts.get("converters") or {}
    cells = [j for j, f in marks.items() if f is comma_decimal_cell or f is thousands_dots_cell]
    if not cells:
        return opts, []
    rest = {j: f for j, f in marks.items() if j not in cells}
    out = {**opts, "converters": rest or None}
    dotted = {j: str for j, f in marks.items() if f is thousands_dots_cell}
    if dotted and isinstance(opts.get("dtype") or {}, dict):
        out["dtype"] = {**(opts.get("dtype") or {}), **dotted}
    return out, cells


def comma_columns(df: pd.DataFrame, cells: list[int]) -> pd.DataFrame:
    """``df`` with the columns at the positions ``cells`` (``text_comma_columns``'s) that pandas' parser left
    text read as ``comma_decimal_cell`` reads each cell, the whole column at once (``comma_decimal_cells``)."""
    for j in cells:
        if j < df.shape[1] and not pd.api.types.is_numeric_dtype(df.dtypes.iloc[j]):
            df.isetitem(j, comma_decimal_cells(df.iloc[:, j]))
    return df


def read_csv_table(source: Any, opts: dict[str, Any], sample: bytes | None = None) -> pd.DataFrame:
    """``pd.read_csv(source, **opts)``, its columns of decimal commas read a column at a time (``comma_columns``);
    from a file, how it writes its true/false columns' values (``written_booleans``, from ``sample``, the first
    bytes ``csv_options`` sniffed, read again where not given) in ``df.attrs["source"]["booleans"]``, and the
    columns read with thousands dots in its ``thousands_dots``."""
    dotted = [j for j, f in (opts.get("converters") or {}).items() if f is thousands_dots_cell]
    opts, cells = text_comma_columns(opts)
    df = comma_columns(pd.read_csv(source, **opts), cells)
    if dotted:  # the read line names them: their dots were read as thousands marks, not decimal points
        names = [f"column_{j + 1}" if opts.get("header", 0) is None else str(df.columns[j]) for j in dotted
                 if j < df.shape[1]]
        df.attrs["source"] = {**df.attrs.get("source", {}), "thousands_dots": names}
    if isinstance(source, Path) and (spelled := written_booleans(
            df, read_sample(source, opts.get("compression")) if sample is None else sample, opts)):
        df.attrs["source"] = {**df.attrs.get("source", {}), "booleans": spelled}
    return df


_CASES = (str.lower, str.upper, str.title)


def written_booleans(df: pd.DataFrame, sample: bytes, opts: dict[str, Any]) -> dict[str, list[str]]:
    """How the file whose first bytes are ``sample`` writes the values of the columns pandas read as true/false
    (``df``'s, by ``opts``): {column: [false, true]}, each the spelling most of the sample's cells use ('yes'
    and 'TRUE' alike are not told apart by pandas' reading, 'true', 'True' and 'TRUE' are), so that a model of
    such a target writes its predictions as the file wrote its labels."""
    flags = [j for j, dtype in enumerate(df.dtypes) if dtype in (np.dtype(bool), np.dtype(object))]
    if not flags:
        return {}
    lines = [ln for ln in _decode(sample)[0].splitlines() if ln.strip()][:200]
    rows = _rows(lines, opts.get("sep", ","))[0 if opts.get("header", 0) is None else 1:]
    out = {}
    for j in flags:
        cells = _filled(rows, j)
        if not cells or any(c.lower() not in ("true", "false") for c in cells):
            continue
        s = df.iloc[:, j]
        if s.dtype == object and not all(isinstance(v, bool) for v in pd.unique(s.dropna())):
            continue
        ways = {w: max(sorted({c for c in cells if c.lower() == w}), key=cells.count) for w in ("false", "true")
                if any(c.lower() == w for c in cells)}
        seen = next(iter(ways.values()))
        case = next((f for f in _CASES if f(seen) == seen), str.lower)  # the other word written alike
        name = f"column_{j + 1}" if opts.get("header", 0) is None else str(df.columns[j]).strip()  # as read
        out[name] = [ways.get(w, case(w)) for w in ("false", "true")]
    return out
