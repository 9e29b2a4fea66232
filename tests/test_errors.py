"""Bad input ends in one clear line and exit status 2, never a traceback, and leaves nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from .conftest import run_cli


def assert_clean_failure(r, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_missing_file(tmp_path: Path) -> None:
    r = run_cli("train", str(tmp_path / "nope.csv"), "--target", "y", "--no-track")
    assert_clean_failure(r, "nope.csv", "does not exist")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.csv"
    p.write_text("")
    r = run_cli("train", str(p), "--target", "y", "--no-track")
    assert_clean_failure(r, "empty.csv", "empty")


def test_header_only_file(tmp_path: Path) -> None:
    p = tmp_path / "header.csv"
    p.write_text("a,b,y\n")
    r = run_cli("train", str(p), "--target", "y", "--no-track")
    assert_clean_failure(r, "header.csv")


def test_unreadable_parquet(tmp_path: Path) -> None:
    p = tmp_path / "junk.parquet"
    p.write_bytes(b"\x00\x01not parquet at all" * 10)
    r = run_cli("train", str(p), "--target", "y", "--no-track")
    assert_clean_failure(r, "junk.parquet")


def test_unknown_format(tmp_path: Path) -> None:
    p = tmp_path / "data.xyz"
    p.write_text("a,b\n1,2\n")
    r = run_cli("train", str(p), "--target", "b", "--no-track")
    assert_clean_failure(r, "data.xyz", "format")


def test_unknown_target(tmp_path: Path, churn_csv: Path) -> None:
    out = tmp_path / "m"
    r = run_cli("train", str(churn_csv), "--target", "churned", "--no-track", "--out", str(out))
    assert_clean_failure(r, "'churned'", "plan")
    assert not out.exists()


def test_single_valued_target(tmp_path: Path) -> None:
    p = tmp_path / "one.csv"
    pd.DataFrame({"x": range(50), "y": ["a"] * 50}).to_csv(p, index=False)
    out = tmp_path / "m"
    r = run_cli("train", str(p), "--target", "y", "--no-track", "--out", str(out))
    assert_clean_failure(r, "single value")
    assert not out.exists()


def test_bad_time_budget(churn_csv: Path) -> None:
    r = run_cli("train", str(churn_csv), "--target", "churn", "--time-budget", "-3", "--no-track")
    assert_clean_failure(r, "--time-budget", "-3")


def test_unknown_metric(churn_csv: Path) -> None:
    r = run_cli("train", str(churn_csv), "--target", "churn", "--metric", "rmse", "--no-track")
    assert_clean_failure(r, "rmse", "binary")


@pytest.mark.parametrize("cmd", ["predict", "evaluate", "serve", "report"])
def test_model_path_that_is_not_a_bundle(tmp_path: Path, churn_csv: Path, cmd: str) -> None:
    (tmp_path / "notamodel").mkdir()
    args = [cmd, str(tmp_path / "notamodel")]
    if cmd in ("predict", "evaluate"):
        args.append(str(churn_csv))
    r = run_cli(*args)
    assert_clean_failure(r, "notamodel", "not a model bundle")


def test_predict_with_a_missing_column_writes_nothing(tmp_path: Path, churn_model_dir: Path, churn_csv: Path) -> None:
    src = tmp_path / "rows.csv"
    pd.read_csv(churn_csv).drop(columns=["churn", "plan"]).to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    r = run_cli("predict", str(churn_model_dir), str(src), "--out", str(out))
    assert_clean_failure(r, "'plan'", "missing")
    assert not out.exists()
    assert not list(tmp_path.glob(".pred.csv*"))  # no temporary file left behind either


def test_predict_with_text_in_a_numeric_column(tmp_path: Path, churn_model_dir: Path, churn_csv: Path) -> None:
    df = pd.read_csv(churn_csv).drop(columns=["churn"]).head(5)
    df["age"] = df["age"].astype(object)
    df.loc[2, "age"] = "forty"
    src = tmp_path / "rows.csv"
    df.to_csv(src, index=False)
    r = run_cli("predict", str(churn_model_dir), str(src), "--out", str(tmp_path / "p.csv"))
    assert_clean_failure(r, "'age'", "forty")


def test_evaluate_without_the_target(tmp_path: Path, churn_model_dir: Path, churn_csv: Path) -> None:
    src = tmp_path / "rows.csv"
    pd.read_csv(churn_csv).drop(columns=["churn"]).to_csv(src, index=False)
    r = run_cli("evaluate", str(churn_model_dir), str(src))
    assert_clean_failure(r, "'churn'")


def test_failed_save_leaves_the_old_bundle(tmp_path: Path, churn_model_dir: Path) -> None:
    """Saving over a folder that is not a bundle is refused; the folder is untouched."""
    import mlengineer

    model = mlengineer.load(churn_model_dir)
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "notes.txt").write_text("keep me")
    with pytest.raises(mlengineer.ModelError, match="not a model bundle"):
        model.save(victim)
    assert (victim / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["precious"]


def test_bad_calibration_fraction(churn_csv: Path) -> None:
    r = run_cli("train", str(churn_csv), "--target", "churn", "--calibration-fraction", "0.9", "--no-track")
    assert_clean_failure(r, "--calibration-fraction", "0.9")
