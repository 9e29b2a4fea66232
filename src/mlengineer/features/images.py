"""Pictures to pixels: one image column becomes a fixed-size block of pixel columns every family can read.

``ImagePixels.fit`` looks at the training pictures and chooses the block's shape: their own size when they
all share one small size (MNIST's 28x28 stays 28x28), else 32x32; one channel when they are all grey, else
three (RGB; transparency laid on white). The block is named ``{column}__px{c}_{y}_{x}`` (values 0 to 1), so a
convolutional network finds the picture's shape in the names, plus ``{column}__missing``: 1 where a row has
no picture (its pixels are 0). Pillow decodes (``data.images.read_image``).

A row without a picture (an empty cell, null) is answered as training answered one only where training had
such rows (``missing_seen``); where every training row had a picture, the model has never learnt what "no
picture" means, and ``transform`` refuses the row, naming the column and the row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.images import ImageProblem, read_image
from ..errors import SchemaError

__all__ = ["PIXEL_NAME", "ImagePixels", "pixel_block"]

#: the largest picture (height x width) kept at its own size; larger or mixed sizes are resized
KEEP_SIZE_PIXELS = 64 * 64
RESIZED = (32, 32)
_GREY = {"1", "L", "LA", "I", "I;16", "F", "P;L"}
PIXEL_NAME = re.compile(r"^(?P<column>.+)__px(?P<c>\d+)_(?P<y>\d+)_(?P<x>\d+)$")


class ImagePixels:
    """The pixel block of one image column (see the module's docstring)."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.shape: tuple[int, int, int] = (1, *RESIZED)  # channels, height, width
        #: whether a training row had no picture (or one that could not be read, which training reads so)
        self.missing_seen = False

    def fit(self, values: Sequence[Any], *, sample: int = 200) -> ImagePixels:
        sizes, modes = set(), set()
        seen = 0
        self.missing_seen = any(_missing(v) for v in values)
        for v in values:
            if _missing(v):
                continue
            if seen >= sample:
                break
            try:
                img = read_image(v)
            except ImageProblem:
                self.missing_seen = True  # the audit names it; training reads it as a missing picture
                continue
            sizes.add((img.height, img.width))
            modes.add(img.mode)
            seen += 1
        channels = 1 if modes and modes <= _GREY else 3
        size = next(iter(sizes)) if len(sizes) == 1 and np.prod(next(iter(sizes))) <= KEEP_SIZE_PIXELS else RESIZED
        self.shape = (channels, int(size[0]), int(size[1]))
        return self

    def note_missing(self, values: Sequence[Any]) -> None:
        """Count training rows the fit did not see (rows kept apart for calibration): a row among them without
        a picture makes ``missing_seen`` true, as it would have in the fit."""
        self.missing_seen = self.missing_seen or any(_missing(v) for v in values)

    @property
    def names(self) -> list[str]:
        c, h, w = self.shape
        return [f"{self.column}__px{k}_{y}_{x}" for k in range(c) for y in range(h) for x in range(w)] + \
            [f"{self.column}__missing"]

    @property
    def width(self) -> int:
        return int(np.prod(self.shape)) + 1

    def pixels(self, img: Any) -> np.ndarray:
        """One decoded picture as a (channels, height, width) float32 array in 0..1."""
        from PIL import Image

        c, h, w = self.shape
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            img = img.convert("RGBA")
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, img)
        img = img.convert("L" if c == 1 else "RGB")
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        a = np.asarray(img, dtype=np.float32) / 255.0
        return a[None, :, :] if c == 1 else np.transpose(a, (2, 0, 1))

    def transform(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """The block for ``values``; a picture that cannot be read counts as missing here (the cleaning plan
        refuses it at prediction time, naming the row; the audit reports it at training). A row with no
        picture is refused (SchemaError naming the column and row) where training had none without one."""
        out = np.zeros((len(values), self.width), dtype=np.float32)
        for i, v in enumerate(values):
            if _missing(v):
                if not getattr(self, "missing_seen", True):  # (a bundle saved before it: answered as it was)
                    raise SchemaError(f"Column {self.column!r}, row {i}: no picture; every row the model learnt "
                                      "from had one, so it cannot tell what a row without one is: send a picture.")
                out[i, -1] = 1.0
                continue
            try:
                out[i, :-1] = self.pixels(read_image(v)).ravel()
            except ImageProblem:
                out[i, -1] = 1.0
        return out


def _missing(v: Any) -> bool:
    """Whether a cell holds no picture: None, NaN or empty text."""
    return v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip())


def pixel_block(feature_names: Sequence[str]) -> dict[str, Any] | None:
    """Where the first image column's pixels lie among ``feature_names``: ``{"column", "shape" (c, h, w),
    "index" (positions in c, y, x order)}``, or None when no feature is a pixel."""
    found: dict[str, list[tuple[int, int, int, int]]] = {}
    for j, name in enumerate(feature_names):
        m = PIXEL_NAME.match(name)
        if m:
            found.setdefault(m["column"], []).append((int(m["c"]), int(m["y"]), int(m["x"]), j))
    if not found:
        return None
    column, cells = next(iter(found.items()))
    c, h, w = (max(cell[k] for cell in cells) + 1 for k in range(3))
    cells.sort()
    return {"column": column, "shape": (c, h, w), "index": np.asarray([cell[3] for cell in cells], dtype=np.int64)}
