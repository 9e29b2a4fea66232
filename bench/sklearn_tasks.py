"""Extra benchmark tasks from data shipped inside scikit-learn, as folders bench/accuracy.py reads.

    .venv/bin/python bench/sklearn_tasks.py --out /tmp/more                  # writes /tmp/more/bench/digits
    MLENGINEER_SHARED=/tmp/more .venv/bin/python bench/accuracy.py --tasks digits --peers

Each task is split 80/20 (stratified for classes, seed 0) into train.csv.gz, test.csv.gz and task.json, as in
../shared/bench; ../shared/peers is linked beside them so the peers run too. Nothing is downloaded.

- digits: 1,797 handwritten digits of 8x8 pixels (64 columns), 10 classes, log loss: a table with many
  classes and pixel-like columns, like a kept-apart task the search once trailed on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "peers"


def digits(folder: Path) -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    frame = load_digits(as_frame=True).frame
    frame["digit"] = frame.pop("target").map(lambda v: f"d{v}")
    train, test = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame["digit"])
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train.csv.gz", index=False)
    test.to_csv(folder / "test.csv.gz", index=False)
    (folder / "task.json").write_text(json.dumps({
        "name": "digits", "task": "multiclass", "target": "digit", "metric": "log_loss",
        "split": "random 80/20, seed 0, stratified", "n_train": len(train), "n_test": len(test),
        "n_features": frame.shape[1] - 1, "source": "sklearn.datasets.load_digits"}, indent=1))


TASKS = {"digits": digits}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="the folder to use as MLENGINEER_SHARED")
    ap.add_argument("--tasks", default=",".join(TASKS))
    a = ap.parse_args()
    for name in a.tasks.split(","):
        TASKS[name](a.out / "bench" / name)
        print(f"wrote {a.out / 'bench' / name}")
    link = a.out / "peers"
    if PEERS.is_dir() and not link.exists():
        link.symlink_to(PEERS)


if __name__ == "__main__":
    main()
