"""The reliability suite's cases, shared by tests/test_reliability.py (a short form, run by ``make test``) and
bench/reliability.py (the long form, with counts for bench/RESULTS.md).

- ``bad_cli_cases``: bad files and options into every command: each must end with exit status 2 and one line
  on stderr naming what is wrong, never a traceback.
- ``DAMAGES``: ways to damage a saved bundle: each must be refused in one line (``ModelError``) before
  anything in it is unpickled.
- ``check_cli``: runs one case through the installed ``mlengineer`` command and says what went wrong, if
  anything.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
#: a file the harmful pickle creates if it ever runs
PWNED = "PWNED-by-pickle"


@dataclass(frozen=True)
class CliCase:
    """``mlengineer ARGS`` run in a folder; ``words`` must appear in its one error line."""

    name: str
    args: tuple[str, ...]
    words: tuple[str, ...] = ()


def bad_cli_cases(work: Path, model: Path) -> list[CliCase]:
    """Bad input into every command. ``work`` holds the bad files made here; ``model`` is a good bundle."""
    f = _bad_files(work)
    add_bundle_files(f, work, model)
    churn = str(FIXTURES / "churn_800.csv")
    m = str(model)
    cases = [
        # train
        CliCase("train: missing file", ("train", f["missing"], "--target", "y"), ("does not exist",)),
        CliCase("train: empty file", ("train", f["empty"], "--target", "y"), ("empty",)),
        CliCase("train: binary junk", ("train", f["junk_csv"], "--target", "y")),
        CliCase("train: unknown target", ("train", churn, "--target", "nope", "--time-budget", "2"), ("nope",)),
        CliCase("train: zero budget", ("train", churn, "--target", "churn", "--time-budget", "0"), ("--time-budget",)),
        CliCase("train: infinite budget", ("train", churn, "--target", "churn", "--time-budget", "inf"),
                ("--time-budget",)),
        CliCase("train: huge budget", ("train", churn, "--target", "churn", "--time-budget", "1e30"), ("7 days",)),
        CliCase("train: NaN budget", ("train", churn, "--target", "churn", "--time-budget", "nan"), ("--time-budget",)),
        CliCase("train: out is a file", ("train", churn, "--target", "churn", "--out", churn), ("is a file",)),
        CliCase("train: unknown metric", ("train", churn, "--target", "churn", "--metric", "nonsense",
                                          "--time-budget", "2"), ("nonsense",)),
        CliCase("train: unknown family", ("train", churn, "--target", "churn", "--families", "nope",
                                          "--time-budget", "2"), ("nope",)),
        CliCase("train: bad role", ("train", churn, "--target", "churn", "--column-role", "age=weird"), ("weird",)),
        CliCase("train: role without =", ("train", churn, "--target", "churn", "--column-role", "age"), ("age",)),
        CliCase("train: missing config", ("train", churn, "--target", "churn", "--config", f["missing"]),
                ("does not exist",)),
        CliCase("train: config not YAML", ("train", churn, "--target", "churn", "--config", f["bad_yaml"]),
                ("YAML",)),
        CliCase("train: config a list", ("train", churn, "--target", "churn", "--config", f["list_yaml"]),
                ("mapping",)),
        CliCase("train: unknown config key", ("train", churn, "--target", "churn", "--config", f["unknown_yaml"]),
                ("bogus",)),
        CliCase("train: bad tracking store", ("train", churn, "--target", "churn", "--time-budget", "2",
                                              "--tracking-uri", f"sqlite:///{f['not_db']}"), ("not a SQLite",)),
        CliCase("train: group column missing", ("train", churn, "--target", "churn", "--group-column", "nope",
                                                "--time-budget", "2"), ("nope",)),
        CliCase("train: time column missing", ("train", churn, "--target", "churn", "--time-column", "nope",
                                               "--time-budget", "2"), ("nope",)),
        CliCase("train: constant target", ("train", f["constant_target"], "--target", "y", "--time-budget", "2"),
                ("y",)),
        CliCase("train: one row", ("train", f["one_row"], "--target", "y", "--time-budget", "2")),
        CliCase("train: unreadable Parquet", ("train", f["bad_parquet"], "--target", "y"), ("bad_parquet.parquet",)),
        CliCase("train: bad JSON", ("train", f["bad_json"], "--target", "y"), ("bad_json.json",)),
        CliCase("train: SQL without db", ("train", "--sql", "select 1", "--target", "y")),
        CliCase("train: db not reachable", ("train", "--sql", "select 1", "--db", "postgresql://u@127.0.0.1:1/x",
                                            "--target", "y")),
        # predict
        CliCase("predict: missing model", ("predict", f["missing"], churn), ("does not exist",)),
        CliCase("predict: model is a file", ("predict", churn, churn), ("is a file",)),
        CliCase("predict: folder not a bundle", ("predict", str(work), churn), ("not a model bundle",)),
        CliCase("predict: missing data", ("predict", m, f["missing"]), ("does not exist",)),
        CliCase("predict: wrong columns", ("predict", m, f["other_columns"]), ("missing",)),
        CliCase("predict: bad out suffix", ("predict", m, churn, "--out", str(work / "p.xyz")), (".xyz",)),
        CliCase("predict: out folder missing", ("predict", m, churn, "--out", str(work / "no" / "p.csv")),
                ("does not exist",)),
        CliCase("predict: bad interval", ("predict", m, churn, "--interval", "1.5"), ("1.5",)),
        CliCase("predict: unknown registry ref", ("predict", "models:/nope@champion", churn,),
                ("nope",)),
        CliCase("predict: bad ref", ("predict", "models:/a@@b", churn), ("registry reference",)),
        CliCase("predict: text in a number column", ("predict", m, f["text_numbers"]), ("age",)),
        CliCase("predict: spark without master", ("predict", m, churn, "--engine", "nope"), ("nope",)),
        # evaluate
        CliCase("evaluate: missing data", ("evaluate", m, f["missing"]), ("does not exist",)),
        CliCase("evaluate: no target column", ("evaluate", m, f["no_target"]), ("churn",)),
        CliCase("evaluate: missing model", ("evaluate", f["missing"], churn), ("does not exist",)),
        # report
        CliCase("report: missing model", ("report", f["missing"]), ("does not exist",)),
        CliCase("report: bad out", ("report", m, "--out", str(work / "no" / "r.html")), ("does not exist",)),
        CliCase("report: data without target", ("report", m, "--data", f["no_target"]), ("churn",)),
        # serve
        CliCase("serve: missing model", ("serve", f["missing"]), ("does not exist",)),
        CliCase("serve: negative body limit", ("serve", m, "--max-body-mb", "-1"), ("--max-body-mb",)),
        CliCase("serve: zero rows", ("serve", m, "--max-batch-rows", "0"), ("--max-batch-rows",)),
        CliCase("serve: zero workers", ("serve", m, "--workers", "0"), ("--workers",)),
        CliCase("serve: bad port", ("serve", m, "--port", "70000"), ("--port",)),
        CliCase("serve: bad policy", ("serve", m, "--unseen-categories", "maybe"), ("unseen",)),
        CliCase("serve: damaged bundle", ("serve", f["damaged_bundle"]), ("manifest",)),
        CliCase("serve: unknown alias", ("serve", "models:/nope@champion"), ("nope",)),
        # runs
        CliCase("runs: mysql without driver", ("runs", "--tracking-uri", "mysql://u@127.0.0.1/db"), ("driver",)),
        CliCase("runs: not a database", ("runs", "--tracking-uri", f"sqlite:///{f['not_db']}"), ("not a SQLite",)),
        CliCase("runs: a folder", ("runs", "--tracking-uri", f"sqlite:///{work}"), ("folder",)),
        CliCase("runs: damaged store", ("runs", "--tracking-uri", f"sqlite:///{f['damaged_store']}"),
                ("damaged",)),
        # register / promote / verify
        CliCase("register: missing model", ("register", f["missing"], "--name", "x"), ("does not exist",)),
        CliCase("register: bad name", ("register", m, "--name", "a/b"), ("--name",)),
        CliCase("register: damaged bundle", ("register", f["damaged_bundle"], "--name", "x"), ("manifest",)),
        CliCase("promote: no such model", ("promote", "nope", "1", "--tracking-uri", f"sqlite:///{f['empty_store']}"),
                ("nope",)),
        CliCase("promote: bad alias", ("promote", "x", "1", "--alias", "v1"), ("--alias",)),
        CliCase("verify: damaged bundle", ("verify", f["damaged_bundle"]), ("manifest",)),
        CliCase("verify: no manifest", ("verify", f["no_manifest"]), ("--trust",)),
        # profile / audit
        CliCase("profile: missing file", ("profile", f["missing"]), ("does not exist",)),
        CliCase("profile: unknown target", ("profile", churn, "--target", "nope"), ("nope",)),
        CliCase("audit: empty file", ("audit", f["empty"]), ("empty",)),
        CliCase("audit: header only", ("audit", f["header_only"]), ("no rows",)),
        # compare / explain / calibrate
        CliCase("compare: not a model or run", ("compare", "nothing-here", m, "--data", churn), ("run id",)),
        CliCase("compare: no data", ("compare", m, "baseline")),
        CliCase("compare: unknown metric", ("compare", m, "baseline", "--data", churn, "--metric", "zzz"), ("zzz",)),
        CliCase("explain: unknown class", ("explain", m, churn, "--class", "maybe"), ("maybe",)),
        CliCase("explain: missing rows", ("explain", m, f["missing"]), ("does not exist",)),
        CliCase("calibrate: bad method", ("calibrate", m, "--method", "magic", "--out", str(work / "cal")),
                ("magic",)),
        CliCase("calibrate: precision out of range", ("calibrate", m, "--target-precision", "2", "--out",
                                                      str(work / "cal")), ("2",)),
    ]
    return cases


def _bad_files(work: Path) -> dict[str, str]:
    """The bad inputs the CLI cases read, written once into ``work``."""
    import pandas as pd

    work.mkdir(parents=True, exist_ok=True)
    churn = pd.read_csv(FIXTURES / "churn_800.csv")
    out = {"missing": str(work / "nope.csv")}

    def write(name: str, data: bytes | str) -> None:
        p = work / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        out[name.split(".")[0]] = str(p)

    write("empty.csv", b"")
    write("junk_csv.csv", os.urandom(2048))
    write("bad_yaml.yaml", "a: [1, 2\n")
    write("list_yaml.yaml", "- 1\n- 2\n")
    write("unknown_yaml.yaml", "bogus: 3\n")
    write("not_db.db", "this is not a database\n")
    write("constant_target.csv", "a,y\n" + "".join(f"{i},1\n" for i in range(50)))
    write("one_row.csv", "a,y\n1,0\n")
    write("bad_parquet.parquet", b"PAR1" + os.urandom(100))
    out["bad_parquet"] = str(work / "bad_parquet.parquet")
    write("bad_json.json", '{"a": [1, 2')
    out["bad_json"] = str(work / "bad_json.json")
    write("header_only.csv", "a,b,c\n")
    churn.drop(columns=["churn"]).rename(columns=lambda c: f"x_{c}").head(5).to_csv(work / "other_columns.csv",
                                                                                      index=False)
    out["other_columns"] = str(work / "other_columns.csv")
    bad = churn.drop(columns=["churn"]).head(5).astype({"age": object})
    bad.loc[0, "age"] = "seventy"
    bad.to_csv(work / "text_numbers.csv", index=False)
    out["text_numbers"] = str(work / "text_numbers.csv")
    churn.drop(columns=["churn"]).head(20).to_csv(work / "no_target.csv", index=False)
    out["no_target"] = str(work / "no_target.csv")
    out["damaged_store"] = str(_damaged_store(work / "damaged.db"))
    out["empty_store"] = str(work / "empty.db")
    return out


def _damaged_store(path: Path) -> Path:
    """A SQLite file left by a migration that stopped half-way: MLflow's tables without its alembic_version."""
    import sqlite3

    if not path.exists():
        with sqlite3.connect(path) as db:
            db.execute("create table experiments (experiment_id integer primary key, name text)")
            db.execute("create table alembic_version (version_num varchar(32) not null)")
            db.execute("insert into alembic_version values ('0000000000')")
    return path


def add_bundle_files(files: dict[str, str], work: Path, model: Path) -> None:
    """A damaged copy and a copy without manifest of ``model``, for the cases that need a bundle."""
    damaged = work / "damaged-bundle"
    if not damaged.exists():
        shutil.copytree(model, damaged)
        (damaged / "artifacts" / "bundle" / "metadata.json").write_text("[]")
    files["damaged_bundle"] = str(damaged)
    bare = work / "no-manifest-bundle"
    if not bare.exists():
        shutil.copytree(model, bare)
        (bare / "manifest.json").unlink()
    files["no_manifest"] = str(bare)


def check_cli(case: CliCase, *, cwd: Path, timeout: float = 120) -> str | None:
    """Run ``case``; None when it ended as it should (exit 2, one line, its words), else what went wrong."""
    exe = Path(sys.executable).parent / "mlengineer"
    env = {**os.environ, "COLUMNS": "200", "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlruns.db'}"}
    try:
        r = subprocess.run([str(exe), *case.args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                           env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"{case.name}: still running after {timeout:.0f} s"
    err = [line for line in r.stderr.splitlines() if line.strip()]
    if "Traceback" in r.stderr or "Traceback" in r.stdout:
        return f"{case.name}: a traceback:\n{r.stderr[-2000:]}"
    if r.returncode != 2:
        return f"{case.name}: exit {r.returncode}, not 2 (stderr: {r.stderr[-500:]!r})"
    usage = any("Usage:" in line for line in err)  # typer's own usage errors print a box: also exit 2
    if not usage and len(err) != 1:
        return f"{case.name}: {len(err)} lines on stderr, not one: {r.stderr[-800:]!r}"
    missing = [w for w in case.words if w.lower() not in r.stderr.lower()]
    if missing:
        return f"{case.name}: the message does not name {missing}: {r.stderr.strip()[-400:]!r}"
    return None


# -- damaged bundles -----------------------------------------------------------------------------------------

def _bundle(p: Path) -> Path:
    return p / "artifacts" / "bundle"


def _evil_pickle(p: Path, _: Path) -> None:
    class Harm:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {p.parent / PWNED}",))

    (_bundle(p) / "estimator.joblib").write_bytes(pickle.dumps(Harm()))


def _meta(edit: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    def damage(p: Path, _: Path) -> None:
        path = _bundle(p) / "metadata.json"
        meta = json.loads(path.read_text())
        path.write_text(json.dumps(edit(meta)))
    return damage


def _truncate(name: str) -> Callable[[Path, Path], None]:
    def damage(p: Path, _: Path) -> None:
        f = p / name
        f.write_bytes(f.read_bytes()[: max(1, f.stat().st_size // 3)])
    return damage


def _manifest(edit: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    def damage(p: Path, _: Path) -> None:
        path = p / "manifest.json"
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return damage


def _rehash_after(damage: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    """A damage followed by a manifest rewritten to match: only the content checks can catch it."""
    def both(p: Path, other: Path) -> None:
        from mlengineer.bundle.manifest import write_manifest

        damage(p, other)
        write_manifest(p)
    return both


def _one_hash_changed(m: dict) -> dict:
    first = sorted(m["files"])[0]
    m["files"][first] = "0" * 64
    return m


def _swap_estimator(p: Path, other: Path) -> None:
    shutil.copy(_bundle(other) / "estimator.joblib", _bundle(p) / "estimator.joblib")


def _pop(key: str) -> Callable[[dict], dict]:
    def edit(d: dict) -> dict:
        d.pop(key, None)
        return d
    return edit


#: (name, damage(bundle, another bundle of other columns)): each must be refused in one line
DAMAGES: list[tuple[str, Callable[[Path, Path], None]]] = [
    ("estimator replaced by random bytes", lambda p, _: (_bundle(p) / "estimator.joblib").write_bytes(os.urandom(4096))),
    ("estimator replaced by a pickle that runs a command", _evil_pickle),
    ("estimator truncated", _truncate("artifacts/bundle/estimator.joblib")),
    ("estimator copied from another bundle", _swap_estimator),
    ("task removed from metadata.json", _meta(_pop("task"))),
    ("metadata.json a JSON list", lambda p, _: (_bundle(p) / "metadata.json").write_text("[1, 2]")),
    ("metadata.json not JSON", lambda p, _: (_bundle(p) / "metadata.json").write_text("{oops")),
    ("validation.npz truncated", _truncate("artifacts/bundle/validation.npz")),
    ("schema.json removed", lambda p, _: (_bundle(p) / "schema.json").unlink()),
    ("cleaning plan edited", lambda p, _: (_bundle(p) / "cleaning_plan.json").write_text(
        (_bundle(p) / "cleaning_plan.json").read_text().replace('"age"', '"agee"'))),
    ("MLmodel removed", lambda p, _: (p / "MLmodel").unlink()),
    ("a file added", lambda p, _: (_bundle(p) / "extra.py").write_text("import os\n")),
    ("a link added", lambda p, _: (_bundle(p) / "link").symlink_to("/etc/passwd")),
    ("manifest removed", lambda p, _: (p / "manifest.json").unlink()),
    ("manifest not JSON", lambda p, _: (p / "manifest.json").write_text("not json")),
    ("a manifest hash edited", _manifest(_one_hash_changed)),
    ("manifest digest edited", _manifest(lambda m: {**m, "digest": "0" * 64})),
    ("manifest rewritten after the estimator was swapped", _rehash_after(_swap_estimator)),
    ("manifest rewritten after task removed", _rehash_after(_meta(_pop("task")))),
    ("manifest rewritten after validation.npz truncated", _rehash_after(_truncate("artifacts/bundle/validation.npz"))),
    ("manifest rewritten after metadata became a list",
     _rehash_after(lambda p, _: (_bundle(p) / "metadata.json").write_text("[]"))),
]
