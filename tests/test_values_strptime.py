"""``data.values.strptime`` reads a plain %Y-%m-%d date without strptime's regular expressions; it must give
strptime's answer, or strptime's ValueError, for every string, written in full or not."""

from __future__ import annotations

import datetime as dt

import pytest

from mlengineer.data.values import strptime

CASES = ["2024-01-31", "2024-02-29", "2023-02-29", "2024-02-30", "2024-13-01", "2024-00-10", "0000-01-01",
         "0001-01-01", "9999-12-31", "2024-1-31", "2024-01-3", "2024-01-3 ", " 2024-01-31", "2023-W01-1",
         "20240131", "2024/01/31", "２０２４-01-31", "2024-01-31T00:00", "2024-+1-31", "-024-01-31", "", "abcd-ef-gh"]


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S"])
@pytest.mark.parametrize("text", CASES)
def test_strptime_answers_as_the_standard_library_does(text: str, fmt: str) -> None:
    try:
        want: dt.datetime | str = dt.datetime.strptime(text, fmt)
    except ValueError:
        want = "ValueError"
    try:
        got: dt.datetime | str = strptime(text, fmt)
    except ValueError:
        got = "ValueError"
    assert got == want
