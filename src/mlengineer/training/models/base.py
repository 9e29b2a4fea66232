"""The base of every model family, and the registry that names them.

A family knows its strong default configurations (the portfolio), its hyperparameter search space, and how
to fit one configuration. The shared ``ModelFamily.fit`` owns timing and the time limit; a family overrides
only ``_fit``. A fitted model answers ``predict_raw``: class probabilities of shape (n, k) for
classification, values of shape (n,) for regression.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ...errors import ConfigError
from ...tasks import Task

__all__ = ["FAMILIES", "FitContext", "FittedModel", "ModelFamily", "get_family", "register"]


@dataclass
class FitContext:
    """What every family needs to know besides the data and its own parameters."""

    task: Task
    categorical: list[int] = field(default_factory=list)
    cardinalities: list[int] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    seed: int = 0
    n_jobs: int = 1
    time_limit: float | None = None  # seconds this one fit may take; None = no limit
    sample_weight: np.ndarray | None = None
    clock: Deadline | None = field(default=None, repr=False)  # the fit's deadline, once it asked for one

    def deadline(self) -> Deadline:
        """The deadline for this fit, from ``time_limit``; the family checks it between rounds."""
        self.clock = Deadline(self.time_limit)
        return self.clock

    @property
    def n_classes(self) -> int:
        return len(self.task.classes)


class FittedModel:
    """A fitted configuration of one family. Subclasses set ``estimator`` and implement ``predict_raw``."""

    family: str = ""

    def __init__(self, estimator: Any, params: dict[str, Any], task: Task) -> None:
        self.estimator = estimator
        self.params = dict(params)
        self.task = task
        self.fit_seconds = 0.0
        self.best_iteration: int | None = None  # for families with early stopping: rounds that were best
        self.stopped_by_time = False  # True when the time limit ended the fit before it was done
        self.rounds_run: int | None = None  # rounds fitted, the best ones and early stopping's patience

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _proba(self, p: np.ndarray, seen: Any = None) -> np.ndarray:
        """A probability matrix (n, k) from a learner's output (a vector for binary tasks).

        ``seen`` lists the class indices the learner's columns stand for when it did not see every class
        (a rare class missing from a fold); the other classes get probability 0.
        """
        p = np.asarray(p, dtype=np.float64)
        if p.ndim == 1:
            p = np.column_stack([1.0 - p, p])
        k = len(self.task.classes)
        if seen is not None and p.shape[1] != k:
            full = np.zeros((p.shape[0], k))
            full[:, np.asarray(seen, dtype=np.int64)] = p
            p = full
        return p

    def prepare(self) -> None:
        """Build whatever makes the first small prediction fast (called once training is done)."""

    def feature_importance(self) -> np.ndarray | None:
        """Importance per input feature if the learner has a cheap one, else None."""
        return None


class ModelFamily:
    """One family of models (LightGBM, random forest, ...). Subclasses override ``_fit`` and configs."""

    name: ClassVar[str] = ""
    #: families that learn in rounds can stop early on validation rows and be refit with that many rounds
    early_stopping: ClassVar[bool] = False
    #: a rough cost rank used to order the portfolio (cheap first)
    cost: ClassVar[int] = 1
    #: seconds to fit, relative to LightGBM's first configuration on the same data: lets the search skip
    #: a family's first try when it could not finish in the time left
    relative_cost: ClassVar[float] = 1.0
    #: whether fitting two folds at once in threads pays (the learner releases the GIL for long stretches)
    parallel_folds: ClassVar[bool] = True

    def available(self) -> bool:
        """False when an optional dependency is missing; the search then skips the family."""
        return True

    def warm_up(self) -> None:
        """Import what the family needs, before any fit's clock starts."""

    def unavailable_reason(self) -> str:
        """Why ``available()`` is False, naming what to install."""
        return ""

    def supports(self, task: Task, n_rows: int, n_features: int) -> bool:
        """False when the family is a poor fit for data of this size (k-NN on a million rows)."""
        return True

    def default_configs(self, task: Task, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [{}]

    def search_space(self, trial: Any, task: Task, n_rows: int) -> dict[str, Any]:
        return {}

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        ctx: FitContext,
        params: dict[str, Any],
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
    ) -> FittedModel:
        """Fit one configuration; validation rows, when given, drive early stopping."""
        start = time.perf_counter()
        ctx.clock = None
        model = self._fit(X, y, ctx, dict(params), X_val, y_val)
        model.family = self.name
        model.fit_seconds = time.perf_counter() - start
        model.stopped_by_time = bool(ctx.clock is not None and ctx.clock.hit)
        return model

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        raise NotImplementedError


FAMILIES: dict[str, ModelFamily] = {}


def register(cls: type[ModelFamily]) -> type[ModelFamily]:
    """Class decorator: make a family available under its ``name``."""
    FAMILIES[cls.name] = cls()
    return cls


def get_family(name: str) -> ModelFamily:
    from . import load_all

    load_all()
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"Unknown model family {name!r}: choose from {', '.join(sorted(FAMILIES))}.") from None


class Deadline:
    """A wall-clock deadline that learners check between rounds."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.perf_counter() + max(0.0, seconds)
        self.hit = False  # set once a check found the time up

    def left(self) -> float:
        return float("inf") if self.end is None else self.end - time.perf_counter()

    def passed(self) -> bool:
        if self.left() <= 0:
            self.hit = True
        return self.hit
