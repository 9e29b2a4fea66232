"""Training configuration: one validated object that the CLI, the Python API and a YAML file all build."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import Argument, ConfigError

__all__ = ["TASK_KINDS", "TrainConfig", "flag_arguments", "load_config_file", "option_words"]

TASK_KINDS = ("binary", "multiclass", "regression")
#: the longest time budget: a week (longer is a typo, or infinity, which no clock can wait for)
MAX_TIME_BUDGET = 7 * 24 * 3600
ROLES = ("numeric", "categorical", "boolean", "datetime", "text", "image", "identifier", "constant", "ignore")


class TrainConfig(BaseModel):
    """What to train and how: the target, the task, the metric, the time budget and the engine.

    Every field has a default a newcomer can live with; only ``target`` is required.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    #: how the user wrote each option (``build``'s ``words``), for checks made after the config was built
    _words: dict[str, str] = PrivateAttr(default_factory=dict)

    target: str = Field(description="Name of the column to predict.")
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    metric: str | None = Field(default=None, description="Metric to optimise; the task's default if unset.")
    time_budget: float = Field(default=60.0, description="Seconds the whole training may take.")
    seed: int = 0
    engine: Literal["local", "spark"] = Field(
        default="local", description="Where training runs: in memory (local), or on Spark (spark; `mlengineer "
        "train --engine spark` or mlengineer.spark.train_spark)."
    )
    spark_master: str | None = Field(default=None, description="Spark master URL for engine spark (local[*] if unset).")
    spark_conf: dict[str, str] = Field(default_factory=dict, description="Spark settings for engine spark: key -> value.")
    tracking_uri: str | None = Field(default=None, description="MLflow tracking URI; ./mlruns.db if unset.")
    experiment: str = "mlengineer"
    column_roles: dict[str, str] = Field(default_factory=dict, description="Overrides: column -> role.")
    drop: list[str] = Field(default_factory=list, description="Columns never to use as features.")
    keep: list[str] = Field(default_factory=list, description="Columns to keep even if the audit would drop them.")
    group_column: str | None = None
    time_column: str | None = None
    weight_column: str | None = Field(
        default=None, description="Column of row weights (numbers of at least 0; a row of weight 2 counts as two, "
        "of 0 for nothing): used in every fit, score, ensemble and calibration, never a feature, and not needed "
        "to predict.")
    validation: Literal["auto", "holdout", "kfold"] = "auto"
    holdout_fraction: float = 0.2
    families: list[str] | None = Field(default=None, description="Model families to try; all if unset.")
    max_predict_ms_per_row: float | None = Field(
        default=None, description="Only keep models that predict one row within this many milliseconds."
    )
    max_models: int | None = Field(
        default=None, description="At most this many models in the final ensemble; 1: the best single model (a "
        "bundle of one booster answers a row fastest). Unset: as many as validation favours within the latency aim."
    )
    ensemble_metric: str | None = Field(
        default=None, description="Metric the ensemble's weights are chosen by: the metric if unset, or log loss "
        "when the metric only ranks (ROC AUC), so that the blend's probabilities stay calibrated."
    )
    ensemble_lean_se: float | None = Field(
        default=1.0, description="A member leaves the ensemble where its out-of-fold gain is within this many "
        "standard errors of the paired per-row loss and it takes at least 5% of the members' one-row time: a faster "
        "bundle for a gain within noise. None: every member the selection chose stays. Only for metrics made of "
        "rows (log loss, RMSE, MAE, R2, accuracy, Brier; ROC AUC's blend is by log loss)."
    )
    target_transform: Literal["auto", "none", "log", "power"] = Field(
        default="auto", description="Regression: also try models fitted on a transformed target, kept only where "
        "validation scores them better on the original scale. auto: a log transform for a skewed target of values "
        "at least 0, a Yeo-Johnson power transform for a skewed one with negative values; none: never; log or "
        "power: that one, whatever the skew."
    )
    tune: bool = Field(default=True, description="Tune the best families with Optuna after the portfolio.")
    max_search_rows: int | None = Field(
        default=None, description="Search on a sample of at most this many rows (default: from free memory)."
    )
    calibration_fraction: float = Field(
        default=0.0, description="Share of the rows kept apart from every fit (search, ensemble, refit) to fit the "
        "probability calibrator and the conformal ranges and sets on the final model's own predictions; 0 uses "
        "the validation rows' out-of-fold predictions (every row then trains the final model)."
    )
    n_jobs: int = Field(default=0, description="Threads the learners use: 0 (or -1, as scikit-learn writes it) for "
                        "every core, -2 for all but one, or a count.")

    @field_validator("n_jobs")
    @classmethod
    def _threads(cls, v: int) -> int:
        """scikit-learn's reading of a negative count (-1 every core, -2 all but one), kept as a count of this
        machine's cores; 0 stays 'every core'."""
        import os

        if v >= 0:
            return v
        cores = os.cpu_count() or 1
        if v == -1:
            return 0
        if -v > cores:
            raise ValueError(f"of {v} leaves none of this machine's {cores} cores (-1 is every core, -2 all but one); "
                             "use 0 for every core, or a count")
        return cores + 1 + v

    @field_validator("time_budget")
    @classmethod
    def _positive_budget(cls, v: float) -> float:
        if not v > 0 or v != v:
            raise ValueError(f"must be a positive number of seconds. Got {v} instead")
        if v > MAX_TIME_BUDGET:
            raise ValueError(f"must be at most {MAX_TIME_BUDGET:,} seconds (7 days). Got {v:g} instead")
        return float(v)

    @field_validator("max_models")
    @classmethod
    def _max_models(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be at least 1 (1: the best single model). Got {v} instead")
        return v

    @field_validator("ensemble_lean_se")
    @classmethod
    def _lean_se(cls, v: float | None) -> float | None:
        if v is not None and not v >= 0:
            raise ValueError(f"must be at least 0 standard errors (or null: keep every member). Got {v} instead")
        return v

    @field_validator("holdout_fraction")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0.05 <= v <= 0.5:
            raise ValueError(f"must be between 0.05 and 0.5. Got {v} instead")
        return v

    @field_validator("calibration_fraction")
    @classmethod
    def _calibration_fraction(cls, v: float) -> float:
        if v != 0 and not 0.05 <= v <= 0.5:
            raise ValueError(f"must be 0 (off) or between 0.05 and 0.5. Got {v} instead")
        return float(v)

    @field_validator("column_roles")
    @classmethod
    def _roles(cls, v: dict[str, str]) -> dict[str, str]:
        for col, role in v.items():
            if role not in ROLES:
                near = difflib.get_close_matches(str(role).lower(), ROLES, n=1, cutoff=0.6)
                closest = f" (did you mean {near[0]!r}?)" if near else ""
                raise _ItemError(f"gives column {col!r} the role {role!r}{closest}, which is not one of "
                                 f"{', '.join(ROLES)}", col)
        return v

    @field_validator("drop", "keep", "families", mode="before")
    @classmethod
    def _one_name(cls, v: Any) -> Any:
        """One name where a list is taken is a list of that one (``drop="age"``, ``families: lightgbm`` in YAML);
        never split at commas: a column's name may hold one."""
        return [v] if isinstance(v, str) else v

    @field_validator("families")
    @classmethod
    def _families(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not [f for f in v if str(f).strip()]:
            raise ValueError("names no family: name at least one (linear, lightgbm, ...), or leave it out for all")
        joined = next((f for f in v or () if "," in str(f)), None)
        if joined is not None:  # no family's name holds a comma: a list written as one text
            names = [n.strip() for n in str(joined).split(",") if n.strip()]
            raise ValueError(f"takes a list of family names, one each: {names} (or one '- name' per line in YAML); "
                             f"got {joined!r}")
        return v

    @model_validator(mode="after")
    def _drop_or_keep(self) -> TrainConfig:
        both = [c for c in self.drop if c in self.keep]
        if both:
            raise _ItemError(f"--drop and --keep both name the column {both[0]!r}: drop it or keep it, not both",
                             both[0])
        if self.target in self.drop:
            raise _ItemError(f"--drop names the target {self.target!r}, which is never a feature: leave it out of "
                             "--drop", self.target)
        for flag, column, what in (("--time-column", self.time_column, "of the dates or times the rows were "
                                    "recorded at"), ("--group-column", self.group_column,
                                                     "whose rows belong together (a customer, a patient)")):
            if column is not None and column == self.target:
                raise ValueError(f"{flag} names the target {column!r}: name the column {what}")
        return self

    @classmethod
    def build(cls, *, words: Mapping[str, str] | None = None, **values: Any) -> TrainConfig:
        """Validate ``values`` into a config, turning pydantic's report into one clear ConfigError that names
        the option at fault as the user wrote it: ``words`` maps a field to that (``--task`` on the command
        line, ``'task:' in train.yaml``); a field it does not name is said as Python's argument (``task=``)."""
        try:
            config = cls(**values)
        except ValidationError as e:
            raise ConfigError(_first_problem(e, words or {})) from None
        config._words = dict(words or {})
        return config

    def said(self, field: str, flag: str, item: Any = None) -> str:
        """How the user wrote the option ``field`` (``'drop:' in train.yaml`` where a config file gave it), for
        a later check's message; ``flag`` (``--drop``) where ``build`` was told nothing of it. ``item``: one name
        of a list or mapping that the file and the flags both gave, said as the one of them it came from."""
        return _item_word(self._words, field, item) or self._words.get(field, flag)


class _ItemError(ValueError):
    """A check's refusal of one name of a list or mapping (``item``), so that it is said as the option the name
    came from: the config file's key or the flag, where both gave names."""

    def __init__(self, message: str, item: Any) -> None:
        super().__init__(message)
        self.item = item


def _item_word(words: Mapping[str, str], field: str, item: Any) -> str | None:
    """How the user gave the name ``item`` of the option ``field``, where ``option_words`` was told it came from
    a config file whose names the flags added to; None otherwise."""
    return None if item is None else words.get(f"{field}[{item}]")


def _first_problem(e: ValidationError, words: Mapping[str, str]) -> str:
    err = e.errors()[0]
    loc = [str(p) for p in err["loc"]]
    msg = str(err["msg"]).removeprefix("Value error, ")
    item = getattr((err.get("ctx") or {}).get("error"), "item", None)  # a name a file or a flag gave
    if err["type"] == "extra_forbidden":
        unknown = words.get(loc[0], repr(loc[0]))
        return f"Unknown option {unknown}: valid options are {', '.join(TrainConfig.model_fields)}."
    if not loc:  # a check across options says it all itself, its options named as the user wrote them
        fields = {flag: arg.name for flag, arg in flag_arguments().items()}
        msg = re.sub(r"--[a-z][a-z-]*", lambda m: _item_word(words, fields.get(m[0], ""), item)
                     or words.get(fields.get(m[0], ""), m[0]), msg)
        return f"{msg[:1].upper()}{msg[1:]}."
    option = _item_word(words, loc[0], item) or words.get(loc[0], f"{loc[0]}=")
    option += f" (at {'.'.join(loc[1:])!r})" if loc[1:] else ""
    if err["type"] == "missing":
        return f"{option} is required."
    if err["type"] == "literal_error":  # pydantic's "Input should be 'a' or 'b'", in the user's words
        return f"{option} takes one of {err.get('ctx', {}).get('expected')}; got {err.get('input')!r}."
    plain = _PLAIN.get(str(err["type"]))
    if plain is not None:  # pydantic's words ("Input should be a valid list") in the user's own
        return f"{option} {plain}; got {err.get('input')!r}."
    return f"{option} {msg}."


#: pydantic's error types, said as a config file's user would put it
_PLAIN = {
    "list_type": "takes a list: [a, b] (or one '- a' per line in YAML)",
    "dict_type": "takes a mapping of name: value",
    "int_parsing": "takes a whole number",
    "int_from_float": "takes a whole number",
    "float_parsing": "takes a number",
    "float_type": "takes a number",
    "int_type": "takes a whole number",
    "bool_parsing": "takes true or false",
    "bool_type": "takes true or false",
    "string_type": "takes text",
}


#: the CLI's flag of a field where it is not the field's name with dashes (``--column-role note=text``)
_CLI_FLAGS = {"column_roles": "--column-role", "max_predict_ms_per_row": "--max-predict-ms"}


def flag_arguments() -> dict[str, Argument]:
    """Each field's CLI flag and the Python argument it is (``--weight-column`` -> ``weight_column``), with the
    kind of value it takes: the one table by which ``mlengineer.train``'s messages name its arguments."""
    table = {}
    choices: tuple[str, ...]
    for name, field in TrainConfig.model_fields.items():
        kind, choices = "text", ()
        hint = field.annotation
        args = [hint, *(a for a in get_args(hint) if a is not type(None))]
        if get_origin(hint) is Literal:
            kind, choices = "choice", tuple(map(str, get_args(hint)))
        elif any(get_origin(a) is list for a in args):
            kind = "list"
        elif any(get_origin(a) is dict for a in args):
            kind = "mapping"
        elif any(a in (int, float) for a in args):
            kind = "number"
        table[_CLI_FLAGS.get(name, "--" + name.replace("_", "-"))] = Argument(name, kind, choices)
    return table


def option_words(flags: Iterable[str], config_file: str | Path | None = None,
                 from_file: Iterable[str] = (), file_items: Mapping[str, Iterable[Any]] | None = None
                 ) -> dict[str, str]:
    """How the command line's user wrote each option, for ``TrainConfig.build(words=...)``: the keys of
    ``from_file`` not among ``flags`` as a key of ``config_file`` (``'task:' in train.yaml``), every other field
    as its flag (``--task``). ``file_items``: the names a list or mapping of the file held (``drop: [y]``) where
    flags added theirs (``--drop x``), each said as the file's key (the flags' as the flag)."""
    given = set(flags)
    words = {arg.name: flag for flag, arg in flag_arguments().items()}
    words.update({field: f"'{field}:' in {config_file}" for field in from_file if field not in given})
    for field, items in (file_items or {}).items():
        words.update({f"{field}[{item}]": f"'{field}:' in {config_file}" for item in items})
    return words


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML training config; its keys are TrainConfig's fields (``column_roles`` as a mapping)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Config file {str(p)!r} does not exist: pass the path of a YAML file.")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"Config file {str(p)!r} is not valid YAML: {str(e).splitlines()[0]}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {str(p)!r} must hold a mapping of option: value.")
    return data
