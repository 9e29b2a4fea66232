"""Monitoring and retraining, third ops pass: outcomes written as money are read as training read the target;
the performance alarm tests the change of the headline metric itself (a clearly worse batch alarms, batches
drawn like the reference do not); ``retrain`` says how many rows had no outcome, warns when the rows it tests
on are rows the champion trained on, and names each challenger's run after what it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import DataError
from mlengineer.monitoring.change import realised_change
from mlengineer.monitoring.estimate import realised
from mlengineer.monitoring.run import load_current, monitor_model
from mlengineer.monitoring.words import number

pytestmark = pytest.mark.slow


def _houses(n: int, seed: int, *, noise: float = 1.0) -> pd.DataFrame:
    """id, two inputs and a price: 1,000 x1 + 500 x2 + 100,000 plus noise of SD ``noise`` x 20,000."""
    r = np.random.default_rng(seed)
    x1, x2 = r.normal(50, 10, n), r.uniform(0, 100, n)
    price = 1_000 * x1 + 500 * x2 + 100_000 + noise * r.normal(0, 20_000, n)
    return pd.DataFrame({"id": np.arange(seed * 100_000, seed * 100_000 + n), "x1": x1, "x2": x2, "price": price})


def _money(prices: pd.Series) -> list[str]:
    return [f"${v:,.0f}" for v in prices]


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A linear price model of 2,000 rows whose training file writes the price as money ("$154,213")."""
    folder = tmp_path_factory.mktemp("ops3")
    table = _houses(2000, 0)
    table.assign(price=_money(table["price"])).to_csv(folder / "train.csv", index=False)
    mlengineer.train(str(folder / "train.csv"), "price", out=folder / "house", track=False, time_budget=4,
                     families=["linear"], tune=False)
    return folder / "house"


# -- 4. outcomes written as money ---------------------------------------------------------------------------------
def test_outcomes_written_as_money_are_read_as_training_read_the_target(house: Path, tmp_path: Path) -> None:
    rows = _houses(200, 3)
    rows.drop(columns="price").to_csv(tmp_path / "rows.csv", index=False)
    pd.DataFrame({"id": rows["id"], "price": _money(rows["price"])}).to_csv(tmp_path / "money.csv", index=False)
    pd.DataFrame({"id": rows["id"], "price": rows["price"].round()}).to_csv(tmp_path / "plain.csv", index=False)
    model = mlengineer.load(house)
    money = load_current(model, data=str(tmp_path / "rows.csv"), labels=str(tmp_path / "money.csv"), key="id")
    plain = load_current(model, data=str(tmp_path / "rows.csv"), labels=str(tmp_path / "plain.csv"), key="id")
    assert money.labelled.all() and np.array_equal(money.y, plain.y)
    assert money.y[0] == round(rows["price"].iloc[0])
    # text that is no number is still refused, naming the file, the column and the value
    pd.DataFrame({"id": rows["id"], "price": ["about $3"] * len(rows)}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad.csv has the outcome 'about \$3' in 'price', which is not a"):
        load_current(model, data=str(tmp_path / "rows.csv"), labels=str(tmp_path / "bad.csv"), key="id")


# -- 6. the performance alarm tests the change ---------------------------------------------------------------------
def _errors(n: int, seed: int, sd: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    return r.normal(0, sd, n), np.zeros(n)


def test_the_change_test_finds_a_change_whose_intervals_overlap_and_holds_its_level() -> None:
    """Errors 12% larger on 400 rows against 400: the two RMSE intervals often overlap. Drawn jointly (the
    spread of the difference, ``full=False``) the change is mostly found beyond chance, overlapping or not;
    with the reference's reach counted in full, as the monitor counts it (every batch of a model shares how
    lucky its reference rows were), about when the two intervals part, so less often: the price of holding the
    level for every model, not only on average over models. Between batches drawn alike, the one-sided 97.5%
    test fires about one time in forty, not more."""
    ref = _errors(400, 0, 1.0)
    found, overlapping, found_overlapping, in_full = 0, 0, 0, 0
    for seed in range(1, 31):
        now = _errors(400, seed, 1.12)
        a, b = realised("rmse", *now, seed=seed), realised("rmse", *ref)
        change = realised_change("rmse", (*now, None), (*ref, None), higher=False, full=False, seed=seed)
        full = realised_change("rmse", (*now, None), (*ref, None), higher=False, seed=seed)
        assert change is not None and change["low"] <= change["value"] <= change["high"]
        assert full is not None and full["bound"] <= change["bound"]
        overlapping += a.low < b.high
        found += change["bound"] > 0
        found_overlapping += a.low < b.high and change["bound"] > 0
        in_full += full["bound"] > 0
    assert overlapping >= 10 and found >= 19 and found_overlapping >= 8, (overlapping, found, found_overlapping)
    assert 6 <= in_full < found, (in_full, found)  # 9 and 22 of 30
    fired = 0
    for seed in range(1, 61):
        alike = realised_change("rmse", (*_errors(400, seed, 1.0), None), (*_errors(400, 1000 + seed, 1.0), None),
                                higher=False, seed=seed)
        assert alike is not None
        fired += alike["bound"] > 0
    assert fired <= 4, fired  # 2.5% of 60 is 1.5


def test_a_clearly_worse_batch_alarms_and_batches_drawn_like_the_reference_do_not(house: Path) -> None:
    model = mlengineer.load(house)
    for seed in (11, 12, 13, 14):
        alike = _houses(300, seed)
        _, result = monitor_model(model, data=alike.drop(columns="price"), labels=alike[["id", "price"]], key="id")
        perf = result["performance"]
        assert perf["basis"] == "realised" and perf["labelled"] == 300
        assert not result["alarms"]["performance"], (seed, perf["change"], perf["margin"], perf["p_value"])
        assert perf["metrics"]["rmse"]["change_from_reference"]["bound"] < perf["change"] + 1e-9
    worse = _houses(300, 21, noise=1.5)  # the world got noisier: errors about 50% larger
    _, result = monitor_model(model, data=worse.drop(columns="price"), labels=worse[["id", "price"]], key="id")
    perf = result["performance"]
    assert result["alarms"]["performance"] and perf["against_reference"] and perf["p_value"] < 0.05, perf
    assert perf["test"].startswith("bootstrap of the change")
    said = " ".join(result["summary"])
    assert "Alarm: the realised RMSE is worse than on the reference rows by more than the tolerance, and beyond " \
           "chance (a one-sided 97.5% test of the change" in said, said


def test_another_metric_worse_beyond_chance_is_said_when_the_headline_holds(tmp_path: Path) -> None:
    """Heavy-tailed errors (t with 2 degrees of freedom) 35% larger: the MAE shows it beyond chance, the RMSE,
    which a few huge errors rule, does not; the summary says so, and the alarm stays with the RMSE."""
    def rows(n: int, seed: int, scale: float = 1.0) -> pd.DataFrame:
        r = np.random.default_rng(seed)
        x1, x2 = r.normal(0, 1, n), r.uniform(0, 10, n)
        return pd.DataFrame({"id": np.arange(seed * 10**5, seed * 10**5 + n), "x1": x1, "x2": x2,
                             "y": 2 * x1 + x2 + scale * 3 * r.standard_t(2, n)})

    model = mlengineer.train(rows(3000, 0), "y", out=tmp_path / "heavy", track=False, time_budget=4,
                             families=["linear"], tune=False)
    live = rows(300, 1, scale=1.35)
    _, result = monitor_model(model, data=live.drop(columns="y"), labels=live[["id", "y"]], key="id")
    perf = result["performance"]
    assert not result["alarms"]["performance"] and not perf["beyond_chance"] and perf["also_worse"] == ["mae"]
    mae = perf["metrics"]["mae"]
    said = [s for s in result["summary"] if s.startswith("The RMSE's change is within chance, but the MAE is worse")]
    assert said == [f"The RMSE's change is within chance, but the MAE is worse than on the reference rows beyond "
                    f"chance and the tolerance ({number(mae['realised']['value'])} against "
                    f"{number(mae['reference']['value'])}); the alarm follows the RMSE alone."], result["summary"]


# -- 7, 8. retrain: rows left out, rows the champion trained on, run names -------------------------------------
def test_retrain_counts_rows_without_outcome_warns_of_training_rows_and_names_its_runs(tmp_path: Path) -> None:
    from mlengineer.monitoring.retrain import retrain
    from mlengineer.tracking.runs import list_runs

    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    train = _houses(600, 0)
    mlengineer.train(train, "price", out=tmp_path / "prices", tracking_uri=uri, time_budget=3, families=["linear"],
                     tune=False)
    new = _houses(400, 5)
    labels = new[["id", "price"]].iloc[:250]  # 150 rows have no outcome yet
    result = retrain(str(tmp_path / "prices"), data=new.drop(columns="price"), labels=labels, key="id",
                     time_budget=3, tracking_uri=uri, out=tmp_path / "c1")
    assert ("150 of the 400 rows of the data have no outcome and were left out: retrain learns from and tests on "
            "the 250 rows whose outcome is known.") in result.notes, result.notes
    assert result.rows["new_learnt"] + result.rows["new_tested"] == 250
    assert not any(n.startswith("Careful") for n in result.notes) and result.trained_rows["share"] == 0
    # the champion's own training rows, given again as new rows: the comparison flatters it, and says so
    again = train.assign(id=train["id"] + 10**6)
    result = retrain(str(tmp_path / "prices"), data=again, time_budget=3, tracking_uri=uri)  # named 'prices' too
    assert result.notes[0].startswith(f"Careful: all of the {result.rows['new_tested']} newest rows both models are "
                                      "tested on are copies of rows the champion trained on, so the comparison "
                                      "flatters the champion"), result.notes
    assert "flatters the champion, and the challenger, which learns from them too" in result.notes[0]
    assert result.trained_rows["share"] == 1.0
    assert not any("no outcome" in n for n in result.notes)  # every row had one
    # learning from other rows than the champion's, the challenger is not flattered: the champion alone is
    result = retrain(str(tmp_path / "prices"), data=again, base_data=_houses(600, 9), time_budget=3,
                     tracking_uri=uri, out=tmp_path / "c3")
    assert "copies of rows the champion trained on, so the comparison flatters the champion (a model does " \
           "better on rows it learnt from)" in result.notes[0], result.notes
    names = [r["name"] for r in list_runs(tracking_uri=uri)]
    assert sorted(names) == ["prices", "prices-retrain-1", "prices-retrain-2", "prices-retrain-3"], names


def test_training_rows_whose_outcome_is_written_as_money_are_found(house: Path, tmp_path: Path) -> None:
    """The reference keeps the outcome as the training file wrote it ("$154,213"), the new rows' is read as a
    number: the same rows all the same."""
    from mlengineer.monitoring.retrain import retrain

    again = pd.read_csv(house.parent / "train.csv").iloc[:300]
    assert again["price"].iloc[0].startswith("$")
    result = retrain(str(house), data=again.assign(id=again["id"] + 10**6), time_budget=3,
                     tracking_uri=f"sqlite:///{tmp_path / 'runs.db'}", out=tmp_path / "challenger")
    assert result.notes[0].startswith("Careful: all of the 90 newest rows both models are tested on are copies of "
                                      "rows the champion trained on"), result.notes
