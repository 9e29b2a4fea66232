"""Four answers a careful user found wanting: rows met in training are found though one file writes the target
as money and the other as numbers; a yes/no model given true/false or 1/0 labels says how to write them; a
misspelt role gets the closest role; and a name that a config file's list gave, beside the flag's, is said as
the file's key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.errors import ConfigError, DataError
from mlengineer.tasks import BinaryTask

from .conftest import run_clis


def _prices(n: int = 300) -> pd.DataFrame:
    r = np.random.default_rng(3)
    x = r.normal(50, 10, n).round(2)
    return pd.DataFrame({"x": x, "price": (1_000 * x + 100_000 + r.normal(0, 2_000, n)).round()})


@pytest.fixture(scope="module")
def money_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A price model whose training file writes the price as money ("$154,213")."""
    folder = tmp_path_factory.mktemp("money")
    table = _prices()
    table.assign(price=[f"${v:,.0f}" for v in table["price"]]).to_csv(folder / "train.csv", index=False)
    mlengineer.train(str(folder / "train.csv"), "price", out=folder / "model", track=False, time_budget=2,
                     families=["linear"], tune=False)
    return folder / "model"


# -- 1. rows met in training, the target written as money in one file and as numbers in the other ---------------
def test_training_rows_are_found_though_the_target_is_written_as_money_in_one_file(money_model: Path,
                                                                                  tmp_path: Path) -> None:
    from mlengineer.cli.evaluation import rows_met
    from mlengineer.data.load import load_table
    from mlengineer.evaluation.seen import calibration_rows, keep_calibration_rows

    model = mlengineer.load(money_model)
    _prices().to_csv(tmp_path / "plain.csv", index=False)  # the same rows, the price as 154213.0
    plain = load_table(tmp_path / "plain.csv")
    met = rows_met(model, plain)
    assert met["trained_rows"]["share"] == 1.0 and "the model trained on" in met["warnings"][0], met
    other = plain.assign(x=plain["x"] + 1000)  # rows it never met, the price alike
    assert rows_met(model, other)["trained_rows"]["share"] == 0.0
    # the calibration's rows too: kept from the money file, looked up in the plain one
    keep_calibration_rows(model, load_table(money_model.parent / "train.csv").iloc[:100])
    found = calibration_rows(model, plain)
    assert found is not None and found["rows"] == 100, found


def test_evaluate_warns_of_training_rows_whose_price_it_is_given_as_numbers(money_model: Path,
                                                                            tmp_path: Path) -> None:
    _prices().to_csv(tmp_path / "plain.csv", index=False)
    done = run_clis(["evaluate", str(money_model), str(tmp_path / "plain.csv")])[0]
    assert done.returncode == 0, done.stderr
    assert "Careful: these are rows the model trained on" in done.stdout, done.stdout


# -- 2. a yes/no model given true/false or 1/0 labels -------------------------------------------------------------
def test_a_yes_no_model_refuses_true_false_labels_saying_how_to_write_them(tmp_path: Path) -> None:
    from mlengineer.data.load import load_table

    task = BinaryTask(["no", "yes"])
    pd.DataFrame({"y": ["true", "false", "true"]}).to_csv(tmp_path / "tf.csv", index=False)
    with pytest.raises(DataError) as e:
        task.encode(load_table(tmp_path / "tf.csv")["y"])  # read as True/False: said as the file writes them
    assert str(e.value).endswith("The model's labels are 'yes'/'no'; this file writes 'true'/'false': write them "
                                 "as the model's labels ('true' as 'yes', 'false' as 'no')."), e.value
    with pytest.raises(DataError, match=r"this file writes '1'/'0': write them as the model's labels \('1' as 'yes', "
                                        r"'0' as 'no'\)\.$"):
        task.encode(pd.Series([1, 0, 1]))
    with pytest.raises(DataError, match=r"this file writes 'Y'/'no': write them as the model's labels \('Y' as "
                                        r"'yes'\)\.$"):
        task.encode(pd.Series(["no", "Y"]))
    typed = BinaryTask([False, True], ["false", "true"])  # a model trained on true/false, given yes/no
    with pytest.raises(DataError, match=r"The model's labels are 'true'/'false'; this file writes 'yes'/'no'"):
        typed.encode(pd.Series(["yes", "no"]))


@pytest.mark.parametrize(("classes", "labels"), [
    (["no", "yes"], ["maybe", "no"]),             # a label that reads as neither
    (["no", "yes"], ["true", "yes"]),             # two spellings of yes: not one to one
    (["no", "yes"], ["true", "false", "no"]),     # three labels for two
    (["a", "b"], ["true", "false"]),              # which of a and b is yes is not clear
])
def test_no_rewriting_is_offered_where_the_labels_do_not_map_one_to_one(classes: list[str],
                                                                         labels: list[str]) -> None:
    with pytest.raises(DataError) as e:
        BinaryTask(classes).encode(pd.Series(labels))
    assert "which the model never saw" in str(e.value) and "write them as" not in str(e.value), e.value


# -- 3. a misspelt role -------------------------------------------------------------------------------------------
def test_a_misspelt_role_gets_the_closest_role(tmp_path: Path) -> None:
    from mlengineer.data.schema import infer_schema
    from mlengineer.training.config import TrainConfig

    frame = pd.DataFrame({"age": [30, 40, 50], "y": [0, 1, 0]})
    with pytest.raises(DataError, match=r"the role 'numerc' \(did you mean 'numeric'\?\); roles are: numeric"):
        infer_schema(frame, "y", {"age": "numerc"})
    with pytest.raises(DataError) as far:
        infer_schema(frame, "y", {"age": "zzz"})
    assert "did you mean" not in str(far.value)
    with pytest.raises(ConfigError, match=r"^column_roles= gives column 'age' the role 'Categoricl' \(did you mean "
                                          r"'categorical'\?\), which is not one of"):
        TrainConfig.build(target="y", column_roles={"age": "Categoricl"})
    frame.to_csv(tmp_path / "t.csv", index=False)
    done = run_clis(["audit", str(tmp_path / "t.csv"), "--target", "y", "--column-role", "age=numerc"])[0]
    assert done.returncode == 2 and "the role 'numerc' (did you mean 'numeric'?)" in done.stderr, done.stderr


# -- 4. a list given both in a config file and by a flag ----------------------------------------------------------
def test_each_name_of_a_list_is_said_as_the_file_key_or_the_flag_it_came_from(tmp_path: Path) -> None:
    from mlengineer.pipeline.run import check_named_columns
    from mlengineer.training.config import TrainConfig, option_words

    frame = pd.DataFrame({"x": [1.0, 2.0], "z": [3.0, 4.0], "y": [0, 1]})
    words = option_words({"drop": ["x"]}, "c.yaml", ["drop"], {"drop": ["yy"]})
    with pytest.raises(DataError, match=r"^'drop:' in c.yaml names the column 'yy', which the data does not have"):
        check_named_columns(frame, TrainConfig.build(target="y", drop=["yy", "x"], words=words))
    words = option_words({"drop": ["xx"]}, "c.yaml", ["drop"], {"drop": ["z"]})
    with pytest.raises(DataError, match=r"^--drop names the column 'xx', which the data does not have \(did you "
                                        r"mean 'x'\?\)"):
        check_named_columns(frame, TrainConfig.build(target="y", drop=["z", "xx"], words=words))
    words = option_words({"column_roles": {"z": "text"}}, "r.yaml", ["column_roles"], {"column_roles": ["x"]})
    with pytest.raises(ConfigError, match=r"^'column_roles:' in r.yaml gives column 'x' the role 'numerc'"):
        TrainConfig.build(target="y", column_roles={"x": "numerc", "z": "text"}, words=words)
    words = option_words({"keep": ["x"]}, "k.yaml", ["drop"])
    with pytest.raises(ConfigError, match=r"^'drop:' in k.yaml and --keep both name the column 'x'"):
        TrainConfig.build(target="y", drop=["x"], keep=["x"], words=words)
    words = option_words({"drop": ["z"], "keep": ["x"]}, "k.yaml", ["drop"], {"drop": ["x"]})
    with pytest.raises(ConfigError, match=r"^'drop:' in k.yaml and --keep both name the column 'x'"):
        TrainConfig.build(target="y", drop=["x", "z"], keep=["x"], words=words)
    # through the command, where the file's list and the flag's are joined: each name said as given
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "c.yaml").write_text("drop: [yy]\n")
    (tmp_path / "d.yaml").write_text("drop: [z]\n")
    train = ["train", str(tmp_path / "t.csv"), "--target", "y", "--no-track", "--out", str(tmp_path / "m")]
    from_file, from_flag = run_clis([*train, "--config", str(tmp_path / "c.yaml"), "--drop", "x"],
                                    [*train, "--config", str(tmp_path / "d.yaml"), "--drop", "xx"])
    assert from_file.returncode == 2 and f"error: 'drop:' in {tmp_path / 'c.yaml'} names the column 'yy'" \
        in from_file.stderr, from_file.stderr
    assert from_flag.returncode == 2 and "error: --drop names the column 'xx'" in from_flag.stderr, from_flag.stderr
