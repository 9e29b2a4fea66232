"""A bundle's manifest: the SHA-256 of every file in the folder, written last at save time and checked before
anything in the folder is unpickled.

A bundle is code: ``estimator.joblib`` is a pickle, and unpickling runs whatever its author put there. The
manifest detects a bundle that changed after it was saved (a file corrupted on disk or in transit, replaced,
truncated, added or removed, an estimator copied in from another bundle): such a bundle is refused in one
line naming the file, before it is read. It does not protect against a hostile author, who can write a
matching manifest for a harmful pickle. Signing adds who wrote it: with ``MLENGINEER_SIGNING_KEY`` set, the
manifest carries an HMAC-SHA256 of its digest made with that key, and loading with the key set refuses a
bundle whose signature is missing or does not match, so only holders of the key can make bundles that load.

    manifest.json  {"format": 1, "algorithm": "sha256", "files": {"MLmodel": "<hex>", ...},
                    "digest": "<hex over the sorted file list>", "signature": "<hex>" (when signed)}

The digest is the bundle's identity: the registry records it with each version, and a server checks it
before it swaps a version in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from ..errors import ModelError

__all__ = ["MANIFEST", "SIGNING_KEY_ENV", "UnreadableBundle", "bundle_digest", "folder_stamp", "readable_digest",
           "verify_manifest", "write_manifest"]

MANIFEST = "manifest.json"
SIGNING_KEY_ENV = "MLENGINEER_SIGNING_KEY"
#: files MLflow itself writes into a registered model's folder (``mlflow.pyfunc.load_model("models:/...")``
#: writes the name and version it was loaded by, into the stored folder itself where the artifacts are local):
#: never read by the loader, so neither hashed nor refused
MLFLOW_BOOKKEEPING = frozenset({"registered_model_meta"})
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> dict[str, Path]:
    """Every file under ``root`` but the manifest, by its path relative to ``root`` (POSIX form)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            raise ModelError(f"Model bundle {str(root)!r} holds a link, {rel!r}: a bundle holds plain files only.")
        if p.is_file() and rel != MANIFEST and rel not in MLFLOW_BOOKKEEPING:
            out[rel] = p
    return out


def _digest(files: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{name}\0{sha}\n" for name, sha in sorted(files.items())).encode()).hexdigest()


def _signature(digest: str, key: str) -> str:
    return hmac.new(key.encode(), digest.encode(), hashlib.sha256).hexdigest()


def write_manifest(root: Path) -> str:
    """Hash every file under ``root`` into ``root/manifest.json``; the bundle's digest."""
    files = {name: _sha256(p) for name, p in _files(root).items()}
    digest = _digest(files)
    manifest: dict[str, Any] = {"format": 1, "algorithm": "sha256", "files": files, "digest": digest}
    key = os.environ.get(SIGNING_KEY_ENV)
    if key:
        manifest["signature"] = _signature(digest, key)
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return digest


def _read(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise ModelError(f"Model bundle {str(root)!r} has no {MANIFEST}, so it cannot be checked before it is loaded: "
                         "it was saved by an mlengineer before 0.2 or altered. Retrain it, or if you trust where it "
                         f"came from, run 'mlengineer verify {root} --trust'.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise TypeError("files")
        str(manifest["digest"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ModelError(f"Model bundle {str(root)!r}: {MANIFEST} is damaged (not the manifest mlengineer writes); "
                         "retrain the model or restore the bundle from where it came from.") from None
    return dict(manifest)


def verify_manifest(root: Path) -> str:
    """Check every file under ``root`` against its manifest; the bundle's digest, or a ModelError naming the
    first file that changed, appeared or went missing."""
    manifest = _read(root)
    expected: dict[str, str] = manifest["files"]
    present = _files(root)
    where = f"Model bundle {str(root)!r}"
    advice = "it changed after it was saved; restore it from where it came from or retrain it."
    for name in sorted(expected):
        if name not in present:
            raise ModelError(f"{where}: {name} is missing; {advice}")
        if _sha256(present[name]) != expected[name]:
            raise ModelError(f"{where}: {name} does not match its manifest (SHA-256 differs): {advice}")
    extra = sorted(set(present) - set(expected))
    if extra:
        raise ModelError(f"{where}: {extra[0]} is not in its manifest, a file added after it was saved: move it "
                         "out of the folder, or restore the bundle from where it came from.")
    digest = _digest(expected)
    if digest != manifest["digest"]:
        raise ModelError(f"{where}: {MANIFEST} does not add up (its digest differs from its files'); {advice}")
    key = os.environ.get(SIGNING_KEY_ENV)
    if key and not hmac.compare_digest(str(manifest.get("signature", "")), _signature(digest, key)):
        state = "is not signed" if "signature" not in manifest else "is signed with another key"
        raise ModelError(f"{where} {state}, and {SIGNING_KEY_ENV} asks for bundles signed with this key: load only "
                         "bundles made where the key is set.")
    return digest


def bundle_digest(root: Path) -> str | None:
    """The digest a bundle's manifest records (not checked), or None without one (``readable_digest`` says why)."""
    try:
        return readable_digest(root, "The bundle")
    except UnreadableBundle:
        return None


class UnreadableBundle(ModelError):
    """A bundle whose files cannot be read now (its folder or manifest missing or unreadable): a state that may
    pass by itself, as when the store is being copied or synced, unlike files that differ from what was saved."""


def readable_digest(root: Path, what: str) -> str:
    """The digest the manifest of the bundle at ``root`` records (not checked); an UnreadableBundle saying why
    where it cannot be read (``what``, such as "Version 3 of 'churn'", begins its message)."""
    path = root / MANIFEST
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["digest"])
    except FileNotFoundError:
        problem = f"cannot read {root}: the folder does not exist" if not os.path.isdir(root) else \
            f"cannot read {path}: the file does not exist"
    except OSError as e:
        problem = f"cannot read {path}: {e.strerror or type(e).__name__}"
    except (ValueError, KeyError, TypeError):
        problem = f"cannot read {path}: it is not the manifest mlengineer writes (cut short or damaged)"
    raise UnreadableBundle(f"{what} cannot be loaded: {problem}. Restore the files there, or wait for a copy or "
                           "sync of the store to end (a server on the alias tries again by itself).")


def folder_stamp(root: Path) -> str:
    """What the files under ``root`` look like now, from their names, sizes and modification times (nothing is
    read, so it is cheap): it changes when a file is written, replaced, added or removed."""
    h = hashlib.sha256()
    try:
        for p in sorted(root.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if rel not in MLFLOW_BOOKKEEPING:
                st = p.stat()
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    except OSError as e:
        h.update(f"unreadable: {e}".encode())
    return h.hexdigest()
