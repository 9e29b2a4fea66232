"""Explanations inside a text or a picture: which words, which parts of the image.

- ``word_weights``: the words of one text that pushed its column's TF-IDF score towards the explained class
  (or value) and away from it, each with its term in that score (``features/text.py``: the linear model's
  terms, word pairs and character n-grams shared out to their words).
- ``occlusion_map``: for one row's picture, how much the model's output (the explained class's log-odds, or
  the value) drops when each patch of the picture is replaced by the training pictures' average: a grid over
  the picture, positive where the patch supported the prediction. Log-odds rather than probabilities, as a
  confident model's probability hardly moves (0.99999 to 0.9999) where its log-odds fall by a third.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["occlusion_map", "occlusion_text", "word_weights"]

#: patches per side of an occlusion map
GRID = 7


def word_weights(model: Any, column: str, doc: Any, output: int, *, top: int = 8) -> list[dict[str, Any]] | None:
    """The ``top`` words of ``doc`` by the size of their term in the TF-IDF score of ``output`` (a class's
    index, 0 for regression), or None when the column has no word-level model. A binary model's one score is
    the positive class's: terms change sign for the other class."""
    text = model.encoder.text_features(column) if hasattr(model.encoder, "text_features") else None
    if text is None or text.linear is None:
        return None
    k = len(model.classes) if model.task.is_classification else 1
    sign = -1.0 if k == 2 and output == 0 else 1.0
    terms = text.word_terms(doc, 0 if k <= 2 else output)
    return [{"word": w, "weight": round(sign * t, 6)} for w, t in terms[:top] if t != 0]


def _output(model: Any, X: np.ndarray) -> np.ndarray:
    raw = model.predictor.predict_raw(X)
    calibrator = model.extras.get("calibrator")
    if calibrator is not None and model.task.is_classification:
        raw = calibrator.transform(raw)
    return np.asarray(raw, dtype=float).reshape(len(X), -1)


def occlusion_map(model: Any, X: np.ndarray, column: str, output: int, *, grid: int = GRID) -> dict[str, Any] | None:
    """The occlusion map of the picture in ``column`` for one encoded row ``X`` (shape (1, features)):
    ``{"grid": rows of drops, "unit", "patch": [height, width], "size": [height, width]}``; None when the
    column is not a picture."""
    pixels = model.encoder.image_pixels(column) if hasattr(model.encoder, "image_pixels") else None
    if pixels is None:
        return None
    names = list(model.encoder.feature_names_)
    first = names.index(f"{column}__px0_0_0")
    c, h, w = pixels.shape
    index = np.arange(first, first + c * h * w).reshape(c, h, w)
    background = model.extras.get("background")
    ref = np.nanmean(background[:, index.ravel()], axis=0) if background is not None else np.zeros(index.size)
    ref = np.nan_to_num(ref).reshape(c, h, w)
    ph, pw = max(1, math.ceil(h / grid)), max(1, math.ceil(w / grid))
    cells = [(y, x) for y in range(0, h, ph) for x in range(0, w, pw)]
    batch = np.repeat(np.asarray(X, dtype=np.float32)[:1], len(cells) + 1, axis=0)
    for i, (y, x) in enumerate(cells, start=1):
        patch = index[:, y:y + ph, x:x + pw]
        batch[i, patch.ravel()] = ref[:, y:y + ph, x:x + pw].ravel()
    out = _output(model, batch)[:, min(output, _output_width(model) - 1)]
    unit = model.target
    if model.task.is_classification:
        p = np.clip(out, 1e-12, 1 - 1e-12)
        out = np.log(p / (1 - p))
        unit = f"log-odds of {model.classes[output]}"
    drops = out[0] - out[1:]
    rows = -(-h // ph)
    return {"grid": np.round(drops.reshape(rows, -1), 4).tolist(), "unit": unit, "patch": [ph, pw], "size": [h, w]}


def _output_width(model: Any) -> int:
    return len(model.classes) if model.task.is_classification else 1


def occlusion_text(grid: list[list[float]]) -> list[str]:
    """An occlusion map as lines of characters for a terminal: '@' where hiding the patch costs the most,
    '.' where it costs little, '-' where hiding it helps the prediction."""
    a = np.asarray(grid, dtype=float)
    top = float(a.max()) if a.size and a.max() > 0 else 1.0
    ramp = " .:+*#@"
    return ["".join(("-" if v < -0.1 * top else ramp[int(np.clip(v / top, 0, 1) * (len(ramp) - 1))]) * 2 for v in row)
            for row in a]
