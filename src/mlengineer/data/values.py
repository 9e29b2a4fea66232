"""How the values of a column are read: yes/no words, placeholders for a missing value, category keys,
numbers written as text and dates in the common formats. One definition for inference, cleaning and serving."""

from __future__ import annotations

import datetime
import math
import re
import warnings
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..written_numbers import (
    CURRENCY_SYMBOLS,
    THOUSANDS_SEPARATOR,
    UNIT_NUMBER,
    numbers_from_text,
    text_numbers,
    unit_number,
)

__all__ = [
    "DATETIME_MAX", "DATETIME_MIN", "as_written", "dateless", "FALSE_TOKENS", "MISSING_TOKENS", "THOUSANDS_SEPARATOR",
    "TRUE_TOKENS", "CURRENCY_SYMBOLS", "category_key", "comma_decimal_cell", "comma_decimal_cells", "comma_number",
    "FEW_DATES", "basic_date_text", "date_forms", "date_one", "detect_datetime_format", "digit_twins",
    "number_from_text", "plain_times", "numbers_from_text", "parse_datetime", "strptime", "text_numbers",
    "thousands_dots_cell", "twin_key", "unit_number",
]

#: how yes/no values are written (compared lower-cased); one definition for inference, cleaning and serving
TRUE_TOKENS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_TOKENS = frozenset({"false", "f", "no", "n", "0", "0.0"})
#: text that means "no value" when it stands in a column of numbers, dates or yes/no values (compared
#: stripped and lower-cased). In a column of categories it stays a category: there "NA" or "None" may be a
#: real one (in the Ames housing data "NA" means "no pool").
MISSING_TOKENS = frozenset({"", "?", "??", "-", "--", "na", "n/a", "nan", "nat", "null", "none", "nil", "missing",
                            "#n/a", "#na", "#null!", "#value!", "#div/0!", "undefined", "(null)", "<na>"})


def category_key(v: Any) -> str | None:
    """The canonical string of a categorical value, so that 3, 3.0, '3' and ' 3 ' are one category; a duration
    (pandas' timedelta) by its seconds, as tables' durations are read."""
    if v is None:
        return None
    if type(v) is not str and isinstance(v, datetime.timedelta | np.timedelta64):
        v = pd.Timedelta(v).total_seconds() if not pd.isna(v) else math.nan
    if isinstance(v, float | np.floating):
        if np.isnan(v):
            return None
        if float(v).is_integer():
            return str(int(v))
        return repr(float(v))
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if v is pd.NA or v is pd.NaT:
        return None
    s = str(v).strip()
    return s if s else None


def digit_twins(categories: Iterable[str]) -> dict[str, str]:
    """The categories written as whole numbers, by that number without leading zeros: a code such as a zip
    code reads as text ("01001") from one source and as a number (1001) from another, where a CSV reader
    dropped its zeros; ``twin_key`` finds the one a model knows from the other."""
    return {k.lstrip("0") or "0": k for k in categories if k.isascii() and k.isdigit()}


def twin_key(key: Any, twins: dict[str, str]) -> str | None:
    """The known category (of ``digit_twins``) that ``key``, a category key the model does not know, is the
    same whole number as, its zeros in front or a decimal point of zeros behind ("4.0", as a table of decimals
    writes 4); None where there is none."""
    if not twins or type(key) is not str:
        return None
    head, point, tail = key.partition(".")
    if point and tail.strip("0") == "":
        key = head
    if not (key.isascii() and key.isdigit()):
        return None
    return twins.get(key.lstrip("0") or "0")


# -- dates ---------------------------------------------------------------------------------------------------
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE_HINT = re.compile(
    r"^\s*(\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([ap]\.?m\.?)?)?(Z|\s?[+-]\d{2}:?\d{2})?"
    rf"|\d{{1,2}}[- ]{_MONTH}[- ,]*\d{{2,4}}(\s\d{{1,2}}:\d{{2}}(:\d{{2}})?)?"
    rf"|{_MONTH}\s\d{{1,2}},?\s\d{{4}}(\s\d{{1,2}}:\d{{2}}(:\d{{2}})?)?"
    r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)\s*$",
    re.I,
)
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S.%f",
                 "%Y-%m-%dT%H:%M:%S.%f", "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%d/%m/%Y", "%m/%d/%Y",
                 "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p",
                 "%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y", "%d.%m.%Y %H:%M", "%d-%m-%Y", "%m-%d-%Y", "%d-%b-%Y",
                 "%d %b %Y", "%d-%b-%y", "%b %d, %Y", "%B %d, %Y", "%d %B %Y", "%d/%m/%y", "%m/%d/%y")


def detect_datetime_format(s: pd.Series) -> str | None:
    """The strftime format (or 'ISO8601') that parses nearly all of ``s``, or None if it is not dates."""
    sample = s.dropna()
    if sample.empty:
        return None
    sample = sample.sample(min(len(sample), 500), random_state=0).astype(str).str.strip()
    values = sample.tolist()
    # most columns are plainly not dates: look at a few values before all of them
    if not any(_DATE_HINT.match(v) for v in values[:20]):
        return None
    if sum(1 for v in values if _DATE_HINT.match(v)) < 0.95 * len(values):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fmt in _DATE_FORMATS:
            parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
            if parsed.notna().mean() >= 0.98:
                return fmt
        parsed = pd.to_datetime(sample, format="ISO8601", errors="coerce", utc=True)
    if parsed.notna().mean() >= 0.98:
        return "ISO8601"
    return None


DATETIME_MIN, DATETIME_MAX = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")


def _date_cell(v: Any) -> Any:
    """A date column's value as pandas' parser is given it: text stripped, digit text and numbers as the dates
    ``basic_date_text`` reads them as (a number it does not read as no value, never nanoseconds since 1970),
    and a time of day without a date (which pandas' "mixed" parser would complete with today's date, so the
    same text would read as another instant tomorrow) as no value."""
    if isinstance(v, str):
        return None if dateless(text := _digits_read(v.strip())) else text
    return basic_date_text(v) if isinstance(v, int | float | np.integer | np.floating) and type(v) is not bool else v


#: text that starts with a time of day (8:30, 08:30:00) and holds no date beside it (no year, no d/m/y)
_CLOCK_START = re.compile(r"\s*\d{1,2}:\d{2}")
_DATE_PART = re.compile(r"\d{4}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2}|[a-z]{3,}\.?\s+\d{1,2}\b|\b\d{1,2}\s+[a-z]{3,}", re.I)


def dateless(text: str) -> bool:
    """Whether ``text`` is a time of day without a date ("08:30:00", "8:30 pm"): no date can be read from it
    (pandas would complete it with today's date)."""
    return _CLOCK_START.match(text) is not None and _DATE_PART.search(text) is None


def as_written(v: Any) -> str:
    """A value for a message, as it reads in a table: text quoted, a time, date or timestamp in ISO form
    (08:00:00, not datetime.time(8, 0)), a decimal or a numpy number as its digits."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, datetime.time | datetime.date):
        return v.isoformat(sep=" ") if isinstance(v, datetime.datetime) else v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, bytes | bytearray):
        return repr(bytes(v[:60]))
    text = str(v) if type(v).__module__ in ("decimal", "pandas._libs.tslibs.timedeltas",
                                            "pandas._libs.tslibs.timestamps") else repr(v)
    return text[:60]


def _utc_naive(out: pd.Series) -> pd.Series:
    return out.dt.tz_convert("UTC").dt.tz_localize(None) if getattr(out.dt, "tz", None) is not None else out


def date_forms(fmt: str | None) -> str:
    """How a date column's values may be written, for an error: as in training (its format) or in ISO 8601."""
    trained = "" if fmt in (None, "ISO8601", "mixed") else \
        f"written as in training ({datetime.datetime(2024, 1, 31, 17, 30).strftime(fmt)}) or "
    return f"{trained}in ISO 8601 (2024-01-31T17:30:00)"


def parse_datetime(s: pd.Series, fmt: str | None) -> pd.Series:
    """Parse ``s`` with the format found at training; unparseable values become NaT. A value the format
    does not take but ISO 8601 reads unambiguously (a timestamp object, "2020-01-31T10:30:00", a time zone,
    "20200131") is read as ISO 8601: the same instant, whichever way a source writes it. Numbers and digit text
    are read by ``basic_date_text``'s rule (20200131, Unix seconds), whatever the format."""
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and fmt in (None, "ISO8601", "mixed"):
        # (a training format of its own, %Y for 2019, reads the numbers' text below, as it always did)
        out = pd.Series(_number_dates(s.to_numpy(dtype=np.float64, na_value=np.nan)), index=s.index, name=s.name)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt in (None, "ISO8601", "mixed"):
                cells = s.map(_date_cell).astype(object) if s.dtype == object or isinstance(s.dtype, pd.StringDtype) else s
                out = _utc_naive(pd.to_datetime(cells, format=fmt or "mixed", errors="coerce", utc=True))
            else:
                out = pd.to_datetime(s.astype(str).str.strip(), format=fmt, errors="coerce")
                missed = out.isna() & s.notna().to_numpy()
                if missed.any():
                    iso = pd.to_datetime(s[missed].map(_iso_candidate), format="ISO8601", errors="coerce", utc=True)
                    out = _in_ns_range(out)
                    out[missed] = _in_ns_range(_utc_naive(iso))
    return _in_ns_range(_utc_naive(out))


def _iso_candidate(v: Any) -> Any:
    """A value the training's format did not take, as ISO 8601 may read it: text stripped, a date or a time
    as it is, a number or digit text as ``basic_date_text`` reads it; None for anything else, which pandas
    would otherwise read as nanoseconds since 1970."""
    if isinstance(v, str):
        return _digits_read(v.strip())
    if isinstance(v, datetime.date | np.datetime64):
        return v
    return basic_date_text(v)


def basic_date_text(v: Any) -> str | None:
    """A number given for a date as the text of the date it stands for, the one rule of the cleaning plan, the
    schema's range and the server: a whole number of eight digits as ISO 8601's basic form writes a date
    (20240131), the way a CSV reader hands such a date over; a number of nine or ten digits before its point as
    Unix seconds, in UTC (1704067200 is 2024-01-01T00:00:00: 1973 to 2286, years no eight digits write), to the
    microsecond; None for any other value (Unix milliseconds among them), which is refused as no date. Text of
    digits alone ("1704067200", as a CSV reader hands over a column that holds a "?" too) is read as the number
    it writes."""
    if isinstance(v, str):
        if _DIGIT_TEXT.fullmatch(v) is None:
            return None
        v = float(v)
    if not isinstance(v, int | float | np.integer | np.floating) or isinstance(v, bool) or not np.isfinite(v):
        return None
    if float(v).is_integer() and 1e7 <= v < 1e8:
        return str(int(v))
    if UNIX_SECONDS[0] <= v < UNIX_SECONDS[1]:
        moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=round(float(v) * 1e6))
        return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return None


#: the numbers ``basic_date_text`` reads as Unix seconds: nine or ten digits before the point
UNIX_SECONDS = (1e8, 1e10)
#: text that ``basic_date_text`` reads as the number it writes: digits, a decimal point and digits after it
_DIGIT_TEXT = re.compile(r"\s*\d{1,10}(?:\.\d*)?\s*", re.ASCII)


def _digits_read(text: str) -> str:
    """Text of digits alone as the date ``basic_date_text`` reads it as, where it reads one; other text as it is."""
    return (basic_date_text(text) or text) if text.replace(".", "", 1).isdigit() else text


def _number_dates(x: np.ndarray) -> np.ndarray:
    """Numbers as the dates ``basic_date_text`` reads them as, a whole column at once (NaT where it reads none)."""
    out = np.full(len(x), np.datetime64("NaT"), dtype="datetime64[ns]")
    with np.errstate(invalid="ignore"):
        basic, unix = (x >= 1e7) & (x < 1e8) & (x == np.floor(x)), (x >= UNIX_SECONDS[0]) & (x < UNIX_SECONDS[1])
    if basic.any():
        out[basic] = pd.to_datetime(pd.Series(x[basic].astype(np.int64).astype(str)), format="%Y%m%d",
                                    errors="coerce").to_numpy(dtype="datetime64[ns]")
    out[unix] = np.round(x[unix] * 1e6).astype(np.int64).astype("datetime64[us]").astype("datetime64[ns]")
    return out


def _in_ns_range(out: pd.Series) -> pd.Series:
    """Times as nanoseconds: pandas may parse to seconds or microseconds; dates outside the nanosecond range
    (1677-2262) become missing rather than an overflow in the cast."""
    return out.where((out >= DATETIME_MIN) & (out <= DATETIME_MAX)).astype("datetime64[ns]")


FEW_DATES = 64  # below this many values, parsing one by one beats pandas' vectorised parser


def date_one(v: Any, fmt: str) -> np.datetime64:
    """One value parsed as ``parse_datetime`` would parse it, in microseconds instead of a pandas call.
    Anything the quick parsers do not take goes through pandas, so the result is the same either way."""
    if v is None:
        return np.datetime64("NaT", "ns")
    if isinstance(v, str):
        text = _digits_read(v.strip())
        try:
            when = datetime.datetime.fromisoformat(text) if fmt == "ISO8601" else strptime(text, fmt)
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is not None:
                when = when.astimezone(datetime.UTC).replace(tzinfo=None)
            if DATETIME_MIN <= when <= DATETIME_MAX:
                return np.datetime64(when, "ns")
            return np.datetime64("NaT", "ns")
    return parse_datetime(pd.Series([v], dtype=object), fmt).to_numpy()[0]


# -- reading the values of a column of text ----------------------------------------------------------------
#: a number as a CSV written with decimal commas writes it: 1,5 / -0,25 / 1.234,5 / 1.234 (a thousands dot)
_COMMA_NUMBER = re.compile(r"[-+]?(?:[1-9]\d{0,2}(?:\.\d{3})+|\d+)(?:,\d*)?|[-+]?,\d+")


def number_from_text(text: str, placeholders: Collection[str] = ()) -> float:
    """One number written as text, as the cleaning plan and the server read it: NaN for text that means no
    value (``MISSING_TOKENS``, or a column's ``placeholders`` learnt in training), thousands separators
    allowed ("1,234"; "1,5" is not a number: decimal commas are read at load time), and a currency symbol or
    a percent sign around it (``unit_number``: "$1,200" is 1200, "18.1%" is 18.1); ValueError otherwise."""
    s = text.strip()
    if s.lower() in MISSING_TOKENS or s in placeholders:
        return math.nan
    try:
        return float(THOUSANDS_SEPARATOR.sub("", s))
    except ValueError:
        found = unit_number(s)
        if found is None:
            raise
        return found[0]


def comma_decimal_cell(text: str) -> float | str:
    """A cell of a CSV written with decimal commas, as its reader takes it: a number ("1,5", "1.234,5" with
    a thousands dot) as a float; a number written with a currency symbol or a percent sign as text with a
    decimal point, for ``number_from_text`` to read ("3,50 €" as "3.50 €"); any other text as it is."""
    s = text.strip()
    if "." not in s and "_" not in s and s[-1:].isdigit():
        try:
            return float(s.replace(",", "."))
        except ValueError:
            pass
    if _COMMA_NUMBER.fullmatch(s):
        return float(s.replace(".", "").replace(",", "."))
    m = UNIT_NUMBER.fullmatch(s)
    if m is not None and _COMMA_NUMBER.fullmatch(m["num"]):
        return s[:m.start("num")] + m["num"].replace(".", "").replace(",", ".") + s[m.end("num"):]
    return text


def thousands_dots_cell(text: str) -> float | str:
    """A cell of a column of numbers written with thousands dots in a file whose other numbers write a decimal
    point (1.234.567, 12.345 and 999 alike: ``comma_decimal_cell``'s reading of them) as a float; any other text
    as it is."""
    s = text.strip()
    return float(s.replace(".", "").replace(",", ".")) if _COMMA_NUMBER.fullmatch(s) else text


#: ``UNIT_NUMBER`` in three parts: what stands before the number, the number, what stands after it
_UNIT_PARTS = r"(?P<head>\(?\s*-?\s*[$€£¥]?\s*-?\s*)(?P<num>\d[\d,.]*|\.\d+)(?P<tail>\s*[$€£¥%]?\s*\)?)"


def comma_decimal_cells(cells: pd.Series) -> pd.Series:
    """``comma_decimal_cell`` over a whole column of text at once, with pyarrow's string kernels rather than a
    Python call a cell: float64 where every filled cell is a number, else objects (numbers as floats, the rest
    as ``comma_decimal_cell`` gives it); missing stays NaN."""
    if pd.api.types.is_numeric_dtype(cells.dtype):
        return cells
    s = cells.astype("str").str.strip()
    numbers = pd.Series(_floats(s, _COMMA_FLOAT), index=s.index, name=cells.name)  # 1,5 / 1,5e3 / ,5
    filled = s.notna().to_numpy(dtype=bool)
    left = numbers.isna().to_numpy(dtype=bool) & filled
    if left.any():  # 1.234,5: thousands dots
        grouped = np.flatnonzero(left)[s[left].str.fullmatch(_COMMA_NUMBER.pattern).fillna(False).to_numpy(bool)]
        if len(grouped):
            numbers.iloc[grouped] = _floats(s.iloc[grouped].str.replace(".", "", regex=False))
            left[grouped] = numbers.iloc[grouped].isna().to_numpy(dtype=bool)
    if not left.any():
        return numbers.astype(np.float64)
    out = cells.to_numpy(dtype=object, na_value=np.nan, copy=True)
    out[filled & ~left] = numbers.to_numpy()[filled & ~left]
    parts = s[left].str.extract(f"^{_UNIT_PARTS}$")
    unit = parts["num"].str.fullmatch(_COMMA_NUMBER.pattern).fillna(False).to_numpy(dtype=bool)
    if unit.any():  # 3,50 € as 3.50 €, for number_from_text to read
        p = parts[unit]
        out[np.flatnonzero(left)[unit]] = (p["head"] + p["num"].str.replace(".", "", regex=False).str.replace(
            ",", ".", regex=False) + p["tail"]).to_numpy(dtype=object)
    return pd.Series(out, index=cells.index, name=cells.name, dtype=object)


#: a number written with a decimal comma as Python's float() reads it once the comma is a point (1,5 / 1,5e3 /
#: ,5 / 1,), which pyarrow's cast then reads alike
_COMMA_FLOAT = r"^[-+]?(\d+,?\d*|,\d+)([eE][-+]?\d+)?$"


def _floats(text: pd.Series, pattern: str = _COMMA_FLOAT) -> np.ndarray:
    """Numbers written as text with a decimal comma (``pattern``, stripped) as float64, anything else NaN:
    pyarrow's match, replace and cast, exact."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(text.astype("str"), from_pandas=True)
    ok = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    points = pc.replace_substring(pc.if_else(ok, arr, pa.scalar(None, arr.type)), ",", ".")
    return np.asarray(pc.cast(points, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def comma_number(text: str) -> bool:
    """Whether ``text`` (stripped) is a number as a CSV written with decimal commas writes it (``comma_decimal_cell``
    reads it as one), a currency symbol or percent sign aside."""
    m = UNIT_NUMBER.fullmatch(text)
    return m is not None and _COMMA_NUMBER.fullmatch(m["num"]) is not None


def strptime(text: str, fmt: str) -> datetime.datetime:
    """``datetime.strptime(text, fmt)``, with the commonest form, a plain ``%Y-%m-%d`` date written in full
    (2024-01-31), read without strptime's regular expressions (about 1 us against 8; a request's date is
    read twice, checked and cleaned). The same answer and the same ValueError either way."""
    if (fmt == "%Y-%m-%d" and len(text) == 10 and text[4] == "-" and text[7] == "-" and text[:4].isdigit()
            and text[5:7].isdigit() and text[8:].isdigit() and text.isascii()):
        return datetime.datetime(int(text[:4]), int(text[5:7]), int(text[8:]))
    return datetime.datetime.strptime(text, fmt)


def plain_times(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its time-zone-aware timestamps (PostgreSQL's timestamptz, Parquet's with a zone) as UTC
    without a zone: the one form every date is read in, text with an offset included; and its durations
    (PostgreSQL's interval, DuckDB's INTERVAL, Parquet's duration) as seconds, a number a model can use and a
    client can send. The durations read so are named in ``df.attrs["source"]["seconds"]``."""
    seconds = []
    for i, dtype in enumerate(df.dtypes):
        if isinstance(dtype, pd.DatetimeTZDtype):
            df.isetitem(i, df.iloc[:, i].dt.tz_convert("UTC").dt.tz_localize(None))
        elif pd.api.types.is_timedelta64_dtype(dtype):
            df.isetitem(i, df.iloc[:, i].dt.total_seconds())
            seconds.append(str(df.columns[i]))
    if seconds:
        df.attrs.setdefault("source", {})["seconds"] = seconds
    return df
