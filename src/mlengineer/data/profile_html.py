"""The profile as one self-contained HTML page: tables and inline SVG charts, no script, no network."""

from __future__ import annotations

import datetime as dt
import os
from html import escape
from pathlib import Path

import jinja2

from .findings import Finding
from .load import describe_source
from .profile import ColumnProfile, Profile
from .svg import bar, bars, histogram, stacked

__all__ = ["render_profile_html", "write_profile_html"]

_TEMPLATES = Path(__file__).parent / "templates"


def _pct(share: float) -> str:
    if share <= 0:
        return "0%"
    if share < 0.001:
        return "<0.1%"
    return f"{share:.1%}" if share < 0.1 else f"{share:.0%}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _num(v: float | str | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return escape(v[:19])
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:.4g}"


def _stats(c: ColumnProfile) -> str:
    rows = [("missing", f"{c.n_missing:,} ({_pct(c.missing_fraction)})"), ("distinct", f"{c.n_unique:,}")]
    if c.role == "numeric":
        rows += [("mean", _num(c.mean)), ("std", _num(c.std)), ("min", _num(c.min)), ("25%", _num(c.p25)),
                 ("median", _num(c.median)), ("75%", _num(c.p75)), ("max", _num(c.max))]
        if c.n_zeros is not None:
            rows += [("zeros", f"{c.n_zeros:,}"), ("negative", f"{c.n_negative:,}")]
        if c.skew is not None:
            rows.append(("skew", f"{c.skew:.2f}"))
    elif c.role == "datetime":
        rows += [("first", _num(c.min)), ("last", _num(c.max))]
    elif c.role == "text" and c.mean_words is not None:
        rows += [("words", f"{c.mean_words:.1f} on average"), ("characters", f"{c.mean_chars:.0f} on average")]
    if c.target_score is not None:
        rows.append(("alone predicts the target", escape(c.alone)))
        rows.append(("measured by", escape(c.target_method)))
    body = "".join(f"<tr><th>{escape(k)}</th><td class='num'>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _distribution(c: ColumnProfile) -> str:
    if c.histogram is not None:
        return histogram(c.histogram.edges, c.histogram.counts)
    if c.role == "identifier":
        return "<p class='muted small'>a different value in (nearly) every row</p>"
    if c.top_values:
        labels = [v for v, _ in c.top_values]
        counts = [float(n) for _, n in c.top_values]
        note = "" if c.n_unique <= len(labels) else f"<p class='muted small'>the {len(labels)} most common of {c.n_unique:,}</p>"
        return bars(labels, counts) + note
    return "<p class='muted small'>no distribution to show</p>"


def _relation(c: ColumnProfile) -> str:
    g = c.target_by_group
    if g is None:
        return ""
    if g.mean is not None:
        return "<p class='small'>mean target by group</p>" + bars(g.groups, g.mean, fmt="number", color="#4f9d69")
    if g.shares:
        return "<p class='small'>target classes by group</p>" + stacked(g.groups, g.shares)
    return ""


def render_profile_html(profile: Profile, *, title: str | None = None, findings: list[Finding] | None = None) -> str:
    """The page for ``profile`` (and the audit's ``findings``, when given)."""
    from importlib.metadata import PackageNotFoundError, version

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    src = profile.source
    read_as = ""
    if src:
        parts = describe_source(src)
        read_as = f"Read {src.get('path', '')} as " + ", ".join(p for p in parts if p) + "."
    cells = profile.n_rows * profile.n_columns
    try:
        ver = version("mlengineer")
    except PackageNotFoundError:
        ver = ""
    return env.get_template("profile.html.j2").render(
        p=profile, title=title or str(src.get("path", "table")), findings=findings, read_as=read_as,
        memory=_size(profile.memory_bytes), missing_share=_pct(profile.missing_cells / cells) if cells else "0%",
        bar=bar, pct=_pct, stats=_stats, distribution=_distribution, relation=_relation, version=ver,
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_profile_html(profile: Profile, path: str | Path, *, title: str | None = None,
                       findings: list[Finding] | None = None) -> Path:
    """Write the page to ``path`` atomically (a temporary file, then renamed) and return the path."""
    from .files import atomic_path

    out = Path(path)
    page = render_profile_html(profile, title=title, findings=findings)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # a page for people to open: readable as any new file would be
    return out
