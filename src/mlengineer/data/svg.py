"""Small charts as inline SVG text for the profile page: no plotting library, no script, no network.

Each function returns one ``<svg>`` element sized in CSS pixels; every label is escaped.
"""

from __future__ import annotations

from html import escape

__all__ = ["bar", "bars", "histogram", "stacked"]

BLUE, ORANGE, GREY, LIGHT = "#3b6ea8", "#d9822b", "#8a94a6", "#e6e9ef"
PALETTE = ("#3b6ea8", "#d9822b", "#4f9d69", "#b5485d", "#7d62a8", "#8a94a6")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _fmt(v: float) -> str:
    if abs(v) >= 1e6 or (0 < abs(v) < 1e-3):
        return f"{v:.3g}"
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def _cut(label: str, n: int = 24) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def bar(fraction: float, *, width: int = 80, color: str = BLUE) -> str:
    """A thin bar filled to ``fraction`` (0..1), for tables."""
    f = min(max(fraction, 0.0), 1.0)
    return (f'<svg width="{width}" height="8" role="img" aria-label="{f:.0%}">'
            f'<rect width="{width}" height="8" rx="2" fill="{LIGHT}"/>'
            f'<rect width="{f * width:.1f}" height="8" rx="2" fill="{color}"/></svg>')


def histogram(edges: list[float | str], counts: list[int], *, width: int = 320, height: int = 120) -> str:
    """Vertical bars of ``counts`` between ``edges``, with the first and last edge written below."""
    if not counts:
        return ""
    top = max(max(counts), 1)
    plot_h = height - 18
    w = width / len(counts)
    rects = "".join(
        f'<rect x="{i * w + 0.5:.1f}" y="{plot_h - c / top * plot_h:.1f}" width="{max(w - 1, 0.5):.1f}" '
        f'height="{c / top * plot_h:.1f}" fill="{BLUE}"><title>{escape(_edge(edges[i]))} to '
        f'{escape(_edge(edges[i + 1]))}: {c:,}</title></rect>'
        for i, c in enumerate(counts)
    )
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="distribution">{rects}'
            f'<text x="0" y="{height - 3}" {FONT} fill="{GREY}">{escape(_edge(edges[0]))}</text>'
            f'<text x="{width}" y="{height - 3}" {FONT} fill="{GREY}" text-anchor="end">'
            f'{escape(_edge(edges[-1]))}</text></svg>')


def _edge(v: float | str) -> str:
    return v if isinstance(v, str) else _fmt(v)


def bars(labels: list[str], values: list[float], *, width: int = 320, fmt: str = "count",
         color: str = BLUE) -> str:
    """Horizontal bars, one per label, with the value written at the end (``fmt``: count, share, number)."""
    if not labels:
        return ""
    row, label_w = 16, 120
    height = row * len(labels) + 2
    top = max(max(abs(v) for v in values), 1e-12)
    room = width - label_w - 60
    parts = []
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = i * row
        text = f"{v:.0%}" if fmt == "share" else (f"{int(v):,}" if fmt == "count" else _fmt(v))
        parts.append(
            f'<text x="{label_w - 4}" y="{y + 11}" {FONT} text-anchor="end">{escape(_cut(label, 20))}'
            f'<title>{escape(label)}</title></text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{max(abs(v) / top * room, 0.5):.1f}" height="{row - 4}" '
            f'fill="{color}"/><text x="{label_w + abs(v) / top * room + 4:.1f}" y="{y + 11}" {FONT} '
            f'fill="{GREY}">{escape(text)}</text>'
        )
    return f'<svg width="{width}" height="{height}" role="img">{"".join(parts)}</svg>'


def stacked(labels: list[str], shares: dict[str, list[float]], *, width: int = 320) -> str:
    """One horizontal bar per label, split into the share of each class (a legend below)."""
    if not labels or not shares:
        return ""
    row, label_w = 16, 120
    classes = list(shares)
    room = width - label_w - 4
    parts = []
    for i, label in enumerate(labels):
        y, x = i * row, float(label_w)
        parts.append(f'<text x="{label_w - 4}" y="{y + 11}" {FONT} text-anchor="end">{escape(_cut(label, 20))}'
                     f'<title>{escape(label)}</title></text>')
        for j, c in enumerate(classes):
            w = shares[c][i] * room
            parts.append(f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row - 4}" '
                         f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(c)}: {shares[c][i]:.0%}</title></rect>')
            x += w
    y = len(labels) * row + 12
    x = float(label_w)
    for j, c in enumerate(classes):
        parts.append(f'<rect x="{x:.0f}" y="{y - 8}" width="9" height="9" fill="{PALETTE[j % len(PALETTE)]}"/>'
                     f'<text x="{x + 12:.0f}" y="{y}" {FONT}>{escape(_cut(c, 14))}</text>')
        x += 24 + 6.5 * len(_cut(c, 14))
    return f'<svg width="{width}" height="{y + 6}" role="img">{"".join(parts)}</svg>'
