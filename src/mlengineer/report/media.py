"""The report's figures for text and picture columns: the words that move a text column's score most, and a
few pictures with their occlusion maps (where hiding a patch changes the prediction most)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .plots import BLUE, ORANGE, _fig, svg

__all__ = ["media_figures"]

#: pictures shown with their occlusion maps
SHOWN = 4


def media_figures(model: Any, rows: np.ndarray | None) -> list[dict[str, str]]:
    """Figures for each text column with a word-level model, and for each picture column (occlusion maps of
    a few of ``rows``, encoded rows such as the bundle's background rows)."""
    figures = []
    encoder = model.encoder
    for column in model.feature_names:
        text = encoder.text_features(column) if hasattr(encoder, "text_features") else None
        if text is not None:
            fig = _words_figure(model, column, text)
            if fig is not None:
                figures.append(fig)
        pixels = encoder.image_pixels(column) if hasattr(encoder, "image_pixels") else None
        if pixels is not None and rows is not None and len(rows):
            figures.append(_occlusion_figure(model, column, pixels.shape, np.asarray(rows)[:SHOWN]))
    return figures


def _words_figure(model: Any, column: str, text: Any) -> dict[str, str] | None:
    classes = list(model.classes) if model.task.is_classification else []
    outputs = [(0, classes[1] if len(classes) == 2 else model.target)] if len(classes) <= 2 else \
        list(enumerate(classes))[:4]
    panels = [(label, text.top_words(o, n=6)) for o, label in outputs]
    panels = [(label, words) for label, words in panels if words]
    if not panels:
        return None
    fig, axes = _fig(1, len(panels), figsize=(3.6 * len(panels) + 0.6, 3.6), squeeze=False)
    for ax, (label, words) in zip(axes[0], panels, strict=True):
        words = words[::-1]
        ax.barh([w for w, _ in words], [v for _, v in words], color=[BLUE if v > 0 else ORANGE for _, v in words])
        ax.axvline(0, color="#333", lw=0.6)
        ax.set_title(f"towards {label}" if classes else f"raising {label}", loc="left")
        ax.set_xlabel("weight in the TF-IDF model")
    return {"id": f"words-{column}", "title": f"Words in {column} that move the prediction",
            "caption": f"The words whose presence in {column} pushes the prediction up (blue) or down (orange) "
                       "most, from the linear model on the column's TF-IDF vocabulary; `mlengineer explain` and "
                       "POST /explain name the words of each row.",
            "svg": svg(fig)}


def _occlusion_figure(model: Any, column: str, shape: tuple[int, int, int], rows: np.ndarray) -> dict[str, str]:
    from ..explain.media import occlusion_map

    names = list(model.encoder.feature_names_)
    first = names.index(f"{column}__px0_0_0")
    c, h, w = shape
    raw = model.predictor.predict_raw(rows)
    fig, axes = _fig(1, len(rows), figsize=(2.4 * len(rows), 2.8), squeeze=False)
    for ax, row, p in zip(axes[0], rows, np.atleast_2d(raw) if raw.ndim > 1 else raw[:, None], strict=True):
        picture = row[first:first + c * h * w].reshape(c, h, w)
        k = int(np.argmax(p)) if model.task.is_classification else 0
        occ = occlusion_map(model, row[None, :], column, k)
        assert occ is not None
        grid = np.asarray(occ["grid"])
        heat = np.kron(grid, np.ones(occ["patch"]))[:h, :w]
        ax.imshow(picture[0] if c == 1 else np.transpose(picture, (1, 2, 0)), cmap="gray" if c == 1 else None,
                  vmin=0, vmax=1)
        lim = float(np.abs(heat).max()) or 1.0
        ax.imshow(heat, cmap="RdBu_r", alpha=0.45, vmin=-lim, vmax=lim)
        title = model.classes[k] if model.task.is_classification else f"{float(p[0]):.3g}"
        ax.set_title(f"predicted {title}", fontsize=9)
        ax.set_axis_off()
    return {"id": f"occlusion-{column}", "title": f"Where the model looks in {column}",
            "caption": "A few training pictures with their occlusion maps: red where hiding a patch (replacing it "
                       "with the average picture) lowers the predicted class's log-odds most, blue where it raises "
                       "them.",
            "svg": svg(fig)}
