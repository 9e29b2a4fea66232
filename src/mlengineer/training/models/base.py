"""The base of every model family, and the registry that names them.

A family owns what the rest of the code asks about it: its strong default configurations and its turn in
the portfolio (``default_configs``, ``place``), its hyperparameter search space and whether Optuna tunes
it (``search_space``, ``tuned``), the pip packages a bundle of its models needs (``packages``), and how to
fit one configuration (``_fit``; the shared ``ModelFamily.fit`` owns timing and the time limit).

A fitted model answers ``predict_raw``: class probabilities of shape (n, k) for classification, values of
shape (n,) for regression; and ``contributions`` when it can explain itself exactly (TreeSHAP, a linear
formula), None when the explain stage must sample Shapley values instead.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from ...errors import ConfigError
from ...tasks import Task
from ._attribution import Attribution
from .deadline import Deadline

__all__ = ["COST_REFERENCE", "FAMILIES", "Attribution", "Deadline", "FitContext", "FittedModel", "ModelFamily", "TargetTransform",
           "TransformedTargetModel", "get_family", "register", "unregister"]

#: an inverted prediction on a transformed target is clipped to the transformed training range widened by this
#: share of it on each side: a learner's value far outside it (a network's, early on) must not overflow ``exp``
TARGET_MARGIN = 0.25

#: the family whose first configuration is the unit of ``ModelFamily.relative_cost``
COST_REFERENCE = "lightgbm"
#: a configuration's n-th other random start (``"start"``: n) fits with the run's seed plus n times this
START_STEP = 7919


@dataclass
class FitContext:
    """What every family needs to know besides the data and its own parameters."""

    task: Task
    categorical: list[int] = field(default_factory=list)
    cardinalities: list[int] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    seed: int = 0
    n_jobs: int = 1
    time_limit: float | None = None  # the safety stop: seconds after which the fit gives up; None = no limit
    #: the search plan's cap on this fit's units (boosting rounds, trees, epochs); None = the family's own
    max_units: int | None = None
    sample_weight: np.ndarray | None = None
    #: the weights of the validation rows early stopping watches (``X_val``; the user's); None: unweighted
    valid_weight: np.ndarray | None = None
    #: keep what the fit needs to go on later (``FittedModel.resume``): the search's fits, not the refits
    keep_training: bool = False
    clock: Deadline | None = field(default=None, repr=False)  # the fit's deadline, once it asked for one

    def deadline(self) -> Deadline:
        """The deadline for this fit, from ``time_limit``; the family checks it between rounds."""
        self.clock = Deadline(self.time_limit)
        return self.clock

    @property
    def n_classes(self) -> int:
        return len(self.task.classes)


class FittedModel:
    """A fitted configuration of one family. Subclasses set ``estimator`` and implement ``predict_raw``;
    those that can explain a prediction exactly implement ``contributions`` too."""

    family: str = ""

    def __init__(self, estimator: Any, params: dict[str, Any], task: Task) -> None:
        self.estimator = estimator
        self.params = dict(params)
        self.task = task
        self.fit_seconds = 0.0
        self.best_iteration: int | None = None  # for families with early stopping: rounds that were best
        self.stopped_by_time = False  # True when the time limit ended the fit before it was done
        self.rounds_run: int | None = None  # rounds fitted, the best ones and early stopping's patience
        self.units_cap: int | None = None  # the plan's cap on units for this fit (``FitContext.max_units``)

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

    def with_rounds(self, rounds: int) -> FittedModel | None:
        """This model cut to its first ``rounds`` rounds (all of them where it has fewer), as a model of its
        own: a booster answers one row in time about in proportion to its trees, so a latency limit can keep
        a booster's first rounds rather than refuse it (``latency.py``). None where the family cannot be cut."""
        return None

    @property
    def resumable(self) -> bool:
        """Whether ``resume`` can go on: the family can, and the fit kept its rows (``keep_training``)."""
        return False

    def resume(self, units: int, *, learning_rate: float | None, deadline: Deadline) -> np.ndarray:
        """Up to ``units`` more rounds on the rows it was fitted on (at ``learning_rate`` where given), stopped
        early on its validation rows as the fit was; answers its output for those rows (``predict_raw``'s)."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop what the fit kept to go on (``FitContext.keep_training``): the model predicts as before."""

    def feature_importance(self) -> np.ndarray | None:
        """Importance per input feature if the learner has a cheap one, else None."""
        return None

    def contributions(self, X: np.ndarray, k: int, background: np.ndarray | None = None) -> Attribution | None:
        """Each feature's exact share of the predictions for ``X`` (``k``: the number of classes, 1 for
        regression; ``background``: rows an average prediction is taken over), or None when the model has
        no exact way and the explain stage samples Shapley values instead."""
        return None

    @property
    def explained_exactly(self) -> bool:
        """True when ``contributions`` answers (it does wherever a subclass implements it)."""
        return type(self).contributions is not FittedModel.contributions


class ModelFamily:
    """One family of models (LightGBM, random forest, ...). Subclasses set ``name`` and override ``_fit``,
    ``default_configs`` and ``search_space``; the class attributes below say how the rest of the code
    treats the family."""

    name: ClassVar[str] = ""
    #: its turn in the default portfolio (lower first): the strongest per second spent first, then the kinds
    #: that differ most from it (what an ensemble gains from); None: tried only when named in ``families``
    place: ClassVar[int | None] = None
    #: its turn on large data (more rows than the search's ``LARGE_ROWS``); None: the same as ``place``
    place_large: ClassVar[int | None] = None
    #: its place where the task has several classes, if other than ``place`` (not on large data): boosters
    #: grow a tree per class a round, a network's cost hardly depends on the classes
    place_multiclass: ClassVar[float | None] = None
    #: its place where the task has at least ``MANY_CLASSES`` classes (not on large data), if other than
    #: ``place_multiclass``: a booster's round is then many trees, and the first candidate takes half the search
    place_many_classes: ClassVar[float | None] = None
    #: whether Optuna tunes the family after the portfolio when it is among the best
    tuned: ClassVar[bool] = True
    #: whether a member of the family keeps its k fold models (averaged) rather than one refit on all rows,
    #: where the search saw every row: k networks from other starts and rows average out each one's noise
    #: (the MLP on car at 60 s: 0.0204 test log loss refit, 0.0098 bagged), where boosted trees refit as well
    bag_folds: ClassVar[bool] = False
    #: "within": its values stay within the training targets' (trees, neighbours); "beyond": they follow a line
    #: past them (linear models, networks; ``ensemble.Bounds`` keeps these near the others); "": neither said
    target_range: ClassVar[str] = ""
    #: the pip packages a bundle with a model of this family needs to predict
    packages: ClassVar[tuple[str, ...]] = ()
    #: families that learn in rounds can stop early on validation rows and be refit with that many rounds
    early_stopping: ClassVar[bool] = False
    #: whether a prediction costs more the more rounds were fitted (a booster's trees; not a network's epochs)
    rounds_predict: ClassVar[bool] = True
    #: seconds to fit, relative to the first configuration of ``COST_REFERENCE`` (LightGBM) on the same
    #: data: lets the search skip a family's first try when it could not finish in the time left
    relative_cost: ClassVar[float] = 1.0
    #: the fewest units the probe's longer fit runs (0: ``plan.MIN_PROBE_UNITS``): a learner whose rounds grow
    #: dearer as it goes (CatBoost: ~3 ms a round over its first 30, ~6.7 ms from 250 on, measured) is priced on
    #: more of them, one whose units are long (a network's epochs) on fewer
    probe_units: ClassVar[int] = 0
    #: the most its costs may grow with the training rows, as a power (``plan.FamilyCost.exponent``): also what
    #: is assumed where the probe cannot measure it
    max_row_exponent: ClassVar[float] = 1.0
    #: whether fitting two folds at once in threads pays (the learner releases the GIL for long stretches)
    parallel_folds: ClassVar[bool] = True
    #: the most of the search its candidate may take while no candidate has worked yet (a network on
    #: pictures, which the other families on raw pixels rarely match, takes more than the usual half)
    lead_share: ClassVar[float] = 0.5
    # the kind of column it cannot do without ("text", "picture"); "" for a family that fits any table
    needs_column: ClassVar[str] = ""
    #: a family tried only where this one is not far behind the best (``phases.is_behind``): a costlier variant
    #: of a kind of model is worth its time only where that kind does well
    follows: ClassVar[str] = ""
    #: the fewest units (epochs, rounds) a fit must be able to run in the time the plan gives a candidate for it
    #: to be tried at all (0: any); a network stopped after a few epochs learns next to nothing
    min_units: ClassVar[int] = 0

    #: seconds its first ``warm_up`` in a process takes (a library's import: torch about 2 s): a search whose
    #: budget is short beside it leaves the family out unless named (``search.affordable``)
    warm_up_s: ClassVar[float] = 0.0

    def available(self) -> bool:
        """False when an optional dependency is missing; the search then skips the family."""
        return True

    def warm_up(self) -> None:
        """Import what the family needs, before any fit's clock starts."""

    def late_unit_cost(self, ctx: FitContext, rows: int) -> float:
        """What a unit past the probe's longer fit costs, relative to the probe's units (1: as much), for a
        fit on ``rows`` training rows."""
        return 1.0

    def unavailable_reason(self) -> str:
        """Why ``available()`` is False, naming what to install."""
        return ""

    def portfolio_place(self, large: bool) -> int | None:
        """Its turn in the default portfolio, on large data or not; None when tried only by name."""
        return self.place_large if large and self.place_large is not None else self.place

    def place_for(self, feature_names: Sequence[str], large: bool) -> int | None:
        """Its turn for data with these encoded features: a family for one kind of column (text, pictures)
        comes first where the table has one and is not tried elsewhere; by default ``portfolio_place``."""
        return self.portfolio_place(large)

    def supports(self, task: Task, n_rows: int, n_features: int) -> bool:
        """False when the family is a poor fit for data of this size (k-NN on a million rows)."""
        return True

    def default_configs(self, task: Task, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [{}]

    def search_space(self, trial: Any, task: Task, n_rows: int) -> dict[str, Any]:
        return {}

    def fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
            X_val: np.ndarray | None = None, y_val: np.ndarray | None = None) -> FittedModel:
        """Fit one configuration; validation rows, when given, drive early stopping. ``params`` may ask for a
        transformed regression target (``"target_transform"``: ``"log"`` or ``"power"``, ``target.py``) and
        another random start (``"start"``: n, the n-th after the run's seed; ``phases._restart``)."""
        start, params = time.perf_counter(), dict(params)
        if other := int(params.pop("start", 0)):
            ctx = replace(ctx, seed=ctx.seed + START_STEP * other)
        ctx.clock = None
        kind = params.pop("target_transform", None)
        if kind and not ctx.task.is_classification:  # a skewed target learned on another scale (``target.py``)
            transform = TargetTransform.fitted(str(kind), y)
            inner = self._fit(X, transform.forward(y), ctx, params, X_val,
                              None if y_val is None else transform.forward(y_val))
            inner.family = self.name
            model: FittedModel = TransformedTargetModel(inner, transform)
        else:
            model = self._fit(X, y, ctx, params, X_val, y_val)
        model.family = self.name
        model.units_cap = ctx.max_units
        model.fit_seconds = time.perf_counter() - start
        model.stopped_by_time = bool(ctx.clock is not None and ctx.clock.hit)
        return model

    def _fit(self, X: np.ndarray, y: np.ndarray, ctx: FitContext, params: dict[str, Any],
             X_val: np.ndarray | None, y_val: np.ndarray | None) -> FittedModel:
        raise NotImplementedError


@dataclass
class TargetTransform:
    """``forward`` and ``inverse`` of one transform, fitted on training values.

    ``log``: ``log(y + shift)``, with ``shift`` 0 for positive targets and the smallest positive value where
    the target holds zeros (1 for counts: ``log1p``). ``power``: Yeo-Johnson with the ``lam`` that makes the
    training values most normal (SciPy's estimate), defined for any sign."""

    kind: str
    shift: float = 0.0
    lam: float = 1.0
    low: float = -np.inf   # the clip range of transformed predictions (``TARGET_MARGIN``)
    high: float = np.inf

    @classmethod
    def fitted(cls, kind: str, y: np.ndarray) -> TargetTransform:
        y = np.asarray(y, dtype=np.float64)
        if kind == "log":
            if y.min() < 0:
                raise ValueError("a log transform needs a target of values at least 0; use 'power'")
            positive = y[y > 0]
            t = cls("log", shift=0.0 if y.min() > 0 else float(positive.min()) if len(positive) else 1.0)
        elif kind == "power":
            from scipy.stats import yeojohnson_normmax

            t = cls("power", lam=float(yeojohnson_normmax(y)))
        else:
            raise ValueError(f"unknown target transform {kind!r}: choose 'log' or 'power'")
        z = t.forward(y)
        span = float(z.max() - z.min()) if len(z) else 0.0
        t.low, t.high = float(z.min()) - TARGET_MARGIN * span, float(z.max()) + TARGET_MARGIN * span
        return t

    def forward(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if self.kind == "log":
            return np.log(y + self.shift)
        lam, out = self.lam, np.empty_like(y)
        pos = y >= 0
        out[pos] = np.log1p(y[pos]) if abs(lam) < 1e-12 else ((y[pos] + 1) ** lam - 1) / lam
        neg = ~pos
        out[neg] = -np.log1p(-y[neg]) if abs(lam - 2) < 1e-12 else -((1 - y[neg]) ** (2 - lam) - 1) / (2 - lam)
        return out

    def inverse(self, z: np.ndarray) -> np.ndarray:
        z = np.clip(np.asarray(z, dtype=np.float64), self.low, self.high)
        if self.kind == "log":
            return np.exp(z) - self.shift
        lam, out = self.lam, np.empty_like(z)
        pos = z >= 0
        if abs(lam) < 1e-12:
            out[pos] = np.expm1(z[pos])
        else:  # the base stays positive within the clip range; the floor guards the range's far edge
            out[pos] = np.maximum(z[pos] * lam + 1, 1e-300) ** (1 / lam) - 1
        neg = ~pos
        if abs(lam - 2) < 1e-12:
            out[neg] = -np.expm1(-z[neg])
        else:
            out[neg] = 1 - np.maximum(1 - (2 - lam) * z[neg], 1e-300) ** (1 / (2 - lam))
        return out

    def describe(self) -> str:
        if self.kind == "log":
            return "log(y)" if self.shift == 0 else f"log(y + {self.shift:g})"
        return f"Yeo-Johnson power (lambda {self.lam:.3g})"


class TransformedTargetModel(FittedModel):
    """A family's model fitted on a transformed target, answering on the original scale. It stands for the
    inner model everywhere (its family, estimator, rounds, compiled form); only explanations differ: the
    inverse is not additive, so ``contributions`` is None and the explain stage samples Shapley values."""

    def __init__(self, inner: FittedModel, transform: TargetTransform) -> None:
        super().__init__(inner.estimator, {**inner.params, "target_transform": transform.kind}, inner.task)
        self.inner, self.transform = inner, transform
        self.family = inner.family
        self.best_iteration, self.rounds_run = inner.best_iteration, inner.rounds_run

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        return self.transform.inverse(self.inner.predict_raw(X))

    def row_function(self) -> Callable[[np.ndarray], np.ndarray] | None:
        make = getattr(self.inner, "row_function", None)
        fn = (make() if callable(make) else None) or self.inner.predict_raw
        inverse = self.transform.inverse
        return lambda X: inverse(fn(X))

    def prepare(self) -> None:
        self.inner.prepare()

    def with_rounds(self, rounds: int) -> FittedModel | None:
        inner = self.inner.with_rounds(rounds)
        if inner is None:
            return None
        cut = copy.copy(self)  # its fit's seconds, cap and clock as they were; the inner model and rounds cut
        cut.inner, cut.estimator, cut.best_iteration = inner, inner.estimator, inner.best_iteration
        return cut

    @property
    def resumable(self) -> bool:
        return self.inner.resumable

    def resume(self, units: int, *, learning_rate: float | None, deadline: Deadline) -> np.ndarray:
        out = self.inner.resume(units, learning_rate=learning_rate, deadline=deadline)
        self.best_iteration, self.rounds_run = self.inner.best_iteration, self.inner.rounds_run
        return self.transform.inverse(out)

    def release(self) -> None:
        self.inner.release()

    def feature_importance(self) -> np.ndarray | None:
        return self.inner.feature_importance()

    def __getattr__(self, name: str) -> Any:
        # what only some families have (``compile``/``attach_compiled``, ``compiled_suffix``): the inner's;
        # never for private names, or unpickling (which looks them up before ``inner`` is set) would recurse
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


FAMILIES: dict[str, ModelFamily] = {}


def register(cls: type[ModelFamily]) -> type[ModelFamily]:
    """Make a family available under its ``name``: ``register(MyFamily)``, or ``@register`` on the class."""
    FAMILIES[cls.name] = cls()
    return cls


def unregister(name: str) -> None:
    """Remove the family registered under ``name`` (a test's toy family, once the test is done)."""
    FAMILIES.pop(name, None)


def get_family(name: str) -> ModelFamily:
    from . import load_all

    load_all()
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"Unknown model family {name!r}: choose from {', '.join(sorted(FAMILIES))}.") from None
