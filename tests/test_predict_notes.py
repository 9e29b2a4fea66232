"""What `mlengineer predict` says of rows the model never learnt from, as the server warns of them: categories
it never saw and numbers far outside the training range (an Excel percent cell learnt as 0.181, a CSV's
18.1%), counted while the chunks stream, on stderr. Also: train's read line says how the table was read; a
row without a picture is refused where every training row had one (predict and the server), and the server's
picture errors say what is wrong with the bytes; the picture network is sized to its fit's planned seconds,
not to the safety stop three times as long."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import mlengineer
from mlengineer.bundle.notes import MOST_LINES
from mlengineer.errors import SchemaError
from mlengineer.features.images import ImagePixels
from mlengineer.serving.batch import InputNotes, predict_to_file

from .conftest import run_cli, run_clis
from .test_images import bar, picture_table, png
from .test_serve_basic import running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model of a rate learnt as fractions (0.01 to 0.3) and a category, one of whose values is rare."""
    root = tmp_path_factory.mktemp("rates")
    rng = np.random.default_rng(0)
    rate = rng.uniform(0.01, 0.3, 200).round(3)
    rate[1:3] = 0.01, 0.3
    g = rng.choice(["a", "b", "c"], 200)
    g[0] = "r"  # seen once: the encoder's rare group, which an unseen category is read as
    y = rate * 100 + (g == "a") * 3 + rng.normal(0, 1, 200)
    mlengineer.train(pd.DataFrame({"rate": rate, "g": g, "y": y}), "y", time_budget=3, families=["linear"],
                     track=False, out=root / "m")
    return root


def test_predict_says_unseen_categories_and_numbers_far_outside_the_range_on_stderr(rates: Path) -> None:
    # an Excel sheet's percent cells saved as CSV: "19.5%" is read as 19.5, where training had 0.195
    pd.DataFrame({"rate": ["19.5%", "0.088", "18.1%", "0.2", "25%"],
                  "g": ["a", "zz", "b", "zz", "yy"]}).to_csv(rates / "new.csv", index=False)
    pd.DataFrame({"rate": [0.05, 0.31], "g": ["a", "r"]}).to_csv(rates / "plain.csv", index=False)
    # the commands side by side, each its own process
    done, shown, quiet = run_clis(["predict", "m", "new.csv", "--out", "p.csv"], ["predict", "m", "new.csv"],
                                  ["predict", "m", "plain.csv", "--out", "q.csv"], cwd=rates)
    assert done.returncode == 0, done.stderr
    notes = [ln for ln in done.stderr.splitlines() if ln.startswith("Column ")]
    assert notes == ["Column 'g': 3 rows hold categories the model never saw (e.g. 'zz'): read as rare.",
                     "Column 'rate': 3 rows hold numbers far outside the training range (0.01 to 0.3; e.g. 19.5): "
                     "check their unit or scale."], done.stderr
    assert "never saw" not in done.stdout and "Wrote 5 predictions" in done.stdout
    # without --out the predictions are stdout's alone; the notes go aside
    assert shown.returncode == 0 and "never saw" in shown.stderr and "far outside" in shown.stderr
    assert shown.stdout.split()[0] == "prediction" and "Column" not in shown.stdout
    assert quiet.returncode == 0 and "Column" not in quiet.stderr + quiet.stdout  # just past the range: no word


def test_the_notes_count_every_chunk_as_it_streams(rates: Path) -> None:
    model = mlengineer.load(rates / "m")
    pd.DataFrame({"rate": [0.1, 30.0, 0.2, 40.0, -9.0, 0.3, 12.0], "g": ["a", "new", "b", "c", "new", "x", "a"]}
                 ).to_csv(rates / "chunks.csv", index=False)
    notes = InputNotes(model)
    assert predict_to_file(model, rates / "chunks.csv", rates / "chunks_p.csv", chunk_rows=2, notes=notes) == 7
    assert notes.unseen == {"g": (3, "new")} and notes.far == {"rate": (4, 30.0)}
    assert notes.lines()[0] == "Column 'g': 3 rows hold categories the model never saw (e.g. 'new'): read as rare."
    # a few lines at most, however many columns hold such values
    notes.unseen.update({f"c{i}": (1, "v") for i in range(6)})
    notes.read_as.update({f"c{i}": "missing" for i in range(6)})
    lines = notes.lines()
    assert len(lines) == MOST_LINES and lines[1] == ("Column 'c0': 1 row holds a category the model never saw "
                                                          "(e.g. 'v'): read as missing.")
    assert lines[-1] == "... and 5 more columns hold values the model never saw or far outside its training range."


def test_train_says_how_it_read_the_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    rows = [f"{v:.2f};{c};{2 * v + e:.3f}".replace(".", ",")
            for v, c, e in zip(a, rng.choice(["x", "y"], 200), rng.normal(size=200), strict=True)]
    (tmp_path / "dc.csv").write_text("a;b;y\n" + "\n".join(rows) + "\n")
    done = run_cli("train", "dc.csv", "--target", "y", "--time-budget", "2", "--families", "linear", "--no-track",
                   "--out", "m", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == ("Read 200 rows x 3 columns from dc.csv (CSV, delimiter ';', encoding "
                                           "utf-8, decimal comma); training for up to 2 s.")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A picture model trained on rows that all had a picture."""
    root = tmp_path_factory.mktemp("pictures")
    picture_table(root / "train", 40).to_csv(root / "train" / "table.csv", index=False)
    mlengineer.train(str(root / "train" / "table.csv"), "direction", time_budget=3, families=["linear"],
                     track=False, out=root / "m")
    return root


def test_a_missing_picture_is_refused_naming_column_and_row(pictures: Path) -> None:
    rows = picture_table(pictures / "new", 4, seed=7)
    rows.loc[2, "photo"] = None  # an empty cell in the CSV
    rows.to_csv(pictures / "new" / "rows.csv", index=False)
    done = run_cli("predict", str(pictures / "m"), str(pictures / "new" / "rows.csv"), "--out", "p.csv",
                   cwd=pictures)
    assert done.returncode == 2 and not (pictures / "p.csv").exists()
    assert "Column 'photo', row 2: no picture; every row the model learnt from had one" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_server_refuses_a_missing_picture_and_names_bad_bytes(pictures: Path) -> None:
    rng = np.random.default_rng(3)
    good, other = (base64.b64encode(png(bar(k, rng))).decode() for k in "hv")
    cut = base64.b64encode(png(bar("h", rng))[:100]).decode()
    with running_server(pictures / "m", cwd=pictures) as srv:
        assert httpx.post(f"{srv.url}/predict", json={"records": [{"photo": good, "size": 0.0}]}).status_code == 200
        for photo, message in [(None, "Column 'photo', row 1: no picture; every row the model learnt from had one"),
                               ("", "Column 'photo', row 1: no picture"),
                               (base64.b64encode(b"hello world").decode(),
                                "Column 'photo', row 1: it does not hold base64 of a PNG, JPEG or other picture."),
                               (cut, "Column 'photo', row 1: the picture is truncated"),
                               ("img/1.png", "Column 'photo', row 1: send the picture's bytes as base64")]:
            r = httpx.post(f"{srv.url}/predict", json={"records": [{"photo": other, "size": 0.0},
                                                                   {"photo": photo, "size": 1.0}]})
            assert r.status_code == 422 and r.json()["error"].startswith(message), (photo, r.text)


def test_rows_without_a_picture_are_answered_where_training_had_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    raw = [png(bar("h", rng)) for _ in range(4)]
    with pytest.raises(SchemaError, match=r"Column 'photo', row 1: no picture"):
        ImagePixels("photo").fit(raw).transform([raw[0], None])
    seen = ImagePixels("photo").fit([*raw, None])
    assert seen.missing_seen and seen.transform([raw[0], None, ""])[1:, -1].tolist() == [1.0, 1.0]
    old = ImagePixels("photo").fit(raw)
    del old.missing_seen  # a bundle saved before the check answers as it did
    assert old.transform([None])[0, -1] == 1.0
    table = picture_table(tmp_path, 60)
    table.loc[14, "photo"] = None  # a row the split keeps apart for calibration: a training row all the same
    table.to_csv(tmp_path / "table.csv", index=False)
    model = mlengineer.train(str(tmp_path / "table.csv"), "direction", time_budget=2, families=["linear"],
                             track=False, calibration_fraction=0.3)
    assert len(model.predict([{"photo": None, "size": 0.5}])) == 1


def test_the_picture_network_is_sized_to_its_planned_seconds_not_the_safety_stop() -> None:
    """A 20 s picture training took 41.5 s: the network counted its epochs against the fit's safety stop
    (three times its planned seconds and two more) and ran 21 s where the plan gave it 8."""
    pytest.importorskip("torch")
    from mlengineer.tasks import make_task
    from mlengineer.training.clock import fit_safety
    from mlengineer.training.models import FAMILIES, load_all
    from mlengineer.training.models.base import FitContext
    from mlengineer.training.models.cnn import planned_epochs, planned_seconds

    assert planned_seconds(fit_safety(8.0)) == pytest.approx(8.0) and planned_seconds(None) is None
    assert planned_epochs(1, 0.5, 3.5, None) == 8  # the first and seven more fill the 4 s planned
    assert planned_epochs(1, 0.5, 3.5, 5) == 5 and planned_epochs(1, 0.5, -2.0, None) == 1
    assert planned_epochs(4, 1.0, 0.5, None) == 4 and planned_epochs(1, 0.01, float("inf"), None) == 60
    load_all()
    rng = np.random.default_rng(0)
    names = [f"photo__px0_{y}_{x}" for y in range(8) for x in range(8)] + ["size"]
    X = rng.random((64, len(names))).astype(np.float32)
    y = (X[:, :32].mean(axis=1) > X[:, 32:64].mean(axis=1)).astype(np.int64)
    task = make_task(pd.Series(y), "binary")
    # planned a thousandth of a second: one epoch, though the safety stop leaves two seconds for more
    ctx = FitContext(task=task, feature_names=names, time_limit=fit_safety(0.001))
    model = FAMILIES["cnn"].fit(X, y, ctx, {}, X[:16], y[:16])
    assert model.rounds_run == 1 and model.params["width"] == 8 and not model.stopped_by_time
