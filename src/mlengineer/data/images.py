"""Image values: how a cell of an image column becomes a decoded picture, and what can go wrong on the way.

A cell holds a file path (PNG, JPEG, ...; relative paths are read from the table's folder), a ``file://``
path, a ``data:image/...;base64,`` URI, base64 text (what the server receives), or the image's bytes (a
Parquet binary column, an OIP BYTES tensor). ``read_image`` returns a fully decoded Pillow image or raises
``ImageProblem`` with a short reason that callers turn into a finding or an error naming the column and row.

Relative paths are resolved against the folder ``image_root`` sets (``mlengineer train photos/table.csv``
reads ``photos/cat.png`` for the cell ``cat.png``), else the working directory.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["IMAGE_SUFFIXES", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "ImageProblem", "check_images", "describe_value",
           "example_image", "filled",
           "image_bytes", "image_root", "is_image_bytes", "looks_like_image", "read_image", "table_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
#: a file or body larger than this is refused rather than read into memory
MAX_IMAGE_BYTES = 32 * 2**20
#: more pixels than this is refused before decoding (a decompression bomb unpacks to gigabytes)
MAX_IMAGE_PIXELS = 40_000_000
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")

_ROOT: ContextVar[Path | None] = ContextVar("mlengineer_image_root", default=None)


class ImageProblem(ValueError):
    """Why one image value cannot be used: ``kind`` is missing, unreadable, truncated, too_large or url."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@contextmanager
def image_root(folder: str | Path | None) -> Iterator[None]:
    """Read relative image paths from ``folder`` inside the block (None: leave the current root)."""
    if folder is None:
        yield
        return
    token = _ROOT.set(Path(folder))
    try:
        yield
    finally:
        _ROOT.reset(token)


def table_folder(df: Any) -> Path | None:
    """The folder a table was read from (``load_table`` records its path in ``df.attrs``), or None."""
    attrs = getattr(df, "attrs", None) or {}
    path = (attrs.get("source") or {}).get("path")
    if not path or "://" in str(path):
        return None
    p = Path(path)
    return p if p.is_dir() else p.parent


def is_image_bytes(data: bytes) -> bool:
    """Whether ``data`` starts like a picture file (PNG, JPEG, GIF, BMP, TIFF or WebP)."""
    head = bytes(data[:12])
    return head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def looks_like_image(v: Any) -> bool:
    """Whether a cell reads as an image value: bytes of a picture, a data URI or a path with a picture's suffix."""
    if isinstance(v, bytes | bytearray | memoryview):
        return is_image_bytes(bytes(v[:12]))
    if not isinstance(v, str):
        return False
    s = v.strip()
    if s.startswith("data:image/"):
        return True
    return len(s) < 4096 and s.lower().endswith(IMAGE_SUFFIXES)


def _path_of(text: str) -> Path:
    if text.startswith("file://"):
        text = text[len("file://"):]
    p = Path(text).expanduser()
    if not p.is_absolute():
        root = _ROOT.get()
        p = (root / p) if root is not None else p
    return p


def _decoded(text: str) -> bytes | None:
    """The bytes base64 ``text`` holds, or None where it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _from_base64(text: str) -> bytes | None:
    data = _decoded(text)
    return data if data is not None and is_image_bytes(data) else None


def image_bytes(v: Any, *, paths: bool = True) -> bytes:
    """The encoded picture a cell holds. ``paths=False`` refuses file paths (the server reads no files)."""
    if isinstance(v, bytes | bytearray | memoryview):
        data = bytes(v)
    elif isinstance(v, str):
        text = v.strip()
        if text.startswith("data:"):
            head, _, payload = text.partition(",")
            if ";base64" not in head:
                raise ImageProblem("unreadable", "a data URI must be base64 (data:image/png;base64,...)")
            decoded = _from_base64(payload)
            if decoded is None:
                raise ImageProblem("unreadable", "its data URI does not hold base64 of a PNG, JPEG or other picture")
            data = decoded
        elif "://" in text and not text.startswith("file://"):
            raise ImageProblem("url", f"{text[:80]!r} is a URL; nothing is downloaded: save the files and give "
                                      "their paths")
        elif not _read_as_path(text, paths):
            decoded = _decoded(text)
            if decoded is None or not is_image_bytes(decoded):
                raise ImageProblem("unreadable", "it is neither a file path nor base64 of a picture" if paths else
                                   "send the picture's bytes as base64 text (PNG, JPEG, ...)" if decoded is None
                                   else "it does not hold base64 of a PNG, JPEG or other picture")
            data = decoded
        else:
            return _read_file(_path_of(text), text)
    else:
        raise ImageProblem("unreadable", f"an image must be a file path, base64 text or bytes; got {type(v).__name__}")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem("too_large", f"the image is {len(data) / 2**20:.0f} MiB; at most "
                                        f"{MAX_IMAGE_BYTES // 2**20} MiB is read")
    return data


def _read_file(p: Path, shown: str) -> bytes:
    try:
        size = p.stat().st_size
    except OSError:
        where = f" (looked in {p.parent})" if not Path(shown).is_absolute() else ""
        raise ImageProblem("missing", f"file {shown!r} does not exist{where}") from None
    if p.is_dir():
        raise ImageProblem("missing", f"{shown!r} is a folder, not an image file")
    if size > MAX_IMAGE_BYTES:
        raise ImageProblem("too_large", f"file {shown!r} is {size / 2**20:.0f} MiB; at most "
                                        f"{MAX_IMAGE_BYTES // 2**20} MiB is read")
    try:
        return p.read_bytes()
    except OSError as e:
        raise ImageProblem("unreadable", f"file {shown!r} cannot be read: {e.strerror or e}") from None


def read_image(v: Any, *, paths: bool = True) -> Any:
    """The decoded Pillow image of a cell; raises ImageProblem (see ``image_bytes``) when it cannot be had. A
    file that cannot be decoded is named in the message (a table's rows name files; the server's, bytes)."""
    from PIL import Image, UnidentifiedImageError

    data = image_bytes(v, paths=paths)
    it = f"file {v.strip()!r}" if isinstance(v, str) and _read_as_path(v.strip(), paths) else "it"
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageProblem("unreadable", f"{it} is not a picture Pillow can read (PNG, JPEG, GIF, BMP, TIFF, "
                                         "WebP)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageProblem("unreadable", f"{it} cannot be decoded: {str(e)[:80]}") from None
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:
        raise ImageProblem("too_large", f"{it} is {w}x{h} pixels; at most {MAX_IMAGE_PIXELS // 1_000_000} million "
                                        "pixels are decoded")
    if w == 0 or h == 0:
        raise ImageProblem("unreadable", f"{it} has no pixels")
    try:
        img.load()  # decode now: a truncated file fails here, not later inside a model
    except (OSError, SyntaxError, ValueError) as e:
        if "truncated" in str(e).lower() or "broken data stream" in str(e).lower():
            subject = "the picture" if it == "it" else it  # bytes or base64 (a request's): no file to name
            raise ImageProblem("truncated", f"{subject} is truncated (it ends before the picture does)") from None
        raise ImageProblem("unreadable", f"{it} cannot be decoded: {str(e)[:80]}") from None
    return img


def _read_as_path(text: str, paths: bool) -> bool:
    """Whether ``image_bytes`` reads the (stripped) text of a cell as a file path."""
    if not paths or text.startswith("data:") or ("://" in text and not text.startswith("file://")):
        return False
    return not (len(text) > 512 and not text.lower().endswith(IMAGE_SUFFIXES))


def check_images(values: Any, name: str, *, paths: bool = True) -> None:
    """Raise SchemaError naming the column, the row and the file for the first cell that is not a readable
    picture (missing cells pass: a row without a picture is predicted as one)."""
    from ..errors import SchemaError

    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip()):
            continue
        try:
            read_image(v, paths=paths)
        except ImageProblem as e:
            raise SchemaError(f"Column {name!r}, row {i}: {e}.") from None


def example_image(size: int = 8) -> str:
    """A small grey PNG as base64 text: how a client sends a picture (warm-ups and the API docs use it)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (size, size), 128).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def describe_value(v: Any) -> str:
    """A cell as a finding or an error shows it: the path, or the kind and size of the bytes."""
    if isinstance(v, bytes | bytearray | memoryview):
        return f"<{len(v):,} bytes>"
    if isinstance(v, str) and (v.startswith("data:") or len(v) > 200):
        return f"<{len(v):,} characters of base64>"
    return repr(v) if not isinstance(v, str) else repr(v.strip())


def filled(values: pd.Series) -> pd.Series:
    """The cells of an image column that hold something (None, NaN and empty text are missing images)."""
    s = values.dropna()
    return s[s.map(lambda v: not (isinstance(v, str) and not v.strip()))]
