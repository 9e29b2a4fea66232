"""Mends from a third new-user bug hunt on how values are written: CSVs with decimal commas (placeholders among
them, three decimals, thousands dots), an identifier with one text cell, numbers written with a currency symbol
or a percent sign, and yes/no written several ways. Each is read the same at training and at prediction time:
from a file, from a DataFrame or records, and one row at a time."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlengineer.data.chunks import open_chunks
from mlengineer.data.clean import conform_values
from mlengineer.data.formats import sniff_csv
from mlengineer.data.load import load_table
from mlengineer.data.quality import audit
from mlengineer.data.schema import infer_schema
from mlengineer.data.values import number_from_text, numbers_from_text

from .conftest import run_cli

rng = np.random.default_rng(11)


def _euro(v: float, places: int = 2, *, thousands: bool = False) -> str:
    """``v`` as a European spreadsheet writes it: 1.234,56 (with ``thousands``) or 1234,56."""
    text = f"{v:,.{places}f}" if thousands else f"{v:.{places}f}"
    return text.replace(",", "X").replace(".", ",").replace("X", ".")


def _write(path: Path, header: list[str], rows: list[list[str]], sep: str = ";") -> Path:
    path.write_text("\n".join(sep.join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def _chunked(path: Path, rows: int) -> pd.DataFrame:
    with ExitStack() as stack:
        return pd.concat(list(open_chunks(path, chunk_rows=rows, stack=stack).frames), ignore_index=True)


# -- 1. decimal commas ----------------------------------------------------------------------------------------
def test_decimal_commas_with_placeholders_are_numbers_whole_and_in_chunks(tmp_path: Path) -> None:
    x = rng.uniform(0, 100, 200)
    cells = [_euro(v) for v in x]
    for i in range(0, 200, 20):
        cells[i] = "?"
    p = _write(tmp_path / "q.csv", ["x", "y"], [[c, _euro(2 * v, 3)] for c, v in zip(cells, x, strict=True)])
    df = load_table(p)
    assert df.attrs["source"]["decimal"] == ","
    col = infer_schema(df, "y")["x"]
    assert col.role.value == "numeric" and col.missing_tokens == ["?"], (col.role, col.reason)
    want = np.where(np.array(cells) == "?", np.nan, np.round(x, 2))
    np.testing.assert_allclose(numbers_from_text(df["x"]), want)
    np.testing.assert_allclose(df["y"], np.round(2 * x, 3))
    for rows in (37, 1000):  # chunks with and without a placeholder read the numbers alike
        np.testing.assert_allclose(numbers_from_text(_chunked(p, rows)["x"]), want)


@pytest.mark.parametrize("places", [3, None])
def test_a_decimal_comma_column_among_text_columns_is_read_as_decimals(tmp_path: Path, places: int | None) -> None:
    w = rng.uniform(0, 10, 300)
    written = [_euro(v, 3) if places else _euro(v, int(rng.integers(1, 4))) for v in w]  # 6,370 or 6,37 / 0,336
    rows = [[str(rng.choice(list("abc"))) for _ in range(10)] + [c, str(int(v > 5))] for c, v in zip(written, w,
                                                                                                     strict=True)]
    df = load_table(_write(tmp_path / "wide.csv", [f"c{i}" for i in range(10)] + ["w", "y"], rows))
    assert df["w"].dtype == np.float64
    np.testing.assert_allclose(df["w"], [float(c.replace(",", ".")) for c in written])
    assert infer_schema(df, "y")["w"].role.value == "numeric"


def test_thousands_dots_under_decimal_commas_and_dates_with_dots_stay_dates(tmp_path: Path) -> None:
    revenue = rng.uniform(100, 20000, 200)
    rows = [[_euro(v, thousands=True), _euro(rng.uniform(0, 1), 3), f"{1 + i % 28:02d}.{1 + i % 12:02d}.2020",
             f"{_euro(rng.uniform(0, 40), 1)} %", str(int(v > 5000))] for i, v in enumerate(revenue)]
    df = load_table(_write(tmp_path / "t.csv", ["revenue", "margin", "day", "rate", "y"], rows))
    np.testing.assert_allclose(df["revenue"], np.round(revenue, 2))
    schema = infer_schema(df, "y")
    assert schema["revenue"].role.value == "numeric"
    assert schema["day"].role.value == "datetime"  # 01.02.2020 is a date, not the number 1022020
    assert schema["rate"].role.value == "numeric" and "%" in schema["rate"].reason
    assert number_from_text(df["rate"].iloc[0]) == float(rows[0][3].replace(",", ".").rstrip(" %"))


def test_thousands_commas_are_not_read_as_decimal_commas() -> None:
    def sniff(text: str) -> dict[str, object]:
        return sniff_csv(text.encode(), ".csv")

    ambiguous = "a;b\n" + "".join(f"{i},500;x\n" for i in range(1, 30))
    assert sniff(ambiguous).get("decimal") == ","  # fields split by ';': 1,500 is one and a half
    assert "decimal" not in sniff("a;b\n" + "".join(f"{i},234.5;x\n" for i in range(1, 30)))  # 1,234.5
    assert "decimal" not in sniff("a;b\n" + "".join(f"{i},234,567;x\n" for i in range(1, 30)))
    assert "decimal" not in sniff("a\tb\n" + "".join(f"{i},500\tx\n" for i in range(1, 30)))  # tabs: thousands
    assert sniff("a\tb\n" + "".join(f"{i},25\tx\n" for i in range(1, 30))).get("decimal") == ","
    assert "decimal" not in sniff('a,b\n' + "".join(f'"{i},500",x\n' for i in range(1, 30)))
    assert "decimal" not in sniff("a;b\n" + "".join(f"{i}.25;x\n" for i in range(1, 30)))


def test_a_comma_separated_file_reads_its_thousands_as_thousands(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("amount,y\n" + "".join(f'"{i},500",{i % 2}\n' for i in range(1, 40)))
    df = load_table(p)
    assert "decimal" not in df.attrs["source"]
    np.testing.assert_allclose(numbers_from_text(df["amount"]), [i * 1000 + 500 for i in range(1, 40)])


# -- 2. an identifier with one text cell ---------------------------------------------------------------------
@pytest.mark.parametrize("odd", ["unknown", "Total"])
def test_an_identifier_with_one_text_cell_is_still_an_identifier(odd: str) -> None:
    n = 300
    ids = np.arange(5000, 5000 + n).astype(object)
    ids[5 if odd == "unknown" else n - 1] = odd  # 'unknown', or a spreadsheet's 'Total' footer
    df = pd.DataFrame({"customer_id": ids, "x": rng.normal(size=n), "y": rng.integers(0, 2, n)})
    col = infer_schema(df, "y")["customer_id"]
    assert col.role.value == "identifier" and "identifier" in col.reason, (col.role, col.reason)
    counter = pd.DataFrame({"row_number": ids, "y": rng.integers(0, 2, n)})
    assert infer_schema(counter, "y")["row_number"].role.value == "identifier"
    # numbers written as text that repeat, or that are not whole, are still numbers
    amounts = pd.DataFrame({"amount_id": np.round(rng.uniform(0, 100, n), 2).astype(object), "y": 0})
    amounts.loc[3, "amount_id"] = odd
    assert infer_schema(amounts, "y")["amount_id"].role.value == "numeric"


# -- 3. currency and percent ----------------------------------------------------------------------------------
def _money(n: int = 300) -> pd.DataFrame:
    price = rng.uniform(100, 40000, n)
    return pd.DataFrame({
        "price": [f"${v:,.0f}" for v in price],
        "cost": [f"${v:,.2f}" for v in price * 0.9],
        "rate": [f"{v:.1f}%" for v in rng.uniform(0, 40, n)],
        "fee": [f"{v:.2f} €" for v in rng.uniform(0, 50, n)],
        "mixed": [f"{'$' if i % 2 else '€'}{v:.0f}" for i, v in enumerate(rng.uniform(0, 1000, n))],
        "y": (price > 20000).astype(int),
    })


def test_numbers_written_with_a_currency_symbol_or_a_percent_sign_are_numbers() -> None:
    schema = infer_schema(_money(), "y")
    assert [schema[c].role.value for c in ("price", "cost", "rate", "fee")] == ["numeric"] * 4
    assert schema["price"].reason == "numbers written with $" and schema["fee"].reason == "numbers written with €"
    assert "18.1% is 18.1" in schema["rate"].reason
    assert schema["mixed"].role.value != "numeric"  # two currencies in one column are not one quantity
    for text, value in [("$3,007", 3007.0), ("$36,079.15", 36079.15), ("18.1%", 18.1), ("-$5.50", -5.5),
                        ("($5.50)", -5.5), ("12 €", 12.0), ("£1,200", 1200.0), ("1200", 1200.0)]:
        assert number_from_text(text) == value, text
    for text in ("$5%", "(5", "$ $5", "--5", "5 $ 5"):
        with pytest.raises(ValueError):
            number_from_text(text)
    got = conform_values(np.array(["$1,200", "1200", 1200, "18%", None], dtype=object), "numeric", strict=True)
    np.testing.assert_array_equal(got, [1200.0, 1200.0, 1200.0, 18.0, np.nan])
    # the audit names the one cell of text among them, not every number written with '$'
    odd = _money().assign(price=lambda d: d["price"].where(d.index != 4, "unknown"))
    mixed = [f for f in audit(odd, infer_schema(odd, "y"), task_kind="binary")
             if f.check == "mixed_types" and f.column == "price"]
    assert len(mixed) == 1 and mixed[0].value == 1 and "'unknown'" in mixed[0].message, mixed


# -- 4. yes/no written several ways --------------------------------------------------------------------------
def test_yes_no_written_several_ways_is_boolean_and_a_target_so_written_is_named() -> None:
    n = 300
    x = rng.normal(size=n)
    flag = np.where(x > 0, rng.choice(["yes", "Y", "Yes"], n), rng.choice(["no", "N", " n "], n))
    df = pd.DataFrame({"x": x, "flag": flag, "answer": flag})
    schema = infer_schema(df, "answer")
    assert schema["flag"].role.value == "boolean" and "written" in schema["flag"].reason, schema["flag"].reason
    np.testing.assert_array_equal(conform_values(flag.astype(object), "boolean", strict=True), (x > 0).astype(float))
    # a code column that only shares some letters with yes/no stays categories
    grades = pd.DataFrame({"grade": rng.choice(["A", "B", "F", "N"], n), "y": 0})
    assert infer_schema(grades, "y")["grade"].role.value == "categorical"
    findings = [f for f in audit(df, schema, task_kind="multiclass") if f.check == "label_variants"]
    assert len(findings) == 1 and "same yes or no answer" in findings[0].message, findings
    assert "'Y' (" in findings[0].message and "' n ' (" in findings[0].message


# -- end to end: train on one file, predict on another written alike -----------------------------------------
def _european_rows(n: int, seed: int) -> tuple[pd.DataFrame, list[list[str]]]:
    r = np.random.default_rng(seed)
    amount, price, rate = r.uniform(100, 20000, n), r.uniform(1, 5000, n), r.uniform(0, 40, n)
    flag = r.integers(0, 2, n).astype(bool)
    clean = pd.DataFrame({"amount": np.round(amount, 2), "price": np.round(price, 2), "rate": np.round(rate, 1),
                          "flag": flag})
    clean.loc[::25, "amount"] = np.nan
    rows = []
    for i in range(n):
        written_flag = r.choice(["yes", "Y", "Yes"]) if flag[i] else r.choice(["no", "N"])
        rows.append(["?" if i % 25 == 0 else _euro(amount[i], thousands=True), f"{_euro(price[i], thousands=True)} €",
                     f"{_euro(rate[i], 1)}%", str(written_flag), "unknown" if i == 7 else str(9000 + i)])
    return clean, rows


@pytest.mark.slow
def test_a_european_file_trains_and_predicts_as_its_clean_numbers(tmp_path: Path) -> None:
    import mlengineer

    clean, rows = _european_rows(400, 0)
    y = 0.001 * clean["amount"].fillna(10000) + 0.01 * clean["price"] + clean["rate"] + 20 * clean["flag"]
    header = ["amount", "price", "rate", "flag", "client_id", "y"]
    _write(tmp_path / "train.csv", header, [[*r, _euro(v, 3)] for r, v in zip(rows, y, strict=True)])
    model = mlengineer.train(tmp_path / "train.csv", "y", time_budget=3, families=["linear"], tune=False,
                             out=tmp_path / "m", track=False)
    reasons = {c.name: (c.role.value, c.reason) for c in model.schema.columns}
    assert reasons["price"] == ("numeric", "numbers written with €") and reasons["amount"][0] == "numeric"
    assert reasons["rate"][0] == "numeric" and reasons["flag"][0] == "boolean"
    assert reasons["client_id"][0] == "identifier", reasons
    assert model.plan.feature_columns == ["amount", "price", "rate", "flag"]

    new_clean, new_rows = _european_rows(30, 1)
    _write(tmp_path / "new.csv", header[:-1], new_rows)
    new_clean.to_csv(tmp_path / "new_clean.csv", index=False)
    want = model.predict(new_clean)
    for name in ("new.csv", "new_clean.csv"):
        r = run_cli("predict", str(tmp_path / "m"), str(tmp_path / name), "--out", str(tmp_path / f"p_{name}"))
        assert r.returncode == 0, r.stderr
        np.testing.assert_allclose(pd.read_csv(tmp_path / f"p_{name}")["prediction"], want, rtol=1e-6)
    # a DataFrame, records and one row written with the symbols read as the plain numbers do
    written = new_clean.assign(price=[f"€{v:,.2f}" for v in new_clean["price"]],
                               rate=[f"{v}%" for v in new_clean["rate"]],
                               flag=np.where(new_clean["flag"], "Y", "no"))
    np.testing.assert_allclose(model.predict(written), want, rtol=1e-6)
    records = written.astype(object).where(written.notna(), None).to_dict("records")
    np.testing.assert_allclose(model.predict(records), want, rtol=1e-6)
    np.testing.assert_allclose(model.predict(records[1]), want[1:2], rtol=1e-6)
    from mlengineer.serving.validation import RequestValidator

    checked = RequestValidator(model).validate({c: [records[1][c]] for c in written.columns}, 1).columns
    np.testing.assert_allclose([checked["price"][0], checked["rate"][0], checked["flag"][0]],
                               [new_clean["price"][1], new_clean["rate"][1], float(new_clean["flag"][1])])
