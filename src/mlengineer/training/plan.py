"""The search plan: time counted in work units, not read off the clock, so that a seeded run repeats.

Before a family's first candidate, its configuration is fitted briefly on the first fold (a *probe*: one
unit, then ``PROBE_UNITS`` and more until they take measurable time; a unit is a boosting round, a tree or an epoch), and the seconds it took become
a fixed cost and a cost per unit, each rounded to a half power of two (after one untimed fit that pays for imports). From then on the search spends *planned*
seconds (``WorkClock``): a candidate costs its fixed cost plus the units it ran (the rounds early stopping
reached, the trees grown) times the unit cost, and a fit's time limit becomes a cap on its units. Only a
safety stop reads the clock (the search at ``SAFETY_SEARCH`` times its planned seconds, a fit at 1.5 times
that); when it fires, the run records why it may not repeat. A first run on a table also holds the budget's
real seconds (``WorkClock``'s ``hold``): where that stopped it is remembered, and a rerun stops there too.

Every measured number that steers the plan (the probes, the time spent before the search, each candidate's
single-row latency) is rounded, then remembered per machine and table (``Measurements``, in
``~/.cache/mlengineer/costs``), so that a later run on the same table plans the same even when the machine is
busier than it was.

A probe fits a few early rounds on a sample and extrapolates: on a large table its price can be off by a
factor of two (a multiclass booster's first rounds dearer than its later ones, the rows' exponent rounded to a
quarter). So a family's first candidate checks it: where its fits took at least ``CALIBRATE_SECONDS`` and
less than the planned seconds, the family's costs are scaled by the ratio, rounded like the probe's numbers
and remembered with them (``calibration``), and that candidate is charged again at the scaled costs. A later
run reads the ratio back and applies it at the same point of the search.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..data.files import atomic_path, cache_dir
from .models import FAMILIES, FitContext, FittedModel

__all__ = ["CANDIDATE_OVERHEAD", "FamilyCost", "Measurements", "bucket", "calibration",
           "probe_family", "probe_rows", "probe_seconds", "units_run"]

#: units of the probe's second fit (its first fits one unit: the difference is the cost per unit), doubled
#: up to ``MAX_PROBE_UNITS`` until the difference takes ``PROBE_SECONDS``
PROBE_UNITS = 2
MAX_PROBE_UNITS = 64
#: the fewest units of the probe's longer fit (a family may ask more, ``ModelFamily.probe_units``): the
#: difference between fits of one and two rounds is within a busy machine's noise (measured: 88 ms read for a
#: 21 ms round)
MIN_PROBE_UNITS = 8
#: where the fold has this many times the probe's rows, the longer fit runs once more on that many, and the
#: costs grow with the rows by the exponent the two sizes show (a quarter step, MIN_EXPONENT to the family's
#: ``max_row_exponent``: 1, k-NN's 2)
SIZE_RATIO = 4
MIN_EXPONENT = 0.25
#: each probe fit is timed this many times, the least kept
PROBE_REPEATS = 2
PROBE_SECONDS = 0.05
#: the probe fits on a twentieth of the fold's rows, at least PROBE_ROWS and at most MAX_PROBE_ROWS; costs
#: scale with the rows from there (scaled 100x from 10,000 rows, a 1M-row table's fits ran longer than planned)
PROBE_ROWS = 10_000
MAX_PROBE_ROWS = 50_000
#: planned seconds a candidate costs beyond its fits (its latency measured, its score, Optuna's turn): cheap
#: learners tuned by the dozen would otherwise be planned at nothing
CANDIDATE_OVERHEAD = 0.03
#: a family's first candidate checks the probe's price where its fits took at least this many real seconds
#: (shorter ones are within the timer's and the scheduler's noise), making it at most MAX_CALIBRATION times
#: cheaper
CALIBRATE_SECONDS = 1.0
MAX_CALIBRATION = 4.0
#: the layout of what ``Measurements`` keeps, and the order it was measured in: a new one measures afresh (10: with
#: ten classes or more the network goes first, and a calibration stored when it went third priced it 1.4-1.8x
#: its real seconds on the letters)
CACHE_VERSION = 10


def bucket(value: float, floor: float) -> float:
    """``value`` rounded to the nearest half power of two (1, 1.41, 2, 2.83, ...; at least ``floor``):
    measurements that differ by the noise of a busy machine land on the same number, so the plan built on
    them does not move, and the plan's seconds stay within a fifth of the measured ones."""
    return float(2.0 ** (round(2 * math.log2(max(value, floor))) / 2))


def units_run(model: FittedModel) -> int:
    """Units a fitted model ran: rounds for boosters and networks, trees for forests, 0 for the rest."""
    if model.rounds_run is not None:
        return int(model.rounds_run)
    return int(model.params.get("n_estimators", 0) or 0)


def work_factor(params: dict[str, Any], n_features: int) -> float:
    """How much a unit of ``params`` costs, up to a constant: deeper trees, wider networks and larger
    shares of rows and columns cost more per round. Only ratios between two configurations are used."""
    f = 1.0
    if "num_leaves" in params:  # more leaves, more splits to find each round (measured: 128 vs 31, 2.6x)
        f *= float(params["num_leaves"]) ** 0.7
    if "max_depth" in params:  # depth-wise trees stop splitting where the rows run out: about linear
        f *= max(float(params["max_depth"]), 1.0)
    if "depth" in params:  # CatBoost's symmetric trees: each level doubles the leaves (measured: 4 -> 6 -> 8,
        f *= 2.0 ** (0.6 * float(params["depth"]))  # 2.1-2.3x a step on numbers, 1.3-1.4x on categories)
    for key in ("feature_fraction", "colsample_bytree", "rsm", "subsample", "bagging_fraction"):
        f *= float(params.get(key, 1.0))
    mf = params.get("max_features")
    if mf == "sqrt":
        f *= math.sqrt(n_features) / max(n_features, 1)
    elif isinstance(mf, float | int) and not isinstance(mf, bool):
        f *= float(mf) if float(mf) <= 1 else float(mf) / max(n_features, 1)
    if "hidden" in params:  # an epoch on 2,000 and 20,000 rows, one thread, against 256 wide and 3 layers: 128x2
        # 0.34-0.40, 256x2 0.59-0.66, 256x4 1.0-1.1, 512x3 2.1, 512x4 2.7-3.7 (a mini-batch's fixed costs and
        # the first and last layers keep it far from the hidden layers' product, the width squared)
        f *= float(params["hidden"]) / 256 * (int(params.get("layers", 3)) + 1) / 4
    if "members" in params:  # a network of k members: measured 5.6x (car) to 12x (letter) for 16 against 1
        f *= float(params["members"]) ** 0.8
    return f


@dataclass
class FamilyCost:
    """One family's probed costs, rounded: seconds per fit and per unit for ``rows`` training rows."""

    fixed: float
    unit: float
    rows: int
    params: dict[str, Any] = field(default_factory=dict)
    n_features: int = 1
    probe_units: int = PROBE_UNITS  # units of the probe's longer fit
    #: how the costs grow with the rows: ``(rows / self.rows) ** exponent``, measured by the probe on two
    #: sizes where the fold is much larger than its rows (a round of histogram boosting on ten columns costs
    #: nearly the same on 10,000 rows as on 64,000), else 1
    exponent: float = 1.0
    #: what a unit past the probe's ``probe_units`` costs relative to theirs (``ModelFamily.late_unit_cost``)
    late: float = 1.0
    #: the rows of the probe's fit on the larger size (0: none, the fold was not large enough)
    larger_rows: int = 0

    def _units(self, units: int) -> float:
        """``units`` counted at the probe's price: those past the probe's longer fit at ``late`` times it."""
        return min(units, self.probe_units) + self.late * max(units - self.probe_units, 0)

    def _scale(self, rows: int) -> float:
        return (max(rows, 1) / max(self.rows, 1)) ** self.exponent

    def _per_unit(self, params: dict[str, Any]) -> float:
        return self.unit * work_factor(params, self.n_features) / work_factor(self.params, self.n_features)

    def seconds(self, params: dict[str, Any], units: int, rows: int) -> float:
        """Planned seconds of a fit of ``params`` that ran ``units`` on ``rows`` training rows."""
        return (self.fixed + self._units(units) * self._per_unit(params)) * self._scale(rows)

    def max_units(self, params: dict[str, Any], limit: float, rows: int) -> int | None:
        """The most units a fit may run in ``limit`` planned seconds (at least one); None without units."""
        if self.unit <= 0:
            return None
        per = self._per_unit(params) * self._scale(rows)
        priced = (limit - self.fixed * self._scale(rows)) / per  # units at the probe's price
        if priced > self.probe_units:
            priced = self.probe_units + (priced - self.probe_units) / self.late
        return max(1, int(priced))

    def scaled(self, factor: float) -> FamilyCost:
        """The same costs ``factor`` times dearer (``calibration``)."""
        return replace(self, fixed=self.fixed * factor, unit=self.unit * factor)

    def as_dict(self) -> dict[str, Any]:
        return {"fixed": self.fixed, "unit": self.unit, "rows": self.rows, "exponent": self.exponent,
                "late": self.late}


def calibration(real: float, planned: float) -> float:
    """What a family's costs are scaled by after its first candidate, whose fits took ``real`` seconds for
    ``planned`` ones: their ratio rounded up to a half power of two, at least 1 / ``MAX_CALIBRATION``; 1 where
    the fits were too short to tell, or did not take under 0.71 of their plan.

    Only cheaper: the first candidate's cap on rounds was set at the probe's price, so charging it more
    afterwards takes the time from the families after it (letter: LightGBM's first fits 1.7 times their plan,
    charged so, left no time for the network that wins there, 0.077 -> 0.125 test log loss); fits dearer
    than planned are the safety stop's. Rounded up, never to below what the fits showed: the refit on all
    rows and other configurations extrapolate from the price (rounded to the nearest step, 0.8 became 0.71
    and bank marketing's run took 69-71 s of 60)."""
    if real < CALIBRATE_SECONDS or planned <= 0:
        return 1.0
    ratio = max(real / planned, 1 / MAX_CALIBRATION)
    return float(min(2.0 ** (math.ceil(2 * math.log2(ratio) - 1e-9) / 2), 1.0))


class Measurements:
    """Rounded measurements, remembered per machine and table in a JSON file: ``get(key, measure)``
    answers the stored value, or measures, rounds and stores it. ``MLENGINEER_COST_CACHE=0`` turns the
    memory off (each run measures afresh: a value near a rounding edge may then come out differently)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, *, n_jobs: int, families: list[str]) -> None:
        self.values: dict[str, Any] = {}
        self.reused = False
        self.path: Path | None = None
        if os.environ.get("MLENGINEER_COST_CACHE", "1") in ("0", "false", "off"):
            return
        self.path = cache_dir() / "costs" / f"{_signature(X, y, n_jobs, families)}.json"
        try:
            stored = json.loads(self.path.read_text())
            if stored.get("version") == CACHE_VERSION:
                self.values, self.reused = dict(stored.get("values", {})), True
        except (OSError, ValueError):
            pass

    def get(self, key: str, measure: Any) -> Any:
        if key not in self.values:
            self.values[key] = measure()
        return self.values[key]

    def discard(self) -> None:
        """Forget what is remembered for this table (a later run measures afresh)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def save(self) -> None:
        """Write the file (atomically; a cache that cannot be written only means measuring next time)."""
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps({"version": CACHE_VERSION, "values": self.values}, sort_keys=True))
        except Exception:  # noqa: BLE001 - a read-only home must not cost a trained model
            pass


def _signature(X: np.ndarray, y: np.ndarray, n_jobs: int, families: list[str]) -> str:
    """What the costs depend on: the table (shape and a sample of its values), the threads, the machine's
    processor and the learners' versions. Not how the threads wait (``models/threads.py``): that follows
    how busy the machine is, and a run on a busy machine plans as one on an idle one, taking longer."""
    h = hashlib.sha256()
    rows = np.linspace(0, len(X) - 1, min(len(X), 2_000)).astype(np.int64) if len(X) else np.zeros(0, np.int64)
    h.update(np.ascontiguousarray(X[rows]).tobytes())
    h.update(np.ascontiguousarray(np.asarray(y)[rows]).tobytes())
    versions = {}
    for pkg in ("mlengineer", "numpy", "scikit-learn", "lightgbm", "xgboost", "xgboost-cpu", "catboost", "torch"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    h.update(json.dumps({"shape": list(X.shape), "dtype": str(X.dtype), "n_jobs": n_jobs, "families": families,
                         "cpu": _cpu_name(), "cores": os.cpu_count(), "machine": platform.machine(),
                         "versions": versions}, sort_keys=True).encode())
    return h.hexdigest()[:32]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def probe_rows(fold: tuple[np.ndarray, np.ndarray], seed: int, *, times: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The first fold's rows the probes fit on: a twentieth of them (``PROBE_ROWS`` to ``MAX_PROBE_ROWS``) to
    train, half as many to validate; ``times`` as many for the probe's second size (``SIZE_RATIO``)."""
    tr, va = fold
    rng = np.random.default_rng(seed)
    n = min(max(PROBE_ROWS, len(tr) // 20), MAX_PROBE_ROWS) * times
    if len(tr) > n:
        tr = np.sort(rng.choice(tr, n, replace=False))
    if len(va) > n // 2:
        va = np.sort(rng.choice(va, n // 2, replace=False))
    return tr, va


def probe_family(X: np.ndarray, y: np.ndarray, rows: tuple[np.ndarray, np.ndarray], ctx: FitContext, name: str,
                 params: dict[str, Any], *, workers: int, threads: int, memo: Measurements,
                 known: dict[str, FamilyCost], larger: tuple[np.ndarray, np.ndarray] | None = None) -> FamilyCost:
    """A family's costs on this data, from short fits of ``params`` on the probe ``rows``, fitted the way the
    search will (``workers`` folds side by side, ``threads`` each), rounded and remembered in ``memo``; with
    ``larger`` rows (``SIZE_RATIO`` times as many, where the fold has them) the longer fit once more on
    those, for how the costs grow with the rows. A family whose probe fails is priced from one ``known`` by
    its ``relative_cost`` (its candidates will likely fail too, and say why)."""
    tr, va = rows
    stored = memo.get(f"probe:{name}", lambda: _probe(X, y, tr, va, ctx, name, params, workers, threads, larger))
    if stored is not None:
        return FamilyCost(stored["fixed"], stored["unit"], stored["rows"], dict(params), X.shape[1],
                          int(stored.get("units", PROBE_UNITS)), float(stored.get("exponent", 1.0)),
                          float(stored.get("late", 1.0)), int(stored.get("larger_rows", 0)))
    ref = next(iter(known.values()), None)
    rel = FAMILIES[name].relative_cost
    return FamilyCost(ref.fixed * rel if ref else 1.0, ref.unit * rel if ref else 0.01, ref.rows if ref else len(tr),
                      dict(params), X.shape[1], exponent=FAMILIES[name].max_row_exponent)


def probe_seconds(cost: FamilyCost) -> float:
    """What a family's probe cost, at the costs it found (planned, so a run that read them back plans the
    same): ``PROBE_REPEATS`` fits of one unit and of the longer fit (and that once on the larger rows)."""
    one = cost.fixed + cost.unit
    longer = cost.fixed + cost.probe_units * cost.unit if cost.unit else 0.0
    larger = (longer or one) * (cost.larger_rows / cost.rows) ** cost.exponent if cost.larger_rows else 0.0
    return PROBE_REPEATS * (one + longer) + larger


def _probe(X: np.ndarray, y: np.ndarray, tr: np.ndarray, va: np.ndarray, ctx: FitContext, name: str,
           params: dict[str, Any], workers: int, threads: int,
           larger: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any] | None:
    family = FAMILIES[name]
    family.warm_up()
    es = family.early_stopping

    def one(units: int, rows: tuple[np.ndarray, np.ndarray]) -> int:
        t, v = rows
        weight = None if ctx.sample_weight is None else ctx.sample_weight[t]
        c = FitContext(**{**ctx.__dict__, "n_jobs": threads, "sample_weight": weight, "max_units": units,
                          "time_limit": None})
        model = family.fit(X[t], y[t], c, dict(params), X[v] if es else None, y[v] if es else None)
        model.predict_raw(X[v])
        return units_run(model)

    def fit(units: int, rows: tuple[np.ndarray, np.ndarray] = (tr, va)) -> tuple[float, int]:
        # as many at once as the search fits folds side by side: they share the cores as folds will
        t0 = time.perf_counter()
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                done = list(pool.map(lambda u: one(u, rows), [units] * workers))[0]
        else:
            done = one(units, rows)
        return time.perf_counter() - t0, done

    try:
        fit(1)  # untimed: the learner's imports and first-call setup are not a cost of every fit
        # the least of a few, each time: what a fit costs when nothing interrupts it, the most repeatable number
        t1, u1 = min(fit(1) for _ in range(PROBE_REPEATS))
        larger_rows = len(larger[0]) if larger is not None and len(larger[0]) >= 2 * len(tr) else 0

        def grows(t_small: float, units: int) -> float:
            """The exponent of the costs' growth with the rows, from the fit of ``units`` on the larger rows."""
            assert larger is not None
            tl, _ = fit(units, larger)
            ratio = len(larger[0]) / len(tr)
            return float(np.clip(round(4 * np.log(max(tl, 1e-9) / max(t_small, 1e-9)) / np.log(ratio)) / 4,
                                 MIN_EXPONENT, family.max_row_exponent))

        if u1 == 0:  # no units: one fit is the whole cost
            return {"fixed": bucket(t1, 1e-3), "unit": 0.0, "rows": int(len(tr)),
                    "exponent": grows(t1, 1) if larger_rows else family.max_row_exponent, "larger_rows": larger_rows}
        least = family.probe_units or MIN_PROBE_UNITS
        units = max(PROBE_UNITS, least)
        while True:  # until the units' own time is more than the timer's and the scheduler's noise
            tn, un = min(fit(units) for _ in range(PROBE_REPEATS))
            if (tn - t1 >= PROBE_SECONDS and units >= least) or un < units or units >= MAX_PROBE_UNITS:
                break
            units *= 2
        exponent = grows(tn, units) if larger_rows else family.max_row_exponent
    except Exception:  # noqa: BLE001 - the search will say what fails about the family
        return None
    unit = max(tn - t1, 0.0) / max(un - u1, 1)
    return {"fixed": bucket(max(t1 - unit * u1, 0.0), 1e-3), "unit": bucket(unit, 1e-4), "rows": int(len(tr)),
            "units": int(un), "exponent": exponent, "late": family.late_unit_cost(ctx, larger_rows or len(tr)),
            "larger_rows": larger_rows}
