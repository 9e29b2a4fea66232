"""Plots as inline SVG text, so a report is one file that needs no network to view."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["importance_svg", "svg"]


def svg(fig: plt.Figure) -> str:
    """The figure as an <svg> element (without the XML header), then closed."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def importance_svg(importance: dict[str, float], *, top: int = 15) -> str:
    items = list(importance.items())[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(items) + 1))
    ax.barh([k for k, _ in items], [v * 100 for _, v in items], color="#3b6ea8")
    ax.set_xlabel("share of the model's importance (%)")
    ax.spines[["top", "right"]].set_visible(False)
    return svg(fig)
