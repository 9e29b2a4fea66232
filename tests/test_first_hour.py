"""What a new user meets in the first hour (issue 17): models named after their folder or --name and called
by that name everywhere, user text printed literally (brackets in file names, columns and commands), a word
about columns renamed for a repeated header and about columns predict leaves out, and an install that prints
no setuptools deprecation warning."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT, run_cli, run_clis


def test_the_license_is_an_spdx_expression() -> None:
    """setuptools warned three times per install about `project.license` as a TOML table."""
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply_configuration(Distribution(), str(ROOT / "pyproject.toml"))
    assert not [w for w in caught if "license" in str(w.message).lower()], [str(w.message)[:200] for w in caught]


def test_an_error_keeps_the_brackets_of_a_file_name(tmp_path: Path) -> None:
    r = run_cli("profile", str(tmp_path / "rows[train].csv"))
    assert r.returncode == 2 and "rows[train].csv" in r.stderr and "Traceback" not in r.stderr


def test_help_shows_every_default_it_names() -> None:
    """Rich read "[default: 60]" in an option's help as markup and printed "may take ."."""
    r = run_cli("train", "--help")
    assert r.returncode == 0 and "may take (default: 60)" in r.stdout and "take ." not in r.stdout
    assert "(default: the --out folder's name)" in " ".join(r.stdout.split())


def test_tables_and_lines_keep_the_brackets_of_columns_and_values(tmp_path: Path) -> None:
    data = tmp_path / "prices[2024].csv"
    pd.DataFrame({"price[usd]": range(40), "tag": ["[red]", "[bold]x[/]"] * 20}).to_csv(data, index=False)
    r = run_cli("profile", str(data), "--target", "price[usd]")
    assert r.returncode == 0, r.stderr
    assert "prices[2024].csv" in r.stdout and "Target price[usd]" in r.stdout
    assert "[red]" in r.stdout and "[bold]x[/]" in r.stdout


def test_a_repeated_column_name_is_a_finding(tmp_path: Path) -> None:
    """pandas reads a header `age,income,age` as age, income, age.1 and says nothing; the audit does."""
    data = tmp_path / "people.csv"
    data.write_text("age,income,age\n" + "".join(f"{20 + i},{1000 + i},{21 + i}\n" for i in range(30)))
    r = run_cli("audit", str(data), "--json")
    assert r.returncode == 0, r.stderr
    found = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    renamed = [f for f in found if f["check"] == "duplicate_column_names"]
    assert len(renamed) == 1 and renamed[0]["column"] == "age.1" and "two columns 'age'" in renamed[0]["message"]
    assert renamed[0]["severity"] == "warning"


def test_a_header_without_repeats_gets_no_such_finding(tmp_path: Path) -> None:
    data = tmp_path / "versions.csv"
    data.write_text("v.1,v.2,y\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(30)))  # dotted, not renamed
    r = run_cli("audit", str(data), "--json")
    assert r.returncode == 0 and "duplicate_column_names" not in r.stdout, r.stdout + r.stderr


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory, churn_csv: Path) -> dict[str, Path]:
    """Two churn models trained by the CLI from one file called train.csv: one named by its --out folder,
    one by --name; and a test file with a column neither model knows."""
    folder = tmp_path_factory.mktemp("names")
    df = pd.read_csv(churn_csv)
    test = df.sample(200, random_state=3)
    df.drop(index=test.index).to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    test.assign(colour="red", shoe_size=42).to_csv(folder / "extra.csv", index=False)
    out = {"folder": folder}
    names = {"a": [], "b": ["--name", "churn [v2]"]}
    done = run_clis(*(["train", str(folder / "train.csv"), "--target", "churn", "--time-budget", "4", "--no-track",
                       "--out", str(folder / f"churn-{key}"), *extra] for key, extra in names.items()),
                    cwd=folder)  # two users' commands side by side: half the wait
    for key, r in zip(names, done, strict=True):
        assert r.returncode == 0, r.stderr
        out[key] = folder / f"churn-{key}"
        out[f"{key}_stdout"] = r.stdout  # type: ignore[assignment]
    return out  # type: ignore[return-value]


@pytest.mark.slow
def test_a_model_is_named_after_its_folder_or_its_name(two_models: dict) -> None:
    assert "Model churn-a: task binary" in two_models["a_stdout"]
    assert "Model churn [v2]: task binary" in two_models["b_stdout"]  # the brackets survive the console
    for key, name in (("a", "churn-a"), ("b", "churn [v2]")):
        meta = json.loads((two_models[key] / "artifacts" / "bundle" / "metadata.json").read_text())
        assert meta["name"] == name


@pytest.mark.slow
def test_evaluate_and_compare_say_which_model_on_which_rows(two_models: dict) -> None:
    folder = two_models["folder"]
    r, compared = run_clis(["evaluate", str(two_models["a"]), str(folder / "test.csv")],  # side by side
                           ["compare", str(two_models["a"]), str(two_models["b"]), "--data", str(folder / "test.csv")])
    assert r.returncode == 0, r.stderr
    assert "Model churn-a on test.csv: 200 labelled rows" in r.stdout and "train" not in r.stdout.split("\n")[0]
    r = compared
    assert r.returncode == 0, r.stderr
    assert "churn-a" in r.stdout and "churn [v2]" in r.stdout and "test.csv" in r.stdout
    assert "A (" not in r.stdout  # two different names need no letters to tell them apart


@pytest.mark.slow
def test_predict_says_which_columns_it_leaves_out(two_models: dict) -> None:
    folder = two_models["folder"]
    r, known = run_clis(["predict", str(two_models["a"]), str(folder / "extra.csv"), "--out", str(folder / "pred.csv")],
                        ["predict", str(two_models["a"]), str(folder / "test.csv")])  # side by side
    assert r.returncode == 0, r.stderr
    assert "Column 'colour' is not one the model knows (nor 1 more: shoe_size): predict leaves them out" in r.stdout
    assert len(pd.read_csv(folder / "pred.csv")) == 200
    r = known  # id and target: known, quietly left out
    assert r.returncode == 0 and "not one the model knows" not in r.stdout, r.stdout
