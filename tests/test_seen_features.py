"""Rows met in training are found though a file writes a feature otherwise than the training file did: a number
with thousands separators ("12,345"), as money ("$12,345") or with a percent sign ("12%"), where training had
12345 and 12: every column is compared as the model reads it, by ``evaluate``, the report, ``calibrate``'s kept
rows and retrain alike; calibration rows kept before the features were read so compare as they did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.data.load import load_table

from .conftest import run_clis


def _spending(n: int = 240) -> pd.DataFrame:
    r = np.random.default_rng(11)
    income = r.integers(20_000, 90_000, n)
    discount = r.integers(5, 40, n)
    region = r.choice(["north", "south", "east"], n)
    spend = (0.02 * income + 15 * discount + r.normal(0, 50, n)).round(1)
    return pd.DataFrame({"income": income, "discount": discount, "region": region, "spend": spend})


#: how a file may write the training table's numbers, each as the model reads them back
WRITINGS = {
    "thousands": lambda t: t.assign(income=[f"{v:,}" for v in t["income"]]),
    "money": lambda t: t.assign(income=[f"${v:,}" for v in t["income"]]),
    "percent": lambda t: t.assign(discount=[f"{v}%" for v in t["discount"]]),
}


@pytest.fixture(scope="module")
def spend_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spending model trained on a file of plain numbers (income 48213, discount 12)."""
    folder = tmp_path_factory.mktemp("spend")
    _spending().to_csv(folder / "train.csv", index=False)
    mlengineer.train(str(folder / "train.csv"), "spend", out=folder / "model", track=False, time_budget=2,
                     families=["linear"], tune=False)
    return folder / "model"


def _written(tmp_path: Path, how: str, table: pd.DataFrame | None = None) -> Path:
    path = tmp_path / f"{how}.csv"
    WRITINGS[how](_spending() if table is None else table).to_csv(path, index=False)
    return path


def test_a_number_written_with_separators_money_or_percent_reads_as_one_key(spend_model: Path) -> None:
    from mlengineer.evaluation.seen import row_keys, rows_as_read

    model = mlengineer.load(spend_model)
    rows = pd.DataFrame({"income": ["12,345", "$12,345", "12345.0", "$-7", "n/a"],
                         "discount": ["12%", "12", "12.0", "3", "4"], "region": ["north"] * 5})
    plain = pd.DataFrame({"income": [12345, 12345, 12345, -7, np.nan], "discount": [12, 12, 12, 3, 4],
                          "region": ["north"] * 5})
    assert (row_keys(rows_as_read(model, rows)) == row_keys(rows_as_read(model, plain))).all()
    assert rows_as_read(model, rows)["income"].tolist()[:4] == [12345.0, 12345.0, 12345.0, -7.0]
    # a row that differs in a feature is not the same row
    other = plain.assign(discount=[13, 12, 12, 3, 4])
    assert (row_keys(rows_as_read(model, other)) != row_keys(rows_as_read(model, plain))).tolist() == \
        [True, False, False, False, False]


@pytest.mark.parametrize("how", sorted(WRITINGS))
def test_training_rows_are_found_though_a_feature_is_written_otherwise(spend_model: Path, tmp_path: Path,
                                                                       how: str) -> None:
    from mlengineer.cli.evaluation import rows_met

    model = mlengineer.load(spend_model)
    written = load_table(_written(tmp_path, how))
    assert written.dtypes.map(pd.api.types.is_numeric_dtype).sum() == 2  # the rewritten column reads as text
    met = rows_met(model, written)
    assert met["trained_rows"] is not None and met["trained_rows"]["share"] == 1.0, met
    assert met["trained_rows"]["exact"] and met["trained_rows"]["rows"] == len(written), met
    assert "the model trained on" in met["warnings"][0], met
    # rows it never met, written alike, are not found
    unseen = _spending().assign(income=lambda t: t["income"] + 1, discount=lambda t: t["discount"] + 100)
    assert rows_met(model, load_table(_written(tmp_path, how, unseen)))["trained_rows"]["share"] == 0.0


def test_evaluate_warns_of_training_rows_whose_income_it_is_given_as_money(spend_model: Path,
                                                                           tmp_path: Path) -> None:
    done = run_clis(["evaluate", str(spend_model), str(_written(tmp_path, "money"))])[0]
    assert done.returncode == 0, done.stderr
    assert "Careful: these are rows the model trained on" in done.stdout, done.stdout


def test_calibration_rows_are_found_though_a_feature_is_written_otherwise(spend_model: Path,
                                                                         tmp_path: Path) -> None:
    from mlengineer.evaluation.seen import calibration_rows, keep_calibration_rows

    model = mlengineer.load(spend_model)
    plain = load_table(spend_model.parent / "train.csv")
    keep_calibration_rows(model, plain.iloc[:100])
    assert model.extras["calibration_rows"]["features"] == "as read"
    for how in WRITINGS:
        found = calibration_rows(model, load_table(_written(tmp_path, how)))
        assert found is not None and found["rows"] == 100, (how, found)


def test_calibration_rows_kept_before_the_features_were_read_compare_as_before(spend_model: Path,
                                                                              tmp_path: Path) -> None:
    from mlengineer.evaluation.seen import calibration_rows, row_keys, target_as_read

    model = mlengineer.load(spend_model)
    money = load_table(_written(tmp_path, "money"))
    columns = ["income", "discount", "region", "spend"]
    # keys as a bundle kept them before: the target as read, the features as written ("$48,213")
    model.extras["calibration_rows"] = {"columns": columns, "keys": row_keys(target_as_read(model, money[columns])),
                                        "rows": len(money), "booleans": "numbers", "target": "as read"}
    assert calibration_rows(model, money)["rows"] == len(money)  # type: ignore[index]
    assert calibration_rows(model, load_table(spend_model.parent / "train.csv"))["rows"] == 0  # type: ignore[index]


def test_retrain_finds_the_champions_training_rows_among_rows_written_as_money(spend_model: Path,
                                                                               tmp_path: Path) -> None:
    from mlengineer.monitoring.retrain_rows import trained_rows_note

    champion = mlengineer.load(spend_model)
    newest = load_table(_written(tmp_path, "money"))
    others = _spending().assign(income=lambda t: t["income"] + 1)
    seen, note = trained_rows_note(champion, newest, others)
    assert seen is not None and seen["share"] == 1.0, seen
    assert note is not None and note.startswith("Careful: all of the 240 newest rows"), note
    assert "the challenger, which learns from them too" not in note
