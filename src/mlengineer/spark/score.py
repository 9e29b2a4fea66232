"""Batch scoring on Spark: the bundle is shipped to the workers and applied with a pandas UDF.

Each worker loads the bundle once and predicts through the same ``Model.predict_frame`` as everywhere
else, so Spark scoring cannot disagree with local prediction.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..bundle.model import Model, load
from ..bundle.rows import read_marks
from ..data.files import atomic_path, check_place, is_local, refuse_bundle, refuse_input
from ..data.images import image_root
from ..errors import DataError, SchemaError
from ..serving.batch import data_folder, extra_columns_note, sets_as_text
from .batches import map_batches
from .csv_files import csv_reader
from .notes import input_notes
from .read import check_source, qcol, read_table
from .session import spark_errors, spark_session

__all__ = ["check_out", "score_dataframe", "score_file"]

_ROW_ID = "__mlengineer_row__"
_FILE = "__mlengineer_file__"
_CACHE: dict[str, Any] = {}
_SHIPPED: dict[tuple[int, str], str] = {}


def _print(line: str) -> None:
    print(line, flush=True)


def _print_aside(line: str) -> None:
    """A note on the input, on stderr: local ``predict`` says them there, as the server's warnings go aside."""
    print(line, file=sys.stderr, flush=True)


def _output_fields(model: Any, interval: float | None) -> list[tuple[str, str]]:
    pred_type = "string" if model.task.is_classification else "double"
    fields = [(_FILE, "string"), (_ROW_ID, "long"), ("prediction", pred_type)]
    fields += [(f"proba_{c}", "double") for c in model.classes]
    if interval is not None:  # the same columns as Model.predict_frame(..., interval=)
        fields += [("prediction_set", "string")] if model.task.is_classification else [("lower", "double"),
                                                                                          ("upper", "double")]
    return fields


def _ship(spark: Any, model_dir: str) -> str:
    """Send the bundle to every worker as a zip archive (Spark unpacks it there; a folder can only be sent
    to local mode's workers) and return the name ``SparkFiles.get`` finds it by."""
    import hashlib
    import zipfile

    files = sorted(p for p in Path(model_dir).rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for p in files:
        digest.update(str(p.relative_to(model_dir)).encode())
        digest.update(p.read_bytes())
    name = f"mlengineer-bundle-{digest.hexdigest()[:16]}.zip"
    key = (id(spark.sparkContext), name)
    if key not in _SHIPPED:
        archive = Path(tempfile.mkdtemp(prefix="mlengineer-ship-")) / name
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
            for p in files:
                z.write(p, p.relative_to(model_dir))
        spark.sparkContext.addArchive(str(archive))  # served from this file while the session lives
        _SHIPPED[key] = name
    return name


def score_dataframe(sdf: Any, model_dir: str | Path, *, interval: float | None = None,
                    where: str = "the Spark table", pictures: str | Path | None = None,
                    say: Callable[[str], None] | None = None, model: Model | None = None) -> Any:
    """Spark DataFrame of predictions for ``sdf`` (row order kept in hidden file and row-id columns); ``interval``
    adds the conformal range (regression) or label set (classification) of that coverage; relative picture
    paths are read from the folder ``pictures`` (the working folder if None), as local prediction reads them
    from the table's folder. ``say`` hears the line that names columns the model does not know (left out), as
    local prediction says it. ``model``: the bundle at ``model_dir``, where the caller has loaded it already."""
    from pyspark import SparkFiles
    from pyspark.sql import functions as F

    spark = sdf.sparkSession
    model_dir = str(Path(model_dir).resolve())
    model = load(model_dir) if model is None else model  # fails early, on the driver, for a path that is no bundle
    model.schema.check_frame(pd.DataFrame(columns=sdf.columns), where=where)
    note = extra_columns_note(model, list(sdf.columns))
    if note is not None and say is not None:
        say(note)
    if interval is not None:  # fails early, on the driver, for a coverage or a model that cannot give them
        model.check_interval(interval)
    bundle_name = _ship(spark, model_dir)
    root = None if pictures is None else str(Path(pictures).resolve())

    def predict_partitions(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        local = SparkFiles.get(bundle_name)  # the archive, unpacked by Spark on this worker
        m = _CACHE.get(local)
        if m is None:
            m = _CACHE[local] = load(local)
        for batch in batches:
            ids, files = batch.pop(_ROW_ID).to_numpy(), batch.pop(_FILE).to_numpy()
            with image_root(root):
                out = sets_as_text(m.predict_frame(batch, interval=interval))
            if m.task.is_classification:
                out["prediction"] = out["prediction"].astype(str)
            out.insert(0, _ROW_ID, ids)
            out.insert(0, _FILE, files)
            yield out

    # only the columns the model reads travel to the Python workers
    # the input's order: Spark reads the parts of a folder largest first, so the file each row came from
    # (in name order, as the local reader takes them) comes before its position
    with_ids = sdf.select(*[qcol(c) for c in model.feature_names], F.input_file_name().alias(_FILE),
                          F.monotonically_increasing_id().alias(_ROW_ID))
    return map_batches(with_ids, predict_partitions, _output_fields(model, interval))


def score_file(model_dir: str | Path, data: str | None, out: str | Path, *, master: str | None = None,
               interval: float | None = None, sql: str | None = None, conf: dict[str, str] | None = None,
               say: Callable[[str], None] | None = _print,
               notes: Callable[[str], None] | None = _print_aside) -> int:
    """Score ``data`` (a file, folder, Delta table or URI; or ``sql`` over Spark's catalog) with the bundle on
    Spark and write ``out`` in the input's row order: one CSV or Parquet file, or (a path without a suffix) a
    folder of Parquet parts, which no single task has to write alone. Returns the number of rows. ``say``
    (printing by default; None for silence) hears what local prediction says of the input: the columns the
    model does not know; ``notes`` (stderr by default; None to skip the count) hears, once every row is written,
    what they hold that the model never learnt from, as local ``predict`` says it (``notes.input_notes``)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq", ""):
        raise DataError(f"Cannot write {str(out)!r}: Spark scoring writes .csv, .parquet, or a folder of Parquet "
                        "parts (a path without a suffix).")
    model = load(model_dir)  # fails early, for a path that is not a bundle
    # the training file's thousands dots and decimal commas, and the columns its roles keep as text, as predict reads
    marks = read_marks(model.metadata)
    found = check_source(data, marks)
    check_out(out, data)
    refuse_bundle(out, model_dir)
    with spark_session(master, conf) as spark:
        table = read_table(spark, data, sql=sql, found=found, marks=marks)
        pictures = data_folder(data.removeprefix("file://")) if data and not sql and is_local(data) else None
        scored = score_dataframe(table.frame, model_dir, interval=interval, where=table.where,
                                 pictures=pictures, say=say, model=model)
        scored = scored.orderBy(qcol(_FILE), qcol(_ROW_ID)).drop(_FILE, _ROW_ID)
        try:
            with spark_errors():
                n = _write_folder(spark, scored, out) if not suffix else _write_one_file(spark, scored, out)
                if notes is not None:
                    for line in input_notes(table.frame, model):
                        notes(line)
                return n
        except SchemaError as e:  # a value the model cannot read, found on a worker: say in which table
            raise SchemaError(f"{table.where}: {e}") from None
        except OSError as e:  # the disk filled, or the folder turned read-only, while Spark wrote
            raise DataError(f"Cannot write {str(out)!r}: {e.strerror or e}.") from None


def _spark_output(path: Path, folder: Path) -> bool:
    """Whether a file in ``folder`` is one Spark writes there (a part, its checksum, a marker)."""
    name = path.relative_to(folder).parts[0]
    return name.startswith(("part-", "_", "."))


def check_out(out: Path, data: str | None) -> None:
    """Refuse, before Spark starts, what ``predict`` refuses in memory (an output that would replace or mix
    with the input, a place that cannot be written, in the same words), and a folder of other files or a file
    where a folder of parts goes."""
    folder = not out.suffix
    refuse_input(out, data)
    if out.exists() and folder and not out.is_dir():
        raise DataError(f"Cannot write {str(out)!r}: it is a file, and a path without a suffix gets a folder of "
                        "Parquet parts; name another folder, or a .csv or .parquet file.")
    if out.is_dir() and folder:
        others = [p for p in out.rglob("*") if p.is_file() and not _spark_output(p, out)]
        if others:
            raise DataError(f"--out {str(out)!r} is a folder holding other files ({others[0].name!r}): predictions "
                            "replace the whole folder, so name a new one.")
    check_place(out, folder=folder, instead=", or a path without a suffix for a folder of Parquet parts")


def _write_folder(spark: Any, scored: Any, out: Path) -> int:
    """``scored`` as a folder of Parquet parts (range-partitioned by the sort, so the parts are in order),
    written beside ``out`` and renamed into place; an older folder there is replaced only then."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.spark-", dir=out.parent))
    old = None
    try:
        scored.write.mode("overwrite").parquet(str(staging / "parts"))
        n = int(spark.read.parquet(str(staging / "parts")).count())
        if out.exists():
            old = staging / "previous"
            out.rename(old)
        try:
            (staging / "parts").rename(out)
        except OSError:
            if old is not None:
                old.rename(out)  # the earlier output stays where it was
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return n


def _write_one_file(spark: Any, scored: Any, out: Path) -> int:
    """``scored`` written by Spark as one part in a scratch folder beside ``out``, then renamed into place."""
    suffix = out.suffix.lower()
    tmp_dir = Path(tempfile.mkdtemp(prefix=".spark-out-", dir=out.parent if out.parent.exists() else None))
    try:
        target = tmp_dir / "parts"
        writer = scored.coalesce(1).write.mode("overwrite")
        if suffix == ".csv":  # quotes within a cell written twice (""), as pandas writes and reads them
            writer.option("header", True).option("quote", '"').option("escape", '"').csv(str(target))
            part = next(target.glob("part-*.csv"))
        else:
            writer.parquet(str(target))
            part = next(target.glob("part-*.parquet"))
        n = (spark.read.parquet(str(part)) if suffix != ".csv" else csv_reader(spark).csv(str(part), header=True)
             ).count()
        with atomic_path(out) as tmp:
            shutil.copyfile(part, tmp)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return int(n)
