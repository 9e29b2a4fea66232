"""Numbers as dates, mended from a reviewer's run: a date column of Unix seconds or of basic ISO dates
(20230615) gets its real training range in the schema (it was read as nanoseconds since 1970, so every
prediction noted "far dates"), and digit text in a date column ("1686787200", as a CSV reader hands over a
column that holds a "?" too, or a request sends it) is read by the same rule as the number."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.data.values import basic_date_text, date_one, parse_datetime
from mlengineer.errors import InputWarning

FIRST, LAST = pd.Timestamp("2022-01-02"), pd.Timestamp("2023-12-30")
JUNE_15 = 1686787200  # 2023-06-15T00:00:00 UTC


def _dates(n: int, rng: np.random.Generator) -> pd.DatetimeIndex:
    days = rng.integers(0, (LAST - FIRST).days + 1, n)
    days[:2] = [0, (LAST - FIRST).days]  # the training range's ends, known to the tests
    return pd.DatetimeIndex(FIRST + pd.to_timedelta(days, unit="D"))


def _train(tmp: Path, name: str, when: pd.Series, x: np.ndarray, y: np.ndarray) -> mlengineer.Model:
    path = tmp / f"{name}.csv"
    pd.DataFrame({"when": when, "x": x, "y": y}).to_csv(path, index=False)
    return mlengineer.train(path, "y", column_roles={"when": "datetime"}, time_budget=3, families=["lightgbm"],
                            track=False)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, mlengineer.Model]:
    """Two models of 240 rows, one trained on Unix seconds, one on basic dates (20230615)."""
    tmp = tmp_path_factory.mktemp("dates")
    rng = np.random.default_rng(0)
    when = _dates(240, rng)
    x = rng.normal(size=240)
    y = x + (when - FIRST).days.to_numpy() / 365 + rng.normal(scale=0.1, size=240)
    seconds = pd.Series((when - pd.Timestamp(0)) // pd.Timedelta(seconds=1))
    basic = pd.Series(when.strftime("%Y%m%d").astype(int))
    return {"unix": _train(tmp, "unix", seconds, x, y), "basic": _train(tmp, "basic", basic, x, y)}


def _far_notes(model: mlengineer.Model, data: object) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        answer = model.predict(data)
    return answer, [str(w.message) for w in said if issubclass(w.category, InputWarning) and "far" in str(w.message)]


def test_the_schema_holds_the_real_training_range_of_numbers_as_dates(models: dict[str, mlengineer.Model]) -> None:
    for model in models.values():
        when = model.schema["when"]
        assert (when.min, when.max) == (str(FIRST), str(LAST))


def test_predict_on_numbers_as_dates_notes_no_far_dates(models: dict[str, mlengineer.Model], tmp_path: Path) -> None:
    for kind, inside, far in (("unix", JUNE_15, 100_000_000), ("basic", 20230615, 19500101)):
        path = tmp_path / f"{kind}.csv"
        pd.DataFrame({"when": [inside] * 5, "x": np.linspace(-1, 1, 5)}).to_csv(path, index=False)
        answer, notes = _far_notes(models[kind], path)
        assert len(answer) == 5 and notes == []
        _, notes = _far_notes(models[kind], pd.DataFrame({"when": [inside, far], "x": [0.0, 0.0]}))
        assert len(notes) == 1 and "1 row holds a date far outside the training range (2022-01-02 to 2023-12-30" \
            in notes[0], notes


def test_a_file_of_seconds_with_a_question_mark_or_a_date_among_them_predicts(models: dict[str, mlengineer.Model],
                                                                              tmp_path: Path) -> None:
    model = models["unix"]
    (tmp_path / "q.csv").write_text(f"when,x\n{JUNE_15},0.1\n?,0.2\n{JUNE_15},0.3\n")
    (tmp_path / "mixed.csv").write_text(f"when,x\n{JUNE_15},0.1\n2023-06-15,0.1\n{JUNE_15}.0,0.1\n")
    want = model.predict(pd.DataFrame({"when": [JUNE_15] * 3, "x": [0.1, 0.2, 0.3]}))
    got, notes = _far_notes(model, tmp_path / "q.csv")
    assert notes == [] and got[[0, 2]] == pytest.approx(want[[0, 2]])
    got, notes = _far_notes(model, tmp_path / "mixed.csv")
    assert notes == [] and got == pytest.approx([want[0]] * 3)
    basic = models["basic"]  # basic dates as text beside a "?" too
    (tmp_path / "qb.csv").write_text("when,x\n20230615,0.1\n?,0.2\n")
    assert basic.predict(tmp_path / "qb.csv")[0] == pytest.approx(basic.predict({"when": 20230615, "x": 0.1})[0])


def test_the_server_reads_digit_text_as_it_reads_the_number(models: dict[str, mlengineer.Model]) -> None:
    from mlengineer.serving.validation import RequestValidator

    checked = RequestValidator(models["unix"]).validate({"when": [str(JUNE_15), JUNE_15, f" {JUNE_15}.5 ", "?"],
                                                         "x": [0.1] * 4}, 4)
    assert checked.columns["when"] == ["2023-06-15T00:00:00"] * 2 + ["2023-06-15T00:00:00.500000", None]
    assert checked.warnings == []
    checked = RequestValidator(models["basic"]).validate({"when": ["20230615", 20230615], "x": [0.1] * 2}, 2)
    assert checked.columns["when"] == ["20230615"] * 2 and checked.warnings == []


def test_every_reading_of_a_date_column_takes_numbers_by_one_rule() -> None:
    june = pd.Timestamp("2023-06-15")
    numbers = pd.Series([JUNE_15, 20230615, 5, 1_686_787_200_000, np.nan])  # 5 and milliseconds are no dates
    for fmt in (None, "mixed", "ISO8601", "%Y-%m-%d", "%d/%m/%Y"):
        assert parse_datetime(numbers, fmt).tolist()[:2] == [june, june]
        assert parse_datetime(numbers, fmt).iloc[2:].isna().all()
        texts = pd.Series([str(JUNE_15), " 20230615", "?", f"{JUNE_15}.25", JUNE_15, None], dtype=object)
        assert parse_datetime(texts, fmt).tolist() == [june, june, pd.NaT, june + pd.Timedelta("250ms"), june, pd.NaT]
        assert date_one(str(JUNE_15), fmt or "ISO8601") == np.datetime64(june)
    assert basic_date_text(str(JUNE_15)) == basic_date_text(JUNE_15) == "2023-06-15T00:00:00"
    assert basic_date_text("٢٠٢٣٠٦١٥") is None  # digits of another script are no number


def test_a_range_an_older_version_read_as_nanoseconds_notes_nothing(models: dict[str, mlengineer.Model]) -> None:
    """Bundles saved before numbers were read as dates in the schema hold 1970-01-01 00:00:01.6 for a column of
    Unix seconds (and 00:00:00.02 for 20220102): no date is far from a range that is no range."""
    import copy

    from mlengineer.bundle.notes import DateNotes

    model = copy.deepcopy(models["unix"])
    assert "when" in DateNotes(model).spans
    model.schema["when"].min, model.schema["when"].max = "1970-01-01 00:00:01.641081600", "1970-01-01 00:00:01.703894400"
    assert "when" not in DateNotes(model).spans
    _, notes = _far_notes(model, pd.DataFrame({"when": [JUNE_15], "x": [0.0]}))
    assert notes == []


def test_numbers_under_a_training_format_of_their_own_keep_it() -> None:
    """A column trained on years written as text ('2019', format %Y) and handed numbers at prediction (2019, as a
    clean CSV reads it) reads them by that format, not by the numbers' rule (which reads no date in 2019)."""
    from mlengineer.data.values import parse_datetime

    assert parse_datetime(pd.Series([2019, 2020]), "%Y").tolist() == [pd.Timestamp("2019-01-01"), pd.Timestamp("2020-01-01")]
    assert parse_datetime(pd.Series([20190105, JUNE_15]), "%Y%m%d").tolist() == [pd.Timestamp("2019-01-05"),
                                                                                 pd.Timestamp("2023-06-15")]
