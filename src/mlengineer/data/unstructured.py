"""Audit checks for columns of free text and of pictures (``quality.audit`` runs them).

A picture column: files that do not exist, cannot be read, are truncated or too large, URLs (nothing is
downloaded): one finding per kind of problem, naming the files and their rows; and what the pictures are
(their sizes and channels, and how the encoder will lay them out). Every path is looked up; pictures are
decoded on a sample of rows, so the audit stays quick on a large folder of photos.
A text column: one that holds numbers, not words.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from .findings import Finding
from .images import ImageProblem, describe_value, filled, image_bytes, read_image
from .roles import NUMERIC_SHARE, ColumnRole
from .schema import Schema
from .values import numbers_from_text

__all__ = ["DECODE_SAMPLE", "unstructured_findings"]

#: pictures decoded per column (every path is checked to exist)
DECODE_SAMPLE = 1_000
_SHOWN = 5

_PROBLEMS = {
    "missing": ("image_missing_file", "{n} row{s} name{v} a picture file that does not exist",
                "Fix the paths (relative paths are read from the table's folder) or copy the files there."),
    "unreadable": ("image_unreadable", "{n} picture{s} cannot be read", "Replace the files with PNG or JPEG ones."),
    "truncated": ("image_truncated", "{n} picture file{s} {be} truncated (cut off before the picture ends)",
                  "Copy the files again; a truncated file is usually an interrupted download or copy."),
    "too_large": ("image_too_large", "{n} picture{s} {be} too large to read",
                  "Resize them (a model sees them at 32x32 or their own small size anyway)."),
    "url": ("image_url", "{n} row{s} give{v} a URL instead of a file",
            "Download the pictures and give their paths: nothing is fetched from the network."),
}


def unstructured_findings(df: pd.DataFrame, schema: Schema) -> list[Finding]:
    """Findings about the text and image columns of ``df``."""
    out: list[Finding] = []
    for col in schema.columns:
        if col.name == schema.target or col.name not in df.columns:
            continue
        if col.role == ColumnRole.image:
            out += _image_findings(df[col.name], col.name)
        elif col.role == ColumnRole.text:
            out += _text_of_numbers(df[col.name], col.name)
    return out


def _image_findings(s: pd.Series, name: str) -> list[Finding]:
    cells = filled(s)
    problems: dict[str, list[tuple[int, Any, str]]] = {}
    sizes: Counter[tuple[int, int]] = Counter()
    modes: Counter[str] = Counter()
    decoded = 0
    for position, (label, v) in enumerate(cells.items()):
        row = _row_number(s, label, position)
        try:
            if decoded < DECODE_SAMPLE:
                img = read_image(v)
                decoded += 1
                sizes[(img.width, img.height)] += 1
                modes[img.mode] += 1
            elif isinstance(v, str):
                image_bytes(v)  # the file exists and is not too large; decoding is left to the sample
        except ImageProblem as e:
            problems.setdefault(e.kind, []).append((row, v, str(e)))
    out = [_problem_finding(name, kind, found) for kind, found in problems.items()]
    if sizes:
        out.append(_layout_finding(name, sizes, modes, decoded))
    return out


def _row_number(s: pd.Series, label: Any, position: int) -> int:
    """The row's number in the table (its position, counting from 0), for messages."""
    try:
        return int(s.index.get_loc(label))
    except (KeyError, TypeError):
        return position


def _problem_finding(name: str, kind: str, found: list[tuple[int, Any, str]]) -> Finding:
    check, what, fix = _PROBLEMS[kind]
    n = len(found)
    plural = n != 1
    head = what.format(n=f"{n:,}", s="s" if plural else "", v="" if plural else "s", be="are" if plural else "is")
    shown = "; ".join(f"row {row}: {describe_value(v) if kind != 'missing' else _why(why)}"
                      for row, v, why in found[:_SHOWN])
    more = f"; and {n - _SHOWN:,} more" if n > _SHOWN else ""
    return Finding(check=check, severity="warning", column=name, value=float(n),
                   message=f"{head} ({shown}{more}); those rows are read as having no picture.", suggestion=fix)


def _why(message: str) -> str:
    return message.removeprefix("file ")


def _layout_finding(name: str, sizes: Counter[tuple[int, int]], modes: Counter[str], decoded: int) -> Finding:
    grey = {"1", "L", "LA", "I", "I;16", "F"}
    colour = "grey" if set(modes) <= grey else "colour" if not set(modes) & grey else "grey and colour (read as colour)"
    if len(sizes) == 1:
        (w, h), = sizes
        shape = f"all {w}x{h}"
    else:
        ws = [w for w, _ in sizes]
        hs = [h for _, h in sizes]
        shape = f"{len(sizes)} sizes, from {min(ws)}x{min(hs)} to {max(ws)}x{max(hs)} (resized to one size)"
    return Finding(check="image_layout", severity="info", column=name, value=float(decoded),
                   message=f"holds pictures: {shape}, {colour} (channels: {', '.join(sorted(modes))}); "
                   f"{decoded:,} decoded to check.")


def _text_of_numbers(s: pd.Series, name: str) -> list[Finding]:
    """A column used as free text whose values are numbers: a text model reads them as words."""
    cells = s.dropna()
    if not len(cells):
        return []
    if pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells):
        share = 1.0
    else:
        sample = cells.iloc[:5_000].astype(str)
        share = float(numbers_from_text(sample).notna().mean())
    if share < NUMERIC_SHARE:
        return []
    return [Finding(check="text_of_numbers", severity="warning", column=name, value=share,
                    message=f"is used as free text but {share:.0%} of its values are numbers; a text model "
                    "reads each number as a word.",
                    suggestion=f"Use --column-role {name}=numeric (or =categorical for codes).")]
