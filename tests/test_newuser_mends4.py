"""What a new user hit, mended (fourth round): why a text column's sentence embeddings were left out, said in
the bundle, the training summary and the model card; every symbol of explain's occlusion map in its legend; the
demo's helper column and hints; and the training summary read as a newcomer reads it (whole reasons, the real
file in hints, the model kept and why an ensemble can score a little below one of its candidates)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from .conftest import FIXTURES, run_cli


def _flat(text: str) -> str:
    """Printed text with the console's line wrapping undone."""
    return re.sub(r"\s+", " ", text)


def _reviews(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good, bad = ["great", "lovely", "works", "perfect"], ["broken", "slow", "awful", "refund"]
    liked = rng.integers(0, 2, n)
    return pd.DataFrame({"review": [" ".join([*rng.choice(good if y else bad, 2), "the", "item", str(i % 7)])
                                    for i, y in enumerate(liked)],
                         "stars": rng.integers(1, 6, n), "liked": np.where(liked == 1, "yes", "no")})


@pytest.fixture
def slow_embedding_model(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The embedding model installed, its loading taking 10 s of the text features' clock (a busy machine),
    each text 0.02 s to embed; the text features' clock, which only loading moves."""
    from mlengineer.features import embeddings, text

    clock = [0.0]

    def load() -> float:
        clock[0] += 10.0
        return 10.0

    monkeypatch.setattr(text, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(embeddings, "available", lambda: True)
    monkeypatch.setattr(embeddings, "load", load)
    monkeypatch.setattr(embeddings, "seconds_per_doc", lambda docs, threads=None: 0.02)
    monkeypatch.setattr(embeddings, "remembered_cost", lambda threads: None)  # nothing measured before,
    monkeypatch.setattr(embeddings, "remember_cost", lambda *a: None)  # nor these made-up costs kept
    return clock


# -- 1. sentence embeddings left out: said, in plain words, where the user looks --------------------------------
def test_embeddings_left_out_for_the_models_loading_say_so(slow_embedding_model: list[float]) -> None:
    from mlengineer.features.text import TextFeatures

    df = _reviews(300)
    feats = TextFeatures("review", task_kind="binary", n_classes=2, budget_s=14)
    feats.fit_transform(df["review"], (df["liked"] == "yes").to_numpy().astype(np.int64))
    assert feats.embedder is None
    said = " ".join(feats.notes)
    assert ("The text column 'review' got no sentence embeddings: loading the embedding model took 10 s of the "
            "14 s the time budget left for them") in said, said
    assert "give a larger time budget (--time-budget) to use them" in said
    assert "0 s left" not in said


def test_the_notes_reach_the_bundle_the_training_summary_and_the_model_card(
        slow_embedding_model: list[float], capsys: pytest.CaptureFixture[str]) -> None:
    import mlengineer
    from mlengineer.cli.train import print_training_summary
    from mlengineer.report.summary import model_card

    # a short budget: 40% of it for the text, too little to load the model (the loading case: the test above)
    model = mlengineer.train(_reviews(), "liked", time_budget=5, track=False, families=["linear"], max_models=1)
    notes = model.metadata["feature_notes"]
    assert any("'review' got no sentence embeddings: the time budget left 2 s" in n for n in notes), notes
    print_training_summary(model)
    printed = _flat(capsys.readouterr().out)
    assert "The text column 'review' got no sentence embeddings" in printed and "--time-budget" in printed
    card = model_card(model, None, rows_on="rows")
    assert any("got no sentence embeddings" in line for line in card["Data"]), card["Data"]


# -- 2. explain's legend says what every symbol of its map means -------------------------------------------------
def test_the_occlusion_legend_names_every_symbol_the_map_prints(capsys: pytest.CaptureFixture[str]) -> None:
    from mlengineer.cli.evaluation import _inside_lines, occlusion_legend
    from mlengineer.explain.media import occlusion_text

    legend = occlusion_legend()
    grid = np.linspace(-1.0, 1.0, 36).reshape(6, 6).tolist()  # hiding a patch helps (-) as well as costs
    printed = set("".join(occlusion_text(grid))) - {" "}
    assert "-" in printed and "@" in printed
    for symbol in printed:
        assert symbol in legend, (symbol, legend)
    assert "- where hiding the patch helps the prediction" in legend and "a blank little or none" in legend
    _inside_lines([{"column": "photo", "occlusion": {"unit": "log-odds of v", "grid": grid}},
                   {"column": "review", "words": [{"word": "great", "weight": 0.5}, {"word": "slow", "weight": -0.4}]}])
    out = _flat(capsys.readouterr().out)
    assert f"where the model looks in photo (log-odds of v lost when a patch is hidden; {legend}):" in out
    assert "(weight in its TF-IDF score): great (+0.5), slow (-0.4) (+ raises the score, - lowers it)" in out


# -- 3 and 4. the training summary, read as a newcomer reads it -----------------------------------------------------
def test_dropped_columns_keep_their_whole_reason_and_the_hint_names_the_file(
        capsys: pytest.CaptureFixture[str]) -> None:
    import mlengineer
    from mlengineer.cli.train import print_training_summary

    rng = np.random.default_rng(3)
    n = 160
    df = pd.DataFrame({"id": np.arange(n), "x": rng.normal(size=n), "store": rng.integers(0, 20, n)})
    df["y"] = df["x"] * 2 + rng.normal(size=n)
    model = mlengineer.train(df, "y", time_budget=4, track=False, families=["linear"], group_column="store")
    print_training_summary(model, data="my rows.csv")
    printed = _flat(capsys.readouterr().out)
    assert "store: the group column (a feature that names the group would leak across folds)" in printed, printed
    assert "..." not in printed
    hidden = len(model.metadata["findings"]) - len([f for f in model.metadata["findings"] if f["severity"] != "info"])
    assert hidden >= 1  # the identifier's finding, at least
    finding = "finding" if hidden == 1 else "findings"
    assert f"{hidden} more {finding}: \"mlengineer audit 'my rows.csv' --target y\" lists" in printed, printed


def test_the_model_kept_is_named_and_a_better_single_candidate_explained(capsys: pytest.CaptureFixture[str]) -> None:
    from mlengineer.cli.train import print_training_summary

    board = [{"model": "ensemble", "score": 0.8111, "fit_s": 1.2, "predict_ms_per_row": 0.01, "predict_1row_ms": 0.07,
              "status": "ok", "params": {"weights_chosen_by": "log_loss"}},
             {"model": "linear_2", "score": 0.8118, "fit_s": 0.5, "predict_ms_per_row": 0.001, "predict_1row_ms": 0.03,
              "status": "ok"},
             {"model": "lightgbm_1", "score": 0.7691, "fit_s": 0.7, "predict_ms_per_row": 0.01, "predict_1row_ms": 0.01,
              "status": "ok"}]
    meta = {"metric": "roc_auc", "greater_is_better": True, "split": "stratified 3-fold cross-validation",
            "leaderboard": board, "findings": [], "cleaning": [], "timings": {"pipeline_1row_ms": 0.026},
            "ensemble": [{"model": "linear_2", "weight": 0.95}, {"model": "lightgbm_1", "weight": 0.05}]}
    print_training_summary(SimpleNamespace(metadata=meta, plan=None))
    printed = _flat(capsys.readouterr().out)
    assert "The model kept: the ensemble, a weighted average of linear_2 (95%), lightgbm_1 (5%)." in printed
    assert ("linear_2 alone scored 0.8118 roc_auc on the same rows: the ensemble's weights are chosen by log_loss"
            in printed), printed
    assert "Its ms (1 row) counts cleaning and encoding the row (0.026 ms)" in printed


@pytest.mark.slow
def test_train_on_churn_reads_well_to_a_newcomer(tmp_path: Path) -> None:
    data = FIXTURES / "churn_800.csv"
    done = run_cli("train", str(data), "--target", "churn", "--time-budget", "6", "--no-track", "--out",
                   str(tmp_path / "m"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = _flat(done.stdout)
    assert "best validation" not in out and "validation roc_auc:" in out  # the ensemble is not always the best row
    assert "candidate validation score fit time" in out  # the lines printed while training say what they are
    # the budget's seconds apart from the fixed ones no budget covers (the libraries, the bundle's save)
    assert re.search(r"; trained in \d+\.\d s \(budget 6 s\)(; outside it, .+ \d+\.\d s)?\. Saved to", out), out
    assert "run store" not in out  # --no-track: no store opened
    assert f'"mlengineer audit {data} --target churn" lists it.' in out and "DATA" not in out
    assert "customer_id: identifier: unique per row" in out and "The model kept:" in out


@pytest.mark.slow
def test_the_demos_summary_names_its_helper_column_and_its_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from mlengineer.cli import demo
    from mlengineer.demo import loop, walkthrough

    monkeypatch.setattr(walkthrough, "load_salaries", lambda: pd.read_csv(FIXTURES / "salaries_1500.csv"))
    monkeypatch.setattr(loop, "closed_loop", lambda *a, **k: {})
    monkeypatch.setattr(demo, "_write_outputs", lambda *a, **k: tmp_path / "report.html")
    demo.demo_cmd(out=str(tmp_path), time_budget=5, tracking_uri=f"sqlite:///{tmp_path / 'runs.db'}")
    printed = _flat(capsys.readouterr().out)
    assert f"copy_group: {walkthrough.GROUP_REASON}" in printed, printed
    assert "would le..." not in printed and "audit DATA" not in printed
    assert f"\"mlengineer audit {tmp_path / 'salaries.csv.gz'} --target salary_in_usd\" lists" in printed, printed


@pytest.mark.long
@pytest.mark.slow
def test_the_loops_hints_name_a_real_file_and_its_estimate_reads_plainly(tmp_path: Path) -> None:
    from mlengineer.demo.loop import closed_loop

    said: list[str] = []
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    closed_loop(tmp_path, tracking_uri=uri, time_budget=3, say=said.append, rows_per_year=400)
    text = " ".join(said)
    found = re.search(r"mlengineer monitor models:/salary-loop@champion --data (\S+) --tracking-uri (\S+)'", text)
    assert found and Path(found.group(1)).is_file() and found.group(2) == uri, text
    assert "--data ROWS" not in text and f"mlengineer rollback salary-loop --tracking-uri {uri}" in text
    assert "the RMSE estimated before was $" in text and "the estimate was" not in text


def test_embeddings_well_past_the_budget_by_an_earlier_measure_are_left_out_without_loading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.features import embeddings
    from mlengineer.features.text import TextFeatures

    monkeypatch.setenv("MLENGINEER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(embeddings, "available", lambda: True)
    monkeypatch.setattr(embeddings, "loaded", lambda: False)
    df = _reviews(300)
    chars = embeddings.text_chars(df["review"].tolist())
    assert 0 < chars <= embeddings.COSTLY_CHARS
    embeddings.remember_cost(1, 8.0, 0.05, chars)  # an earlier run: 8 s to load, 50 ms a review
    known = embeddings.remembered_cost(1)
    assert known is not None and known.load_s == 8.0 and abs(known.seconds(300, chars) - 23.0) < 1e-9
    assert embeddings.remembered_cost(2) is None  # measured with another number of threads
    embeddings.remember_cost(1, None, 0.05, chars)  # loaded already: the loading time kept is the last one
    assert embeddings.remembered_cost(1).load_s == 8.0  # type: ignore[union-attr]

    def never(*a: object, **k: object) -> float:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(embeddings, "load", never)
    feats = TextFeatures("review", task_kind="binary", n_classes=2, budget_s=15, n_jobs=1)
    feats.fit_transform(df["review"], (df["liked"] == "yes").to_numpy().astype(np.int64))
    assert feats.embedder is None
    said = " ".join(feats.notes)
    assert "would take about 23 s (as an earlier run measured on this machine)" in said, said
