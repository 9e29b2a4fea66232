"""Mends from a new user's hour with report, explain and the registry: rows of one class, rows the model
trained on, --data without the target, long and non-ASCII column names, 25 classes, plain numbers on axes
and in tables; explain's new categories, missing values and large contributions; promote and rollback with
an odd alias, a missing store, a name with spaces and a deleted version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import ConfigError, ModelError

from .conftest import run_cli, run_clis

LONG = "average_daily_temperature_measured_at_the_weather_station_in_degrees_celsius"


# -- the report ----------------------------------------------------------------------------------------------

def test_rows_the_model_trained_on_are_found_and_said(churn_model_dir: Path, churn_csv: Path) -> None:
    from mlengineer.report.rows import rows_words, trained_rows

    model = mlengineer.load(churn_model_dir)
    rows = pd.read_csv(churn_csv).sample(200, random_state=3)
    seen = trained_rows(model, rows)
    assert seen is not None and seen["rows"] == 200 and seen["share"] == 1.0
    words, warning = rows_words("customers", seen, None)
    assert words == "customers of its training table" and warning and "flatter" in warning
    # the same customers, a thousand months later, are rows it never saw
    unseen = rows.assign(tenure_months=rows["tenure_months"] + 1000)
    fresh = trained_rows(model, unseen)
    assert fresh is not None and fresh["rows"] == 0
    assert rows_words("customers", fresh, 900) == ("customers it had not seen in training (a random sample of the "
                                                   "900 given)", None)
    half = rows_words("rows", {"rows": 50, "share": 0.25, "exact": True}, None)
    assert half[0] == "rows, 25% of which are in its training table" and "25% of these rows" in (half[1] or "")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning:sklearn")  # scikit-learn warns of a metric on one class
def test_a_report_on_one_class_of_training_rows_opens_and_says_both(churn_model_dir: Path, churn_csv: Path,
                                                                      tmp_path: Path) -> None:
    from mlengineer.report.html import write_report

    from .test_report import assert_offline_and_clean, open_in_chromium

    rows = pd.read_csv(churn_csv)
    rows = rows.loc[rows["churn"] == "no"].head(150)  # ROC AUC cannot be computed: it was a traceback
    page = write_report(mlengineer.load(churn_model_dir), tmp_path / "one.html", rows)
    seen = open_in_chromium(page, tmp_path / "one.png")
    assert_offline_and_clean(seen, page)
    text = seen["text"]
    assert "Careful: these are rows the model trained on" in text and "had not seen in training" not in text
    assert "churn is no every time" in text and "would be right 100% of the time" not in text
    assert "loss in log_loss" in text  # the permutation table uses a metric these rows can give
    assert "never trained on them" not in text  # the model card does not claim it either


def test_data_without_the_target_names_the_option_and_what_to_do(churn_model_dir: Path, churn_csv: Path,
                                                                   tmp_path: Path) -> None:
    rows = tmp_path / "unlabelled.csv"
    pd.read_csv(churn_csv).drop(columns=["churn"]).head(50).to_csv(rows, index=False)
    r = run_cli("report", str(churn_model_dir), "--data", str(rows), "--out", str(tmp_path / "r.html"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--data" in r.stderr and "unlabelled.csv" in r.stderr and "'churn'" in r.stderr
    assert "leave out --data" in r.stderr
    assert not (tmp_path / "r.html").exists()


def test_numbers_read_plainly_in_tables_and_on_axes() -> None:
    from mlengineer.report.html import _num
    from mlengineer.report.plots import Percent, compact, importance_svg, short
    from mlengineer.report.summary import number_formatter

    assert _num(5.919e-05) == "<0.0001" and _num(-3e-06) == ">-0.0001" and _num(0.0001776) == "0.0001776"
    assert _num(1.11e-15) == "<0.0001" and _num(0.8312345) == "0.8312" and _num(0.99996) == "0.99996"
    tick = compact(number_formatter("$"))
    assert [tick(v) for v in (50.0, 125.0, -20.0, 2.5, 150_000.0)] == ["$50", "$125", "-$20", "$2.5", "$150k"]
    labels = Percent().format_ticks([0.22, 0.225, 0.23, 0.235])
    assert labels == ["22.0%", "22.5%", "23.0%", "23.5%"] and Percent().format_ticks([0.1, 0.2]) == ["10%", "20%"]
    assert short(LONG) == "average_daily_temp…n_degrees_celsius" and short("age") == "age"
    svg = importance_svg({LONG: 0.7, "größe_m²": 0.296, "tiny": 0.004})
    assert LONG not in svg and short(LONG) in svg and "größe_m²" in svg and "0.4%" in svg


@pytest.fixture(scope="module")
def many_classes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """25 classes, a long column name and a non-ASCII one."""
    rng = np.random.default_rng(0)
    k = rng.integers(0, 25, 1000)
    df = pd.DataFrame({LONG: k + rng.normal(scale=0.8, size=1000), "größe_m²": rng.normal(size=1000),
                       "species": [f"species_{i:02d}" for i in k]})
    model = mlengineer.train(df, "species", time_budget=8, track=False)  # at 4 s a busy machine once gave no 25-class panel
    return {"model": model, "df": df, "folder": tmp_path_factory.mktemp("many")}


@pytest.mark.slow
def test_many_classes_show_the_same_classes_in_every_panel(many_classes: dict[str, Any]) -> None:
    from mlengineer.explain.partial_dependence import partial_dependence
    from mlengineer.report.plots import confusion_svg

    model = many_classes["model"]
    X = model.encode(many_classes["df"].drop(columns=["species"]).head(200)).astype(np.float32)
    curves = [partial_dependence(model, X, c) for c in (LONG, "größe_m²")]
    assert all(c is not None for c in curves)
    assert list(curves[0]["series"]) == list(curves[1]["series"]) and len(curves[0]["series"]) == 6  # type: ignore[index]
    # the six are the classes most probable as the curves are drawn: calibrated, found once for every panel
    from mlengineer.explain.partial_dependence import likely_classes

    top = likely_classes(model, X)
    assert list(curves[0]["series"]) == [f"P({model.classes[c]})" for c in top]  # type: ignore[index]
    assert partial_dependence(model, X, LONG, classes=top) == curves[0]
    labels = [str(c) for c in model.classes]
    svg = confusion_svg(labels, np.eye(25, dtype=int).tolist())
    assert "share of the true class" in svg  # without counts in the cells, a colour bar says what colour means


@pytest.mark.slow
@pytest.mark.browser
def test_many_classes_and_long_names_render(many_classes: dict[str, Any]) -> None:
    from mlengineer.report.html import write_report
    from mlengineer.report.plots import short

    from .test_report import assert_offline_and_clean, open_in_chromium

    folder = many_classes["folder"]
    test = many_classes["df"].sample(300, random_state=1).assign(**{"größe_m²": lambda d: d["größe_m²"] + 1e-3})
    page = write_report(many_classes["model"], folder / "many.html", test)
    seen = open_in_chromium(page, folder / "many.png")
    assert_offline_and_clean(seen, page)
    html = page.read_text()
    assert "Careful" not in seen["text"] and "it had not seen in training" in seen["text"]
    assert "of its 25." in seen["text"] and "größe_m²" in seen["text"]
    assert f">{short(LONG, 40)}<" in html or short(LONG, 40) in html
    assert "e-0" not in seen["text"].split("Leaderboard")[0]  # no scientific notation in the metrics


# -- explain ----------------------------------------------------------------------------------------------------

def test_explain_says_which_values_it_never_saw(churn_model_dir: Path, salary_model_dir: Path,
                                                salaries_csv: Path, tmp_path: Path) -> None:
    from mlengineer.explain import explain_rows

    churn = mlengineer.load(churn_model_dir)
    row = {"customer_id": "C1", "age": 40, "plan": "platinum", "monthly_fee": 80.0, "tenure_months": 12,
           "signup_date": "2024-01-02"}
    items = {c["column"]: c for c in explain_rows(churn, [row], top=10)[0]["contributions"]}
    assert items["plan"]["note"] in ("new: read as missing", "new or rare: read as rare")
    assert "note" not in items["age"]
    rows = pd.read_csv(salaries_csv).drop(columns=["salary_in_usd"]).head(3)
    rows.loc[0, "job_title"] = "Chief Vibes Officer"
    rows.loc[1, "experience_level"] = None
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    r = run_cli("explain", str(salary_model_dir), str(path), "--top", "8")
    assert r.returncode == 0, r.stderr
    assert "Chief Vibes Officer (new" in r.stdout and "(missing)" in r.stdout
    assert "e+0" not in r.stdout  # a contribution of 36,745 dollars reads so, not +3.675e+04


def test_explain_counts_the_other_columns_and_leaves_the_line_out_when_none_are_left(
        churn_model_dir: Path, churn_csv: Path) -> None:
    from mlengineer.explain import explain_rows

    churn = mlengineer.load(churn_model_dir)
    row = pd.read_csv(churn_csv).drop(columns=["churn"]).head(1)
    every = explain_rows(churn, row, top=99)[0]
    n = len(every["contributions"])
    assert every["other_columns_count"] == 0 and n >= 3
    assert explain_rows(churn, row, top=1)[0]["other_columns_count"] == n - 1
    one, every_one = run_clis(*(["explain", str(churn_model_dir), str(churn_csv), "--top", top, "--limit", "1"]
                                for top in ("1", "99")))  # side by side, each its own process
    assert one.returncode == 0 and f"({n - 1} other columns)" in one.stdout, one.stdout + one.stderr
    assert every_one.returncode == 0 and "other column" not in every_one.stdout, every_one.stdout + every_one.stderr


# -- the registry ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def registry(churn_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    from mlengineer.tracking.registry import register

    uri = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'reg.db'}"
    register(churn_model_dir, "churn", tracking_uri=uri)
    return uri


@pytest.mark.parametrize(("alias", "words"), [("latest", "kept by MLflow"), ("LATEST", "kept by MLflow"),
                                              ("my alias", "--alias must start with a letter")])
def test_odd_aliases_are_refused_before_the_store_sees_them(registry: str, alias: str, words: str) -> None:
    from mlengineer.tracking.registry import promote, rollback

    for call in (lambda: promote("churn", "1", alias=alias, tracking_uri=registry),
                 lambda: rollback("churn", alias=alias, tracking_uri=registry)):
        with pytest.raises(ConfigError) as err:
            call()
        assert words in str(err.value) and "cannot be used" not in str(err.value)


def test_a_mistyped_store_is_not_created(registry: str, tmp_path: Path) -> None:
    from mlengineer.tracking.registry import promote, rollback

    other = tmp_path / "typo.db"
    for call in (lambda: promote("churn", "1", tracking_uri=f"sqlite:///{other}"),
                 lambda: rollback("churn", tracking_uri=f"sqlite:///{other}")):
        with pytest.raises(ModelError, match="there is no registry at"):
            call()
    assert not other.exists()


@pytest.mark.long
def test_a_name_with_spaces_gets_a_command_that_works(registry: str, tmp_path: Path) -> None:
    r = run_cli("promote", "churn model", "1", "--tracking-uri", registry, cwd=tmp_path)
    assert r.returncode == 2 and "--name churn-model'" in r.stderr, r.stderr
    r = run_cli("rollback", "churn model", "--tracking-uri", registry, cwd=tmp_path)
    assert r.returncode == 2 and "--name churn-model'" in r.stderr and "--name churn model'" not in r.stderr


@pytest.mark.slow
def test_rollback_passes_over_a_deleted_version(churn_model_dir: Path, tmp_path: Path) -> None:
    import mlflow

    from mlengineer.tracking.registry import promote, register, rollback

    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    for _ in range(3):
        register(churn_model_dir, "churn", tracking_uri=uri)
    for v in ("1", "2", "3", "3"):  # promoting twice records the version once
        promote("churn", v, tracking_uri=uri)
    mlflow.MlflowClient(uri).delete_model_version("churn", "2")
    assert rollback("churn", tracking_uri=uri) == ("3", "1")
    with pytest.raises(ModelError, match="nothing to roll back to"):
        rollback("churn", tracking_uri=uri)
