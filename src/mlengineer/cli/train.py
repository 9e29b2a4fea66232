"""Commands of the modelling loop: train, predict, evaluate, runs."""

from __future__ import annotations

import shlex
import time
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ._common import (
    MODEL_HELP,
    DbOption,
    SqlOption,
    TrackingOption,
    console,
    err_console,
    fmt,
    handle_errors,
    named_source,
    parse_roles,
    read_data,
    say,
    table,
)
from .data import _source_line  # how a table was read, in the words audit and profile use


class TrainingProgress:
    """A rich progress bar over the time budget, with one line per candidate as it finishes."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.start = time.perf_counter()
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[note]}"),
                            TimeElapsedColumn(), console=console, transient=True)
        self.task_id = self.bar.add_task("training", total=budget, note="")
        self.headed = False

    def __enter__(self) -> TrainingProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def __call__(self, event: str, **info: Any) -> None:
        elapsed = time.perf_counter() - self.start
        note = ""
        if event == "stage":
            note = info["name"]
        elif event == "candidate":
            c = info["candidate"]
            if not self.headed:  # the lines below are a table being filled in: say what its columns are
                say("  ", (f"{'candidate':<22} {'validation score':<17} fit time", "dim"), out=self.bar.console)
                self.headed = True
            status = fmt(c.score) if c.status == "ok" else c.status
            say("  ", (f"{c.name:<22}", "dim"), f" {status:<17} ", (f"{c.fit_seconds:5.1f} s", "dim"), out=self.bar.console)
            note = c.name
        self.bar.update(self.task_id, completed=min(elapsed, self.budget), note=note)


def print_training_summary(model: Any, *, data: str | None = None, reasons: dict[str, str] | None = None) -> None:
    """What training found and kept, for the user: the audit's findings, the columns left out (each with its
    whole reason), what the encoding left out (a text column's sentence embeddings), the leaderboard and the
    model kept. ``data`` names the table as the user gave it (the audit hint names it); ``reasons`` gives the
    reason to show for columns a caller added itself (the demo's copy groups)."""
    meta = model.metadata
    findings = meta.get("findings", [])
    shown = [f for f in findings if f["severity"] != "info"][:10]
    if shown:
        style = {"error": "bold red", "warning": "yellow"}
        console.print(table("Data audit", ["severity", "column", "finding", "done"],
                            [[Text(f["severity"], style=style.get(f["severity"], "")), f.get("column") or "", f["message"],
                              _done_words(f, meta)] for f in shown]))
    hidden = len(findings) - len(shown)
    cleaning = _cleaning_words(model, reasons or {})
    if hidden:
        target = shlex.quote(str(meta.get("target")))
        audit = (f'"mlengineer audit {shlex.quote(data)} --target {target}"' if data
                 else f'"mlengineer audit --target {target}" with the same --sql (and --db)')
        cleaning += f" {hidden} more finding{'s' if hidden > 1 else ''}: {audit} lists {'them all' if hidden > 1 else 'it'}."
    if cleaning:
        say((cleaning.strip(), "dim"))
    if any(f.get("check") == "few_rows" for f in findings):
        say(("On so few rows the validation score is likely optimistic, not only rough: the same rows chose the model, "
             "its early stopping and the ensemble's weights. Expect new rows to score worse.", "yellow"))
    for note in meta.get("feature_notes") or []:  # what the encoding left out, e.g. sentence embeddings
        say((note, "yellow"))
    from ..report.summary import candidate_label

    board = meta["leaderboard"]  # each candidate named with the target transform it learned on, where it had one
    rows = [[candidate_label(r), r["score"], r["fit_s"], r["predict_ms_per_row"], r.get("predict_1row_ms"), r["status"]]
            for r in board[:25]]
    title = f"Leaderboard (validation {meta['metric']}, {meta['split']})"
    if len(board) > 25:
        title += f": the best 25 of {len(board) - 1} candidates"
    console.print(table(title, ["model", meta["metric"], "fit s", "ms/row (batch)", "ms (1 row)", "status"], rows))
    kept = _kept_words(meta) + _refit_words(meta)
    pipe, whole = (meta.get("timings") or {}).get("pipeline_1row_ms"), board[0].get("predict_1row_ms")
    if board[0].get("model") == "ensemble" and pipe and whole and pipe >= 0.25 * whole:
        kept += (f" Its ms (1 row) counts cleaning and encoding the row ({fmt(pipe)} ms), which the candidates' "
                 "times leave out.")
    if kept:
        say(kept.strip())


def _done_words(finding: dict[str, Any], meta: dict[str, Any]) -> str:
    """What training did about an audit finding: its column dropped, or kept as the user asked (--keep)."""
    if finding.get("action") == "drop_rows":
        return "rows dropped"
    if finding.get("action") != "drop_column" or finding["severity"] != "error":
        return ""
    kept = (meta.get("config") or {}).get("keep") or []
    return "kept (--keep)" if finding.get("column") in kept else "column dropped"


def _cleaning_words(model: Any, reasons: dict[str, str], most: int = 8) -> str:
    """The columns kept and left out, each left out with its whole reason (the plan's own summary cuts them)."""
    plan = getattr(model, "plan", None)
    kept = plan.feature_columns if plan is not None else []
    if plan is None or not kept:
        summary = next((s["summary"] for s in model.metadata.get("cleaning", []) if s.get("step") == "select_columns"), "")
        return f"Cleaning: {summary}." if summary else ""
    dropped = {c: reasons.get(c, why).rstrip(".") for c, why in plan.dropped_columns.items()}
    words = f"Cleaning: kept {len(kept)} feature column{'s' if len(kept) != 1 else ''}"
    if dropped:
        listed = "; ".join(f"{c}: {why}" for c, why in list(dropped.items())[:most])
        more = f"; and {len(dropped) - most} more" if len(dropped) > most else ""
        words += f"; dropped {len(dropped)} ({listed}{more})"
    return words + "."


def _refit_words(meta: dict[str, Any]) -> str:
    """The kept members that were not refit on every row (the time budget ran out first), or nothing."""
    board = meta.get("leaderboard") or []
    refit = ((board[0].get("params") or {}).get("refit_on_all_rows") if board else None)
    if not isinstance(refit, list):
        return ""
    left = [m["model"] for m in meta.get("ensemble") or [] if m["model"] not in refit]
    if not left:
        return ""
    if "fold" in str(meta.get("split", "")):
        return (f" Not refit on every row: {', '.join(left)} (the average of its fold models, each of which left "
                "one fold out).")
    return (f" Not refit on every row (the time budget ran out first): {', '.join(left)}, which never saw the "
            "validation rows.")


def _kept_words(meta: dict[str, Any]) -> str:
    """The model kept, in words: one model, or the ensemble's members and weights; and, where one candidate
    alone scored better than the ensemble on the same rows, why the ensemble was kept all the same."""
    members, board = meta.get("ensemble") or [], meta.get("leaderboard") or []
    if not members or not board or board[0].get("model") != "ensemble":
        return ""
    metric = meta["metric"]
    words = (f"The model kept: {members[0]['model']}." if len(members) == 1 else
             "The model kept: the ensemble, a weighted average of " + ", ".join(
                 f"{m['model']} ({m['weight']:.0%})" for m in members) + ".")
    if left := (board[0].get("params") or {}).get("left_for_time"):
        words += " Left out for their time, their gain out of fold within noise: " + ", ".join(
            f"{d['model']} ({d['ms']:.2f} ms a row)" for d in left) + "."
    score, sign = board[0].get("score"), 1 if meta.get("greater_is_better", True) else -1
    singles = [r for r in board[1:] if r.get("status") == "ok" and isinstance(r.get("score"), float | int)]
    best = max(singles, key=lambda r: sign * r["score"], default=None)
    if best is None or not isinstance(score, float | int) or sign * best["score"] <= sign * score:
        return words
    words += f" {best['model']} alone scored {fmt(best['score'])} {metric} on the same rows"
    chosen_by = (board[0].get("params") or {}).get("weights_chosen_by")
    if chosen_by and chosen_by != metric:
        return words + (f": the ensemble's weights are chosen by {chosen_by}, which keeps its probabilities "
                        f"honest, at times at the cost of a little {metric}.")
    return words + "."


#: the built-in metrics (``metrics.METRICS``) and the model families (``training.models``), named in the help
#: without importing them (scikit-learn, the learners) for ``--help``; tests/test_training_mends.py checks them
METRIC_NAMES = "roc_auc, log_loss, accuracy, balanced_accuracy, f1, f1_macro, brier (classes); rmse, mae, r2, mape"
FAMILY_NAMES = "linear, lightgbm, xgboost, catboost, random_forest, extra_trees, knn, svm, mlp, tabm, text, cnn"


def train_cmd(
    data: str = typer.Argument(None, help="Training table: CSV, TSV, Parquet, JSON, JSONL, Excel, or a folder."),
    target: str = typer.Option(None, "--target", "-t", help="The column to predict (or 'target:' in --config)."),
    time_budget: float = typer.Option(None, "--time-budget", help="Seconds the whole training may take (default: 60)."),
    metric: str = typer.Option(None, "--metric", help=f"Metric to optimise: {METRIC_NAMES}, or a scikit-learn scorer "
                               "name (default: roc_auc, log_loss or rmse)."),
    task: str = typer.Option("auto", "--task", help="binary, multiclass, regression, or auto."),
    out: str = typer.Option("model", "--out", "-o", help="Folder to write the model bundle to."),
    name: str = typer.Option(None, "--name", help="The model's name, as the server, the run, the report and "
                             "'compare' show it (default: the --out folder's name)."),
    column_role: list[str] = typer.Option([], "--column-role", help="COLUMN=ROLE, to override an inferred role."),
    drop: list[str] = typer.Option([], "--drop", help="A column never to use as a feature."),
    keep: list[str] = typer.Option([], "--keep", help="A column to keep even if the audit would drop it."),
    group_column: str = typer.Option(None, "--group-column", help="Rows of one group stay on one side of a split."),
    weight_column: str = typer.Option(None, "--weight-column", help="A column of row weights (numbers of at least "
                                      "0; 2 counts a row twice, 0 not at all): not a feature, not needed to predict."),
    time_column: str = typer.Option(None, "--time-column", help="Validate on the latest rows by this column."),
    seed: int = typer.Option(None, "--seed", help="Random seed (default: 0)."),
    config: str = typer.Option(None, "--config", help="A YAML file of training options."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (default ./mlruns.db)."),
    no_track: bool = typer.Option(False, "--no-track", help="Do not record the run in MLflow."),
    max_predict_ms: float = typer.Option(None, "--max-predict-ms", help="Keep only models this fast per row (cleaning included); a slower LightGBM or CatBoost model keeps its first rounds, as many as fit."),
    max_models: int = typer.Option(None, "--max-models", help="At most this many models in the ensemble (1: the "
                                   "best single model, the fastest bundle) [default: as validation favours]."),
    families: str = typer.Option(None, "--families", help="Model families to try, comma-separated "
                                 f"({FAMILY_NAMES}) [default: all that suit the table]."),
    target_transform: str = typer.Option(
        None, "--target-transform", help="Regression: auto (try a log or power transform of a skewed target, "
        "kept where validation scores it better), none, log or power [default: auto]."),
    calibration_fraction: float = typer.Option(
        None, "--calibration-fraction", help="Share of rows kept apart from every fit for the calibrator and "
        "the conformal ranges/sets (0.05-0.5; default 0: the validation rows' out-of-fold predictions)."),
    engine: str = typer.Option("auto", "--engine", help="local (in memory), spark, or auto: Spark when the table "
                               "takes more than a quarter of free memory (or 'engine:' in --config)."),
    spark_master: str = typer.Option(None, "--spark-master", help="Spark master URL, e.g. spark://host:7077 "
                                     "[default: local[*]]."),
    spark_conf: list[str] = typer.Option([], "--spark-conf", help="KEY=VALUE, a Spark setting "
                                         "(spark.executor.memory=8g); repeat for more."),
    sql: str = SqlOption,
    db: str = DbOption,
) -> None:
    """Train a model on a table and save it as a bundle."""
    from ..training.config import TrainConfig, load_config_file, option_words

    options: dict[str, Any] = load_config_file(config) if config else {}
    in_file = list(options)
    flags = {k: v for k, v in {
        "target": target, "time_budget": time_budget, "metric": metric, "task": task if task != "auto" else None,
        "seed": seed, "group_column": group_column, "time_column": time_column, "weight_column": weight_column,
        "tracking_uri": tracking_uri, "max_predict_ms_per_row": max_predict_ms, "max_models": max_models,
        "calibration_fraction": calibration_fraction, "target_transform": target_transform,
        "families": [f.strip() for f in families.split(",") if f.strip()] if families else None,
    }.items() if v is not None}
    options.update(flags)
    file_items: dict[str, list[Any]] = {}  # the names of a file's list the flags added to: said as its key
    for field, given in (("column_roles", parse_roles(column_role)), ("drop", drop), ("keep", keep)):
        mine = options.get(field)
        if given and (joined := _joined(mine, given)) is not mine:  # else the file's, refused as its key
            flags[field], options[field] = given, joined
            file_items[field] = [n for n in ([mine] if isinstance(mine, str) else mine or ()) if n not in given]
    from ..spark.engine import choose_engine

    chosen, why = choose_engine(engine if engine != "auto" else options.get("engine", "auto"), data,
                                command="train", db=db)
    options["engine"] = chosen
    cfg = TrainConfig.build(words=option_words(flags, config, in_file, file_items), **options)
    fixed: dict[str, float] = {}  # the seconds no budget covers, said beside the training's
    if chosen == "spark":
        model = _train_on_spark(data, cfg, sql=sql, out=out, name=name, track=not no_track, why=why,
                                master=spark_master, conf=spark_conf)
    else:
        model, fixed = _train_here(data, cfg, sql=sql, db=db, out=out, name=name, track=not no_track)
    print_training_summary(model, data=None if sql else data)  # a query's hint names --sql
    meta = model.metadata
    from ..training.clock import budget_words

    took = budget_words(meta["train_seconds"], cfg.time_budget, fixed)
    say("Model ", (model.name, "bold"), ": task ", (model.task.kind, "bold"), f"; validation {meta['metric']}: ",
        (fmt(meta["validation_score"]), "bold"), f"; {took}. Saved to ",
        (str(model.path), "bold"), (f" (run {meta['run_id'][:8]})" if meta.get("run_id") else "") + ".")


def _joined(mine: Any, given: Any) -> Any:
    """A list or mapping the command line gives added to the config file's (``mine``, or None); ``mine`` itself
    where it is of another kind, which the config's check then refuses, naming the file's key."""
    if mine is None:
        return given
    if isinstance(given, dict):
        return {**mine, **given} if isinstance(mine, dict) else mine
    return [*([mine] if isinstance(mine, str) else mine), *given] if isinstance(mine, list | str) else mine


def _train_here(data: str | None, cfg: Any, *, sql: str | None, db: str | None, out: str, name: str | None,
                track: bool) -> tuple[Any, dict[str, float]]:
    """Train in this process; the model and the seconds no budget covers, by what took them."""
    # a file that cannot be read fails before the heavy imports below; the read line as audit's says it
    start = time.perf_counter()
    df = read_data(data, sql, db, said=lambda df: _source_line(df, data).removesuffix(".")
                   + f"; training for up to {cfg.time_budget:g} s.", roles=cfg.column_roles)
    began = time.perf_counter()
    from ..pipeline.run import train

    libraries_s = time.perf_counter() - began
    with TrainingProgress(cfg.time_budget) as progress:
        model = train(df, config=cfg, out=out, track=track, progress=progress, name=name)
    after = "opening the run store, building and saving the bundle and recording the run" if track else \
        "building and saving the bundle"
    return model, {"reading the table": began - start, "loading the libraries": libraries_s,
                   after: time.perf_counter() - began - libraries_s - model.metadata["train_seconds"]}


def _train_on_spark(data: str | None, cfg: Any, *, sql: str | None, out: str, name: str | None, track: bool,
                    why: str, master: str | None, conf: list[str]) -> Any:
    from ..spark.session import parse_spark_conf
    from ..spark.train import train_spark

    if why:
        say(why)
    say(f"Training on Spark ({master or cfg.spark_master or 'local[*]'}) from {data or 'the query'}, for up to "
        f"{cfg.time_budget:g} s.")
    with TrainingProgress(cfg.time_budget) as progress:
        model = train_spark(data, config=cfg, sql=sql, out=out, track=track, name=name, master=master,
                            spark_conf=parse_spark_conf(conf), progress=progress)
    read = model.metadata.get("spark") or {}  # how Spark read the table (dots as thousands marks in 'price')
    say(f"Read {read.get('rows', 0):,} rows from {data or 'the query'} ({', '.join(read.get('read') or [])}).")
    return model


def predict_cmd(
    model_path: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    data: str = typer.Argument(None, help="Rows to predict: any format 'train' reads."),
    out: str = typer.Option(None, "--out", "-o", help="Write predictions to this CSV/Parquet/JSON file (with "
                            "--engine spark: .csv, .parquet, or a folder of Parquet parts)."),
    engine: str = typer.Option("local", "--engine", help="local, or spark for batch scoring on Spark."),
    spark_master: str = typer.Option(None, "--spark-master", help="Spark master URL (default local[*])."),
    spark_conf: list[str] = typer.Option([], "--spark-conf", help="KEY=VALUE, a Spark setting; repeat for more."),
    interval: float = typer.Option(None, "--interval", help="Add a conformal range (regression: lower, upper) "
                                   "or set of labels (classification) holding the truth this often, e.g. 0.9."),
    sql: str = SqlOption,
    db: str = DbOption,
    tracking_uri: str = TrackingOption,
) -> None:
    """Predict with a model bundle, one output row per input row, in the input's order."""
    from ..errors import ConfigError
    from ..tracking.lookup import open_model

    if interval is not None:
        from ..evaluation.intervals import check_coverage

        try:
            check_coverage(interval)
        except ConfigError as e:
            raise ConfigError(f"--interval: {e}") from None
    model = open_model(model_path, tracking_uri=tracking_uri)  # a folder, a run id or models:/NAME@ALIAS
    if interval is not None:  # before any row is read: a model without calibration rows, or too few of them
        try:
            model.check_interval(interval)
        except ConfigError as e:
            raise ConfigError(f"--interval: {e}") from None
    if engine == "spark":
        from ..spark.score import score_file
        from ..spark.session import parse_spark_conf

        if not out:
            raise ConfigError("--engine spark writes its predictions to a file: pass --out FILE.")
        if db:
            raise ConfigError("--db reads through SQLAlchemy or DuckDB, not Spark: drop --engine spark, or name a "
                              "table in Spark's catalog with --sql alone.")
        n = score_file(model.path or model_path, data, out, master=spark_master, interval=interval, sql=sql,
                       conf=parse_spark_conf(spark_conf))
        say(f"Scored {n:,} rows on Spark; predictions written to ", (out, "bold"), ".")
        return
    if engine != "local":
        raise ConfigError(f"--engine must be local or spark; got {engine!r}.")
    from ..serving.batch import predict_data  # streams files in chunks, with a progress bar

    # what the rows hold that the model never learnt from goes to stderr, as the server's warnings go aside
    predict_data(model, data, out, sql=sql, db=db, interval=interval, console=console, notes_console=err_console)


def evaluate_cmd(
    model_path: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    data: str = typer.Argument(None, help="Labelled rows (with the target column)."),
    no_weights: bool = typer.Option(False, "--no-weights", help="Count every row once, though the rows hold the "
                                    "weight column the model was trained with (by default its weights count)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (nothing else)."),
    sql: str = SqlOption,
    db: str = DbOption,
    tracking_uri: str = TrackingOption,
) -> None:
    """Metrics of a model on labelled data."""
    import json

    from ..evaluation.evaluate import evaluate
    from ..tracking.lookup import open_model
    from ._common import err_console
    from .evaluation import print_evaluation, rows_met

    model = open_model(model_path, tracking_uri=tracking_uri)
    frame = read_data(data, sql, db, out=err_console if as_json else None, model=model)
    with named_source(data or "the query"):
        result = evaluate(model, frame, weights=not no_weights)
        result.update(rows_met(model, frame))  # rows it trained on, or was calibrated on: the numbers flatter it
    if as_json:
        from ..monitoring.run import json_ready  # a metric of rows of one class is NaN: JSON has no NaN

        console.print_json(json.dumps(json_ready(result), default=str))
        return
    print_evaluation(model, result, source=data or "the query")


def runs_cmd(
    tracking_uri: str = typer.Option(None, "--tracking-uri"),
    experiment: str = typer.Option("mlengineer", "--experiment"),
    limit: int = typer.Option(20, "--limit"),
) -> None:
    """The tracked training runs, newest first, with their metrics."""
    from ..tracking.runs import list_runs

    runs = list_runs(tracking_uri=tracking_uri, experiment=experiment, limit=limit)
    if not runs:
        console.print("No runs recorded yet: 'mlengineer train' records one each time.")
        return
    rows = []
    for r in runs:
        metric = next(((k, v) for k, v in r["metrics"].items() if k.startswith("valid_")), ("", None))
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["start_time"] / 1000))
        rows.append([r["run_id"][:8], r["name"], started, r["params"].get("task"), metric[0].removeprefix("valid_"),
                     metric[1], r["metrics"].get("train_seconds"), r["status"]])
    console.print(table("Runs", ["run", "name", "started", "task", "metric", "value", "train s", "status"], rows))


def register(app: typer.Typer) -> None:
    app.command("train")(handle_errors(train_cmd))
    app.command("predict")(handle_errors(predict_cmd))
    app.command("evaluate")(handle_errors(evaluate_cmd))
    app.command("runs")(handle_errors(runs_cmd))
