"""Numbers as people write them in text: thousands separators, a currency symbol or a percent sign. A
leaf below every stage, so a target (``tasks``) and a column (``data``) are read by one definition."""

from __future__ import annotations

import math
import re

import pandas as pd

__all__ = ["CURRENCY_SYMBOLS", "THOUSANDS_SEPARATOR", "UNIT_NUMBER", "numbers_from_text", "text_numbers",
           "unit_number"]

THOUSANDS_SEPARATOR = re.compile(r"(?<=\d),(?=\d{3}\b)")
#: the currency symbols a number may be written with, before or after it ($3,007, 12.50 €); a percent sign
#: may follow one (18.1%, read as written: 18.1)
CURRENCY_SYMBOLS = "$€£¥"
_UNIT_CHAR = re.compile(r"[$€£¥%]")
UNIT_NUMBER = re.compile(
    r"(?P<open>\()?\s*(?P<sign>-?)\s*(?P<pre>[$€£¥])?\s*(?P<sign2>-?)\s*(?P<num>\d[\d,.]*|\.\d+)\s*"
    r"(?P<post>[$€£¥%])?\s*(?P<close>\))?"
)


def unit_number(text: str) -> tuple[float, str] | None:
    """(the number, its unit) of text that writes a number with one currency symbol before or after it, or
    with a percent sign after it ("$3,007", "-$5.50", "($5.50)" for a negative, "12 €", "18.1%"); thousands
    separators allowed. None for any other text, plain numbers included."""
    m = UNIT_NUMBER.fullmatch(text.strip())
    if m is None or bool(m["pre"]) == bool(m["post"]) or bool(m["open"]) != bool(m["close"]) \
            or len(m["sign"] + m["sign2"] + (m["open"] or "")) > 1:
        return None
    try:
        x = float(THOUSANDS_SEPARATOR.sub("", m["num"]))
    except ValueError:
        return None
    return (-x if m["open"] or m["sign"] or m["sign2"] else x), (m["pre"] or m["post"])


def text_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``values`` (text) as floats, as ``number_from_text`` reads each (NaN where it is not a number), and
    the unit each is written with: "" for a plain number, "$" or "%" for one written with it."""
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text.str.replace(THOUSANDS_SEPARATOR, "", regex=True), errors="coerce").astype(float)
    units = pd.Series("", index=values.index, dtype=object)
    odd = (numbers.isna() & text.str.contains(_UNIT_CHAR, regex=True)).to_numpy(dtype=bool)
    if odd.any():
        found = [unit_number(t) for t in text[odd]]
        numbers[odd] = [math.nan if f is None else f[0] for f in found]
        units[odd] = ["" if f is None else f[1] for f in found]
    return numbers, units


def numbers_from_text(values: pd.Series) -> pd.Series:
    """``values`` (text) as floats: thousands separators, a currency symbol and a percent sign allowed
    (``number_from_text``); anything else that is not a number is NaN."""
    return text_numbers(values)[0]
