"""Mends from a new user's hour with text and picture columns, the bundle as an MLflow model (and its
manifest), and the demo's salary story: each test fails without its mend."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mlengineer.errors import ModelError, SchemaError

from .conftest import run_cli


# -- the bundle: tampering, foreign MLflow models, MLflow's view ------------------------------------------------
@pytest.fixture()
def bundle_copy(churn_model_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "churn-copy"
    shutil.copytree(churn_model_dir, dest)
    return dest


@pytest.mark.parametrize("removed", ["artifacts/bundle/metadata.json", "MLmodel", "artifacts"])
def test_a_removed_bundle_file_is_named_by_the_manifest_not_called_a_foreign_model(bundle_copy: Path,
                                                                                     removed: str) -> None:
    import mlengineer

    target = bundle_copy / removed
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(ModelError, match=r"is missing; it changed after it was saved") as e:
        mlengineer.load(bundle_copy)
    assert "not one made by mlengineer" not in str(e.value) and "no MLmodel" not in str(e.value)


def test_a_bundle_without_manifest_or_metadata_is_incomplete_not_foreign(bundle_copy: Path) -> None:
    import mlengineer

    (bundle_copy / "manifest.json").unlink()
    (bundle_copy / "artifacts/bundle/metadata.json").unlink()
    with pytest.raises(ModelError, match=r"is incomplete: artifacts/bundle/metadata.json is missing"):
        mlengineer.load(bundle_copy)


def _foreign_model(folder: Path) -> Path:
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
                                    "    model_path: model.pkl\n  sklearn:\n    pickled_model: model.pkl\n")
    (folder / "model.pkl").write_bytes(b"not read")
    return folder


def test_a_foreign_mlflow_model_is_refused_in_one_line_saying_what_to_do(tmp_path: Path) -> None:
    folder = _foreign_model(tmp_path / "skl")
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"a": [1.0]}).to_csv(rows, index=False)
    r = run_cli("predict", str(folder), str(rows), "--out", str(tmp_path / "p.csv"))
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "flavours: python_function, sklearn" in line and "mlflow.pyfunc.load_model" in line


def test_verify_trust_writes_nothing_into_a_foreign_mlflow_model(tmp_path: Path) -> None:
    from mlengineer.cli.registry import verify_cmd

    folder = _foreign_model(tmp_path / "skl")
    with pytest.raises(ModelError, match="not one made by mlengineer"):
        verify_cmd(str(folder), trust=True)
    assert not (folder / "manifest.json").exists()


def test_plain_mlflow_passes_the_interval_param_to_the_bundle(churn_model_dir: Path, churn_csv: Path) -> None:
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(churn_model_dir))
    assert [p.name for p in model.metadata.signature.params.params] == ["interval"]
    rows = pd.read_csv(churn_csv).drop(columns=["churn"]).head(3)
    plain = model.predict(rows)
    ranged = model.predict(rows, params={"interval": 0.9})
    assert "prediction_set" not in plain.columns and "prediction_set" in ranged.columns
    assert list(ranged["prediction"]) == list(plain["prediction"])
    # a list of labels a row, as the Python API gives it (JSON text only in CSV, Parquet and Spark output)
    assert all(isinstance(s, list) and p in s for p, s in zip(ranged["prediction"], ranged["prediction_set"],
                                                                strict=True))


# -- pictures -----------------------------------------------------------------------------------------------
def test_a_picture_file_that_cannot_be_decoded_is_named(tmp_path: Path) -> None:
    from mlengineer.data.images import check_images, image_root

    buf = tmp_path / "whole.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf)
    data = buf.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a picture")
    with image_root(tmp_path):
        with pytest.raises(SchemaError, match=r"row 1: file 'cut.png' is truncated"):
            check_images(["whole.png", "cut.png"], "photo")
        with pytest.raises(SchemaError, match=r"row 0: file 'junk.png' is not a picture"):
            check_images(["junk.png"], "photo")
    import base64

    with pytest.raises(SchemaError, match=r"row 0: the picture is truncated"):  # the server's bytes name no file
        check_images([base64.b64encode(data[: len(data) // 2]).decode()], "photo", paths=False)


# -- text ---------------------------------------------------------------------------------------------------
def test_missing_text_of_any_kind_reads_as_empty_in_few_rows_and_in_words() -> None:
    from mlengineer.features.text import TextFeatures

    rng = np.random.default_rng(0)
    docs = [f"{'good fine' if i % 2 else 'bad awful'} {rng.choice(['x', 'nan', 'y'])}" for i in range(40)]
    text = TextFeatures("t", task_kind="binary", n_classes=2, budget_s=5, embeddings="never")
    text.fit_transform(pd.Series(docs), np.arange(40) % 2)
    few = text.transform(pd.Series(["", pd.NA, None, np.nan], dtype=object))
    assert np.allclose(few, few[:1]), few
    many = text.transform(pd.Series([pd.NA] * 70, dtype=object))
    assert np.allclose(few[1], many[0], atol=1e-6)
    assert text.word_terms(np.nan) == text.word_terms(pd.NA) == []


def test_the_embedding_price_is_timed_on_texts_spread_in_small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlengineer.features import embeddings

    clock = [0.0]

    def embed(docs: Any, *, batch_size: int = 32, threads: int | None = None) -> np.ndarray:
        # as sentence-transformers does: sorted by length, each batch padded to its longest text
        tokens = sorted((min(len(str(d).split()), 128) for d in docs), reverse=True)
        clock[0] += sum(len(b) * b[0] for b in (tokens[i:i + batch_size] for i in range(0, len(tokens), batch_size)))
        return np.zeros((len(docs), embeddings.DIM), dtype=np.float32)

    monkeypatch.setattr(embeddings, "_load", lambda: None)
    monkeypatch.setattr(embeddings, "embed", embed)
    monkeypatch.setattr(embeddings, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    docs = [("word " * 400 if i % 15 == 1 else "a short review of seven words") for i in range(300)]
    priced = embeddings.seconds_per_doc(docs) * len(docs)
    clock[0] = 0.0
    embed(docs)
    assert priced < 2 * clock[0], (priced, clock[0])  # the first 16 texts, one of them long: 6 times the cost


# -- the audit of a free-text column --------------------------------------------------------------------------
def test_a_text_column_with_a_few_numbers_is_not_called_categories() -> None:
    from mlengineer.data.quality import audit
    from mlengineer.data.schema import infer_schema

    rng = np.random.default_rng(1)
    words = ["the", "parcel", "arrived", "late", "and", "box", "was", "crushed", "but", "support", "kind"]
    reviews = [" ".join(rng.choice(words, 12)) for _ in range(200)]
    for i in range(0, 200, 12):
        reviews[i] = str(rng.integers(1, 99_999))
    df = pd.DataFrame({"review": reviews, "y": rng.integers(0, 2, 200)})
    schema = infer_schema(df, "y")
    assert schema["review"].role.value == "text"
    found = [f for f in audit(df, schema, task_kind="binary") if f.column == "review"]
    assert not any("used as categories" in f.message for f in found), [f.message for f in found]


# -- the demo -----------------------------------------------------------------------------------------------
def test_the_demo_asks_the_model_about_a_roles_most_reported_title() -> None:
    from mlengineer.demo.walkthrough import TARGET, role_table

    titles = ["Research Scientist"] * 40 + ["AI Research Scientist"] * 2 + ["Machine Learning Engineer"] * 40
    df = pd.DataFrame({"job_title": titles, TARGET: np.linspace(100_000, 200_000, len(titles)), "work_year": 2025})
    asked: list[str] = []

    class Stub:
        def predict_frame(self, rows: pd.DataFrame, interval: float) -> pd.DataFrame:
            asked.append(str(rows["job_title"].iloc[0]))
            return pd.DataFrame({"prediction": [1.0], "lower": [0.0], "upper": [2.0]})

    table = role_table(df, Stub())
    research = table.loc[table["role"].str.contains("Research Scientist")].iloc[0]
    assert research["records"] == 42
    assert "Research Scientist" in asked and "AI Research Scientist" not in asked


def test_the_demos_retrain_line_says_its_scores_once() -> None:
    from mlengineer.demo.loop import retrain_line

    decided = SimpleNamespace(
        rows={"base": 6_070, "new_learnt": 28_000, "new_tested": 12_000}, decision="promoted",
        comparison={"metric": "rmse", "scores": [65_278.0, 70_647.0], "p_value": 0.001},
        reason="the challenger is significantly better than the champion: rmse 65,278 against 70,647 on 12,000 "
               "rows (p = 0.001); it takes the same inputs, so models:/salary-loop@champion is now version 2")
    line = retrain_line(decided)
    assert line.count("65,278") == 1 and line.count("p = 0.001") == 1
    assert line.startswith("Retrained on 6,070 reference rows") and "Promoted: the challenger" in line


# -- explaining -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("missing", [None, np.nan, pd.NA, "", "  "])
def test_a_missing_picture_or_text_gets_no_map_or_words(monkeypatch: pytest.MonkeyPatch, missing: Any) -> None:
    from mlengineer.explain import contributions, media

    monkeypatch.setattr(media, "occlusion_map", lambda *a, **k: {"grid": [[1.0]]})
    monkeypatch.setattr(media, "word_weights", lambda *a, **k: None)
    assert contributions._inside(SimpleNamespace(), "photo", "cat.png", np.zeros((1, 3)), 0) == {"occlusion": {"grid": [[1.0]]}}
    assert contributions._inside(SimpleNamespace(), "photo", missing, np.zeros((1, 3)), 0) == {}
