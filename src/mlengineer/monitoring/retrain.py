"""The closed loop: a challenger trained on the reference plus new labelled rows, tested against the champion
on the most recent rows neither learnt from, promoted only when it is significantly better and its clients'
requests still fit; every decision recorded in MLflow with its evidence; and the way back (``rollback``).

    >>> result = retrain("models:/price@champion", data="new_rows.parquet", labels="outcomes.csv", key="id")  # doctest: +SKIP
    >>> result.decision, result.reason                                                              # doctest: +SKIP

The challenger uses the champion's recorded configuration (its bundle's ``config``), on the champion's
reference sample (or ``base_data``, the original table, when given) plus the older part of the new rows. The
newest ``test_fraction`` of the new rows (by their time, else their order) is kept apart: both models are
scored on it with ``compare``'s paired test on the champion's metric.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..bundle.compat import client_problems
from ..errors import ConfigError, DataError
from .retrain_rows import labelled_rows, name_challenger_run, trained_rows_note

__all__ = ["DECISIONS_EXPERIMENT", "RetrainResult", "check_test_fraction", "record_decision", "retrain",
           "rollback"]

DECISIONS_EXPERIMENT = "mlengineer-decisions"
MIN_TEST_ROWS = 50
MIN_TRAIN_ROWS = 20


@dataclass
class RetrainResult:
    """What ``retrain`` did and why."""

    decision: str  # "promoted", "better, not promoted" or "kept"
    reason: str
    challenger_path: str
    comparison: dict[str, Any]
    problems: list[str]
    rows: dict[str, int]
    champion: dict[str, Any] = field(default_factory=dict)
    challenger_version: str | None = None
    run_id: str | None = None
    #: what the user must be told: rows the champion trained on among those tested on, rows left out and why
    notes: list[str] = field(default_factory=list)
    #: how many of the rows tested on are copies of the champion's training rows (``rows_found``'s answer)
    trained_rows: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _split_recent(rows: pd.DataFrame, fraction: float, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_test = max(MIN_TEST_ROWS, int(round(fraction * len(rows))))
    if len(rows) - n_test < MIN_TRAIN_ROWS:
        raise DataError(f"Only {len(rows):,} rows of {source} have outcomes: retraining needs at least "
                        f"{MIN_TEST_ROWS + MIN_TRAIN_ROWS} (the newest {fraction:.0%}, at least {MIN_TEST_ROWS}, to test "
                        "both models on, the rest to learn from).")
    return rows.iloc[: len(rows) - n_test], rows.iloc[len(rows) - n_test:]


def _check_fit(champion: Any, rows: pd.DataFrame, source: str) -> None:
    """Refuse, before any training, new rows the champion cannot read (text in a column of numbers): both
    models are scored on them as a server reads rows, strictly, and a challenger would learn from them."""
    from ..errors import SchemaError

    try:
        champion.encode(rows[champion.feature_names])
    except SchemaError as e:
        raise DataError(f"The new rows of {source} do not fit the model: {e} Fix those values (or leave those rows "
                        "out), then retrain.") from None


def check_test_fraction(test_fraction: float) -> None:
    """Refuse a share of new rows to test on outside (0, 1), naming the option."""
    if not 0 < test_fraction < 1:
        raise ConfigError(f"--test-fraction takes the share of the new rows to test on, between 0 and 1 (such as "
                          f"0.3); got {test_fraction:g}.")


def _config(champion: Any, columns: set[str], **overrides: Any) -> Any:
    """The champion's recorded configuration, for a table with ``columns`` (options naming a column it lacks,
    such as a time column that live rows do not carry, are dropped), with the champion's column decisions:
    each column keeps its role (an identifier stays one, even where new rows repeat its values) and the
    columns it left out stay out."""
    from ..data.clean import SelectColumns
    from ..training.config import TrainConfig, option_words

    recorded = dict(champion.metadata.get("config") or {"target": champion.target})
    for opt in ("time_column", "group_column", "weight_column"):
        if recorded.get(opt) and recorded[opt] not in columns:
            recorded[opt] = None
    roles = {c.name: c.role.value for c in champion.schema.columns if c.name in columns and c.name != champion.target}
    recorded["column_roles"] = {**roles, **(recorded.get("column_roles") or {})}
    select = next((st for st in champion.plan.steps if isinstance(st, SelectColumns)), None)
    left_out = [c for c in (select.dropped if select is not None else {}) if c in columns]
    recorded["drop"] = list(dict.fromkeys([*(recorded.get("drop") or []), *left_out]))
    given = {k: v for k, v in overrides.items() if v is not None}
    recorded.update(given)
    return TrainConfig.build(words=option_words(given), **recorded)  # --time-budget, as the command takes it


def _weights_held(champion: Any, base: pd.DataFrame, learn: pd.DataFrame) -> str | None:
    """Why the challenger cannot count rows by the champion's weight column (None if it can, or there is none):
    every row it learns from must hold a weight, and a reference sample keeps none."""
    column = champion.metadata.get("weight_column")
    if not column:
        return None
    lacking = [what for what, rows in (("the base rows", base), ("the new labelled rows", learn))
               if len(rows) and _unweighed(rows, column, champion.target)]
    if not lacking:
        return None
    return (f"The champion counted rows by the weight column {column!r}, but {' and '.join(lacking)} do "
                   "not all hold it: the challenger counts every row once (pass --base-data with the training "
                   "table, and new rows that carry the column, to keep the weights).")


def _unweighed(rows: pd.DataFrame, column: str, target: str) -> bool:
    """Whether some of ``rows`` that hold a target (the others are dropped before training) lack a weight."""
    if column not in rows.columns:
        return True
    labelled = rows[target].notna() if target in rows.columns else np.ones(len(rows), dtype=bool)
    return bool(rows.loc[labelled, column].isna().any())


def retrain(spec: Any, *, base_data: Any = None, test_fraction: float = 0.3, time_budget: float | None = None,
            out: str | Path | None = None, tracking_uri: str | None = None, promote: bool = True,
            progress: Any = None, log_model: str | None = None, **sources: Any) -> RetrainResult:
    """Train a challenger for the model ``spec`` names on its reference (or ``base_data``) plus the older new
    labelled rows (``sources``: ``data``/``log``, ``labels``, ``key``, ``time_column``, ``since``/``until`` for
    a window, as ``mlengineer monitor`` takes them; ``log_model``: the name a prediction log's server served the
    model under, if not its own), compare both on the newest ones, and promote the challenger when it wins.

    Everything that can be checked before training is (rows the champion cannot read, newest rows the metric
    cannot score). A retrain that fails after training leaves no temporary folder, and its challenger's run is
    marked FAILED, so no finished run stands for a challenger nothing decided on."""
    from ..bundle.reference import load_reference
    from ..data.load import load_table
    from ..tracking.lookup import open_model
    from ..tracking.registry import ModelRef, is_model_ref, resolve
    from .run import load_current

    check_test_fraction(test_fraction)
    champion = spec if hasattr(spec, "predict_raw") else open_model(str(spec), tracking_uri=tracking_uri)
    ref = ModelRef.parse(spec) if isinstance(spec, str) and is_model_ref(spec) else None
    info = resolve(ref, tracking_uri=tracking_uri)[0] if ref is not None and ref.alias else None
    names = {champion.name, *([ref.name] if ref else []), *([log_model] if log_model else [])}
    current = load_current(champion, names=names, **sources)
    labelled, left_out = labelled_rows(champion, current)
    learn, test = _split_recent(labelled, test_fraction, current.source)
    _check_fit(champion, pd.concat([learn, test]), current.source)
    features = test.drop(columns=[champion.target])
    scoring = _Scoring(features, champion.task.encode(test[champion.target]), champion.predict_raw(features))
    _check_scorable(champion, scoring, labelled, test_fraction, current.source)
    base = load_table(base_data) if isinstance(base_data, str | Path) else base_data
    if base is None:
        base = load_reference(champion)
        if base is None:
            raise DataError(f"Model {champion.name!r} keeps no reference sample to retrain on: pass --base-data with "
                            "its training table.")
    base = base[[c for c in base.columns if not c.startswith("_ref_")]]
    seen, seen_note = trained_rows_note(champion, test, base)
    table = pd.concat([base, learn], ignore_index=True, sort=False)
    weight_note = _weights_held(champion, base, learn)
    if weight_note:  # a weight column is never a feature: what is left of it goes
        table = table.drop(columns=[champion.metadata["weight_column"]], errors="ignore")
    config = _config(champion, set(table.columns), time_budget=time_budget, tracking_uri=tracking_uri)
    # named after its --out folder as any model is (registered, it stays a version of the champion's name); a
    # folder retrain chose keeps the champion's name, and a temporary one goes once the registry holds a copy
    named, temporary = out is not None, out is None and (ref is not None or champion.path is None)
    out = Path(out) if out is not None else _default_out(champion, ref)
    rows = {"base": int(len(base)), "new_learnt": int(len(learn)), "new_tested": int(len(test))}
    result: RetrainResult | None = None
    try:
        result = _challenge(champion, table, config, scoring, out=out, name=None if named else champion.name,
                            progress=progress, decide={
                                "promote": promote and info is not None, "champion_ref": ref, "info": info,
                                "challenger_path": out, "rows": rows, "tracking_uri": tracking_uri,
                                "champion_path": None if champion.path is None else str(champion.path),
                                "temporary": temporary})
    finally:  # a temporary folder goes once the registry keeps the challenger, or nothing does (a failure)
        if temporary and (result is None or result.challenger_version):
            shutil.rmtree(out.parent, ignore_errors=True)
    assert result is not None
    result.notes = [n for n in (seen_note, *current.notes, left_out, weight_note) if n]
    result.trained_rows = seen
    result.run_id = record_decision("retrain", ref.name if ref else champion.name, result.to_dict(),
                                    tracking_uri=tracking_uri)
    return result


@dataclass
class _Scoring:
    """The newest rows both models are tested on: their inputs, their outcomes (encoded) and the champion's
    answers."""

    features: pd.DataFrame
    y: np.ndarray
    champion: np.ndarray


def _check_scorable(champion: Any, scoring: _Scoring, labelled: pd.DataFrame, fraction: float, source: str) -> None:
    """Refuse, before any training, newest rows on which the comparison metric cannot be computed (ROC AUC on
    outcomes of one class): a challenger trained for them could not be compared. The fix is named in
    retrain's own options."""
    from ..metrics import get_metric

    m = get_metric(champion.metadata.get("metric"), champion.task.kind)
    why = ""
    try:
        value = m(scoring.y, scoring.champion)
    except ValueError as e:  # roc_auc of one class, and the like
        value, why = float("nan"), str(e).splitlines()[0][:120].rstrip(".")
    if np.isfinite(value):
        return
    where = (f"{m.name} cannot be computed on the {len(scoring.y):,} newest rows of {source} that both models "
             f"would be tested on (the newest {fraction:.0%})")
    if champion.task.is_classification:
        target = champion.target
        found = sorted(set(np.asarray(scoring.y).astype(np.int64).tolist()))
        shown = ", ".join(repr(str(champion.classes[i])) for i in found)
        if labelled[target].nunique() == len(found):
            raise DataError(f"{where}: every new row with an outcome is {shown}. Pass labelled rows of every class "
                            "(more rows, or a wider --since/--until), then retrain.")
        raise DataError(f"{where}: their outcomes are all {shown}. Pass a larger --test-fraction (now "
                        f"{fraction:g}) to take in older rows of the other classes, or more labelled rows, then "
                        "retrain.")
    raise DataError(f"{where}{f' ({why})' if why else ''}. Pass more labelled rows, or a larger --test-fraction "
                    f"(now {fraction:g}), then retrain.")


def _challenge(champion: Any, table: pd.DataFrame, config: Any, scoring: _Scoring, *, out: Path, name: str | None,
               progress: Any, decide: dict[str, Any]) -> RetrainResult:
    """Train the challenger, compare it with the champion on the newest rows and decide (``_decide``'s
    ``decide`` arguments). A failure after training marks the challenger's run FAILED before it is raised."""
    from ..evaluation.compare import compare_predictions
    from ..pipeline.run import train

    kwargs = {"progress": progress} if progress is not None else {}
    challenger = train(table, config=config, out=out, name=name, **kwargs)
    try:
        name_challenger_run(challenger, champion.name, config.tracking_uri)
        comparison = compare_predictions(champion.task, scoring.y, challenger.predict_raw(scoring.features),
                                         scoring.champion, names=("the challenger", "the champion"),
                                         metric=champion.metadata.get("metric"))
        problems = client_problems(champion, challenger)  # the registry's own check, which promote applies too
        return _decide(comparison, problems, **decide)
    except BaseException as e:
        _mark_failed(challenger, config.tracking_uri, e)
        raise


def _mark_failed(challenger: Any, tracking_uri: str | None, error: BaseException) -> None:
    """Mark a challenger's training run FAILED, with why: the retrain it was for did not finish."""
    from ..tracking.store import mlflow_client

    run_id = challenger.metadata.get("run_id")
    if not run_id:
        return
    try:
        client = mlflow_client(tracking_uri)
        client.set_tag(run_id, "mlengineer.failure", f"retrain failed after training: {error}"[:4000])
        client.set_terminated(run_id, status="FAILED")
    except Exception:  # the store may be what failed: the error being raised says what happened
        pass


def _default_out(champion: Any, ref: Any) -> Path:
    """Beside a champion folder (``NAME-challenger``); for a registry champion, a temporary folder (the
    registry keeps its own copy of the version)."""
    if ref is None and champion.path is not None:
        return Path(champion.path).with_name(f"{Path(champion.path).name}-challenger")
    return Path(tempfile.mkdtemp(prefix="mlengineer-challenger-")) / "challenger"


def _decide(comparison: dict[str, Any], problems: list[str], *, promote: bool, champion_ref: Any, info: Any,
            challenger_path: Path, rows: dict[str, int], tracking_uri: str | None,
            champion_path: str | None = None, temporary: bool = False) -> RetrainResult:
    """Promote, or say why not; registers the challenger as a new version when the champion is registered
    (``temporary``: ``challenger_path`` is removed afterwards, and the registered version is where it is kept)."""
    from ..tracking.registry import promote as move_alias
    from ..tracking.registry import register

    a, b = comparison["scores"]
    better = comparison["significant"] and ((a > b) == comparison["greater_is_better"]) and a != b
    champion = {"name": champion_ref.name if champion_ref else None, "alias": getattr(champion_ref, "alias", None),
                "version": getattr(info, "version", None)}
    result = RetrainResult("kept", "", str(challenger_path), comparison, problems, rows, champion)
    if champion_ref is not None:
        result.challenger_version = register(challenger_path, champion_ref.name, tracking_uri=tracking_uri).version
        if temporary:
            result.challenger_path = f"models:/{champion_ref.name}/{result.challenger_version}"
    verdict = comparison["verdict"].rstrip(".")
    if not better or problems:
        result.reason = _kept_reason(comparison, problems, better=better, champion_ref=champion_ref, info=info,
                                     saved=result, champion_path=champion_path)
    elif not promote:
        result.decision = "better, not promoted"
        then = (f"promote it with 'mlengineer promote {champion_ref.name} {result.challenger_version}'"
                if champion_ref is not None and result.challenger_version else "serve the challenger's folder instead")
        result.reason = (f"{verdict}; the champion is not a registry alias (or --no-promote), so nothing was "
                         f"promoted: {then}")
    else:
        move_alias(champion_ref.name, str(result.challenger_version), alias=champion_ref.alias,
                   tracking_uri=tracking_uri)
        result.decision = "promoted"
        result.reason = (f"{verdict}; it takes the same inputs, so models:/{champion_ref.name}@{champion_ref.alias} "
                         f"is now version {result.challenger_version}")
    return result


def _kept_reason(c: dict[str, Any], problems: list[str], *, better: bool, champion_ref: Any, info: Any,
                 saved: RetrainResult, champion_path: str | None) -> str:
    """Why the champion stays, in retrain's terms: what was kept, the evidence, and what to do next (it follows
    "Kept: ")."""
    a, b = (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}" for v in c["scores"])
    metric, n = c.get("metric", "the metric"), f"{c['rows']:,} " if c.get("rows") else ""
    p = f"p = {c['p_value']:.2g}" if c.get("p_value") is not None else "paired test"
    if champion_ref is not None:
        alias = f"@{champion_ref.alias}" if champion_ref.alias else ""
        version = f" (version {info.version})" if getattr(info, "version", None) else ""
        kept = f"the champion, models:/{champion_ref.name}{alias}{version}"
    else:
        kept = f"the champion{f', {champion_path}' if champion_path else ''}"
    where = f"it is saved at {saved.challenger_path}" + (
        f" and registered as version {saved.challenger_version}, with no alias" if saved.challenger_version else "")
    if saved.challenger_path.startswith("models:/"):  # only the registry keeps it
        where = f"it is registered as {saved.challenger_path}, with no alias"
    command = (f"mlengineer promote {champion_ref.name} {saved.challenger_version}"
               if champion_ref is not None and saved.challenger_version else None)
    if better:
        use = f"promote it: {command} --force" if command else f"serve it: mlengineer serve {saved.challenger_path}"
        return (f"{kept}. The challenger scored {metric} {a} against the champion's {b} on the {n}newest rows "
                f"(significantly better, {p}), but clients of the champion could not call it: {problems[0]}; "
                f"{where}. Next: once the clients send what it needs, {use}")
    if c["significant"]:  # the champion won
        return (f"{kept}. It scored {metric} {b} against the challenger's {a} on the {n}newest rows, significantly "
                f"better ({p}); the challenger {where.removeprefix('it ')}. Next: nothing to change; retrain when "
                "'mlengineer monitor' shows the live rows have moved away from training")
    use = f"promote it: {command}" if command else f"serve it: mlengineer serve {saved.challenger_path}"
    return (f"{kept}. The challenger scored {metric} {a} against the champion's {b} on the {n}newest rows, a gap "
            f"likely by chance ({p}); {where}. Next: retrain when more labelled rows have come in (more rows to "
            f"test on tell a smaller gap from chance), or, if you prefer the challenger anyway, {use}")


def record_decision(kind: str, name: str, evidence: dict[str, Any], *, tracking_uri: str | None = None) -> str:
    """Record a decision (``retrain`` or ``rollback``) as an MLflow run of ``DECISIONS_EXPERIMENT``: its outcome
    as tags, its numbers as metrics, everything as ``decision.json``; the run id."""
    from ..tracking.store import (
        check_outer_run,
        experiment_id,
        mlflow_module,
        owner_tags,
        recording_run,
        store_error,
    )

    try:
        check_outer_run(tracking_uri)  # a notebook's open run: nested under it, or refused when elsewhere
        mlflow = mlflow_module(tracking_uri)
        with recording_run(mlflow, experiment_id=experiment_id(mlflow, DECISIONS_EXPERIMENT),
                           run_name=f"{kind} {name}", tags=owner_tags()) as run:
            mlflow.set_tags({"mlengineer.decision": str(evidence.get("decision", kind)), "mlengineer.model": name,
                             "mlengineer.kind": kind, "mlengineer.reason": str(evidence.get("reason", ""))[:4000]})
            comparison = evidence.get("comparison") or {}
            metrics = {k: v for k, v in (("challenger_score", (comparison.get("scores") or [None])[0]),
                                         ("champion_score", (comparison.get("scores") or [None, None])[1]),
                                         ("p_value", comparison.get("p_value")))
                       if isinstance(v, int | float)}
            metrics.update({f"rows_{k}": v for k, v in (evidence.get("rows") or {}).items()})
            if metrics:
                mlflow.log_metrics(metrics)
            mlflow.log_dict(json.loads(json.dumps(evidence, default=str)), "decision.json")
            return str(run.info.run_id)
    except Exception as e:
        from ..errors import MLEngineerError

        if isinstance(e, MLEngineerError):
            raise
        raise store_error(e, tracking_uri) from None


def rollback(name: str, *, alias: str = "champion", tracking_uri: str | None = None) -> dict[str, Any]:
    """Move ``models:/NAME@ALIAS`` back to the version it named before, and record the decision."""
    from ..tracking.registry import rollback as move_back

    was, now = move_back(name, alias=alias, tracking_uri=tracking_uri)
    evidence = {"decision": "rolled back", "alias": alias, "from_version": was, "to_version": now,
                "reason": f"models:/{name}@{alias} moved back from version {was} to version {now}"}
    evidence["run_id"] = record_decision("rollback", name, evidence, tracking_uri=tracking_uri)
    return evidence
