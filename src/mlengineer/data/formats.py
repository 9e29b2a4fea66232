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

from ..errors import DataError
from .values import MISSING_TOKENS, comma_decimal_cell, comma_number

__all__ = ["FORMATS", "ODD_BYTES", "SAMPLE_BYTES", "SUPPORTED_SUFFIXES", "csv_options", "format_of", "read_sample",
           "sniff_csv"]

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
#: 1,500: a thousands comma, or 1.5 with three decimals (a ';' between the fields tells which)
_COMMA_THREE = re.compile(r"[1-9]\d{0,2},\d{3}")
#: a number written with thousands commas, which no decimal comma writes: 1,234.5 / 1,234,567
_THOUSANDS_COMMA = re.compile(r"\d{1,3}(,\d{3})+\.\d*|\d{1,3}(,\d{3}){2,}")
_NUMBER_LIKE = re.compile(r"[-+(]?\s*[$€£¥]?\s*-?[\d.,]*\d[\d.,]*\s*[$€£¥%]?\s*\)?")
_UNIT_CHARS = "$€£¥%()+- "


def _decimal_comma_columns(body: list[list[str]], sep: str) -> list[int] | None:
    """Whether the sample's rows write their numbers with decimal commas: None when they do not; when they
    do, the columns of numbers the reader must read cell by cell (``comma_decimal_cell``), those holding a
    thousands dot, a currency or percent sign, or text (a placeholder) among the numbers. The numbers of the
    columns that look like numbers tell: 48,88 or 1.234,5 say decimal comma (a ',' between the fields aside),
    1,234.5 says thousands comma, and 1,500 says decimal comma only between fields split by ';'."""
    if sep == "," or not body:
        return None
    decimal = thousands = three = False
    columns = []
    for j in range(max(len(r) for r in body)):
        cells = [c for r in body if j < len(r) and (c := r[j].strip()) and c.lower() not in MISSING_TOKENS]
        looks = [c for c in cells if _NUMBER_LIKE.fullmatch(c)]
        if not looks or len(looks) < 0.9 * len(cells):
            continue
        cores = [c.strip(_UNIT_CHARS) for c in looks]
        decimal = decimal or any(_DECIMAL_COMMA.fullmatch(c) for c in cores)
        thousands = thousands or any(_THOUSANDS_COMMA.fullmatch(c) for c in cores)
        three = three or any(_COMMA_THREE.fullmatch(c) for c in cores)
        # read cell by cell (slower than pandas' own decimal=",", but a '?' or a '1.234,5' met after the sample
        # would leave pandas' column text)
        if all(map(comma_number, looks)) and (len(looks) < len(cells) or any(not c.isdigit() for c in cores)):
            columns.append(j)
    if thousands or not (decimal or (three and sep == ";")):
        return None
    return columns


def sniff_csv(sample: bytes, suffix: str = ".csv") -> dict[str, Any]:
    """read_csv options for delimited text whose first bytes are ``sample``."""
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
    comma_columns = _decimal_comma_columns(rows if "header" in opts else rows[1:], sep)
    if comma_columns is not None:  # 1,5;2,25: a decimal comma, as spreadsheets write in much of Europe
        opts["decimal"] = ","
        if comma_columns:  # 1.234,5, or a '?' among them
            opts["converters"] = dict.fromkeys(comma_columns, comma_decimal_cell)  # read cell by cell
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


def csv_options(path: Path, compression: str | None) -> dict[str, Any]:
    """read_csv options for the delimited text file at ``path``, sniffed from its first bytes."""
    suffixes = [s.lower() for s in path.suffixes]
    suffix = suffixes[-2] if compression and len(suffixes) > 1 else path.suffix.lower()
    return sniff_csv(read_sample(path, compression), suffix)
