"""Image columns, without training: paths, bytes and data URIs recognised as pictures; bad files named by
row in the audit and at prediction; pixels laid out for the network; the validator's base64 and bytes.
Pictures are drawn here (a bar across a noisy square), never read from the repository."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mlengineer.data import images
from mlengineer.data.clean import conform_values
from mlengineer.data.images import ImageProblem, image_root, read_image
from mlengineer.data.load import load_table
from mlengineer.data.quality import audit
from mlengineer.data.schema import ColumnRole, infer_schema
from mlengineer.errors import SchemaError
from mlengineer.features.encoder import FeatureEncoder
from mlengineer.features.images import ImagePixels, pixel_block
from mlengineer.training.search import portfolio


def bar(kind: str, rng: np.random.Generator, size: int = 16) -> Image.Image:
    """A grey square of noise with a bright bar: across (kind "h") or down ("v"), at a random place."""
    a = rng.integers(0, 60, (size, size)).astype(np.uint8)
    at = int(rng.integers(2, size - 4))
    if kind == "h":
        a[at:at + 2, 2:-2] = 230
    else:
        a[2:-2, at:at + 2] = 230
    return Image.fromarray(a, mode="L")


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def picture_table(folder: Path, n: int = 60, seed: int = 0, *, sub: str = "img") -> pd.DataFrame:
    """A table of ``n`` rows: a relative path to a drawn picture, a number, and the bar's direction."""
    rng = np.random.default_rng(seed)
    (folder / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        kind = "h" if rng.random() < 0.5 else "v"
        bar(kind, rng).save(folder / sub / f"{seed}_{i}.png")
        rows.append({"photo": f"{sub}/{seed}_{i}.png", "size": float(rng.normal()), "direction": kind})
    return pd.DataFrame(rows)


def test_paths_bytes_and_data_uris_are_pictures(tmp_path: Path) -> None:
    df = picture_table(tmp_path, 30)
    raw = [png(bar("h", np.random.default_rng(i))) for i in range(30)]
    df["raw"] = raw
    df["uri"] = ["data:image/png;base64," + base64.b64encode(b).decode() for b in raw]
    df["name"] = [f"item {i}" for i in range(30)]
    schema = infer_schema(df, "direction")
    assert {c: schema[c].role for c in ("photo", "raw", "uri")} == {c: ColumnRole.image for c in ("photo", "raw", "uri")}
    assert schema["photo"].reason == "paths of image files (.png)" and schema["raw"].reason == "the bytes of pictures"
    assert schema["name"].role != ColumnRole.image
    other = infer_schema(df.assign(name=df["photo"]), "direction", {"name": "image"})
    assert other["name"].role == ColumnRole.image and other["name"].reason == "set by the user"


def test_read_image_says_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = png(bar("v", np.random.default_rng(0)))
    (tmp_path / "ok.png").write_bytes(good)
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "notes.png").write_text("not a picture")
    with image_root(tmp_path):
        assert read_image("ok.png").size == (16, 16)
        cases = {"gone.png": "missing", "cut.png": "truncated", "notes.png": "unreadable",
                 "https://example.com/a.png": "url", tmp_path: "missing"}
        for value, kind in cases.items():
            with pytest.raises(ImageProblem) as e:
                read_image(str(value))
            assert e.value.kind == kind, value
        assert "does not exist (looked in" in str(pytest.raises(ImageProblem, read_image, "gone.png").value)
    assert read_image(good).mode == "L" and read_image(base64.b64encode(good).decode(), paths=False).size == (16, 16)
    with pytest.raises(ImageProblem, match="send the picture's bytes as base64"):
        read_image("ok.png", paths=False)  # the server reads no files
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageProblem) as e:
        read_image(good)
    assert e.value.kind == "too_large" and "16x16 pixels" in str(e.value)


def test_the_audit_names_each_problem_with_its_files_and_rows(tmp_path: Path) -> None:
    df = picture_table(tmp_path, 40)
    good = (tmp_path / df["photo"][0]).read_bytes()
    (tmp_path / "img" / "cut.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "img" / "text.png").write_text("hello")
    df.loc[3, "photo"] = "img/missing.png"
    df.loc[5, "photo"] = "img/cut.png"
    df.loc[7, "photo"] = "img/text.png"
    df.loc[9, "photo"] = "img/also-missing.png"
    table = tmp_path / "table.csv"
    df.to_csv(table, index=False)
    loaded = load_table(table)  # relative paths are read from the table's folder, wherever we run
    schema = infer_schema(loaded, "direction")
    found = {f.check: f for f in audit(loaded, schema, task_kind="binary") if f.column == "photo"}
    missing = found["image_missing_file"]
    assert missing.value == 2 and "row 3: 'img/missing.png' does not exist" in missing.message
    assert "row 9" in missing.message and missing.severity == "warning"
    assert "row 5" in found["image_truncated"].message and "row 7" in found["image_unreadable"].message
    assert "all 16x16, grey" in found["image_layout"].message


def test_pixels_keep_a_small_common_size_and_lay_out_channels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey = [png(bar("h", rng)) for _ in range(5)]
    pixels = ImagePixels("photo").fit([*grey, None])  # a training row without a picture: such rows are answered
    assert pixels.shape == (1, 16, 16) and pixels.names[:2] == ["photo__px0_0_0", "photo__px0_0_1"]
    block = pixels.transform([*grey, None, b"\x89PNG broken"])
    assert block.shape == (7, 257) and block[:5, -1].tolist() == [0] * 5 and block[5:, -1].tolist() == [1, 1]
    assert block.min() >= 0 and block[:5, :-1].max() == pytest.approx(230 / 255)
    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 0))  # transparent: laid on white
    mixed = ImagePixels("p").fit([png(rgba), png(Image.new("RGB", (50, 50), (0, 0, 255)))])
    assert mixed.shape == (3, 32, 32)
    first = mixed.transform([png(rgba)])[0, :-1].reshape(3, 32, 32)
    assert np.allclose(first, 1.0)
    where = pixel_block(["a", *mixed.names])
    assert where is not None and where["shape"] == (3, 32, 32) and where["index"][0] == 1


def test_the_encoder_and_the_portfolio_see_pictures(tmp_path: Path) -> None:
    df = picture_table(tmp_path, 20)
    with image_root(tmp_path):
        enc = FeatureEncoder({"photo": "image", "size": "numeric"}).fit(df[["photo", "size"]])
        X = enc.transform(df[["photo", "size"]])
    assert X.shape == (20, 16 * 16 + 2) and enc.packages == ["pillow"] and enc.image_pixels("photo") is not None
    from mlengineer.tasks import BinaryTask

    order = [f for f, _ in portfolio(BinaryTask(["h", "v"]), 20, X.shape[1], feature_names=enc.feature_names_)]
    assert order[0] == "cnn" and "text" not in order


def test_prediction_refuses_a_picture_it_cannot_read_naming_the_row(tmp_path: Path) -> None:
    good = png(bar("v", np.random.default_rng(0)))
    values = np.array([good, None, b"\x89PNG\r\n\x1a\n nonsense"], dtype=object)
    assert conform_values(values, "image", name="photo") is values  # training: the audit has said it
    with pytest.raises(SchemaError, match=r"Column 'photo', row 2: it cannot be decoded|Column 'photo', row 2: "):
        conform_values(values, "image", name="photo", strict=True)
    with image_root(tmp_path), pytest.raises(SchemaError, match=r"row 0: file 'nope.png' does not exist"):
        conform_values(np.array(["nope.png"], dtype=object), "image", name="photo", strict=True)


def test_the_validator_takes_base64_and_bytes_and_refuses_paths() -> None:
    from mlengineer.serving.validation import RequestValidator

    good = png(bar("v", np.random.default_rng(0)))

    class Stub:  # the parts of a Model the validator reads
        def __init__(self) -> None:
            from mlengineer.data.clean import CleaningPlan, Conform, SelectColumns
            from mlengineer.data.schema import Column, Schema

            self.plan = CleaningPlan(steps=[SelectColumns(keep=["photo"]), Conform(roles={"photo": "image"})])
            self.schema = Schema(columns=[Column(name="photo", role=ColumnRole.image)], target="y")
            self.feature_names = ["photo"]
            self.target = "y"

    v = RequestValidator(Stub())  # type: ignore[arg-type]
    b64 = base64.b64encode(good).decode()
    out = v.validate({"photo": [b64, "data:image/png;base64," + b64, good, None]}, 4)
    assert out.columns["photo"][:3] == [good, good, good] and out.columns["photo"][3] is None
    for bad, message in [("img/1.png", "row 0: send the picture's bytes as base64"),
                         (base64.b64encode(b"hello").decode(), "row 0: it does not hold base64 of a PNG, JPEG or other picture"),
                         (12, "row 0: must be a picture as base64 text")]:
        with pytest.raises(SchemaError, match=message):
            v.validate({"photo": [bad]}, 1)


def test_pictures_in_parquet_stay_bytes(tmp_path: Path) -> None:
    raw = [png(bar("h", np.random.default_rng(i))) for i in range(12)]
    pd.DataFrame({"photo": raw, "note": [b"plain text"] * 12, "y": [0, 1] * 6}).to_parquet(tmp_path / "t.parquet")
    df = load_table(tmp_path / "t.parquet")
    assert df["photo"].tolist() == raw and df["note"][0] == "plain text"  # other bytes read as text, as before
    assert infer_schema(df, "y")["photo"].role == ColumnRole.image
