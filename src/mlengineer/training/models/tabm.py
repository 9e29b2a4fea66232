"""Networks of several members in one (TabM-mini, Gorishniy et al. 2024), trained from scratch (the ``deep`` extra).

The mlp family's network with ``members`` k: each member multiplies the input by its own vector (random signs
at the start, learned), all go through the same hidden layers, each has its own output layer, and the answer
is their mean. k members learn at little more than one network's cost in parameters, and average out much of
one network's noise (``_torch_net.TabularMLP``). An epoch costs several times a plain network's on CPU
(measured, 256 wide, ms an epoch for 1, 4, 8, 16 members: car 40/76/127/225, letter 167/619/1,002/1,983), so
the family is tried only where the plain network is close to the lead (``follows``) and where the plan lets a
fit run enough epochs (``min_units``), and only when named: at 60 s on 2 cores it did not pay in the default
portfolio.
"""

from __future__ import annotations

from typing import Any

from .base import register
from .mlp import MLPFamily


@register
class TabMFamily(MLPFamily):
    name = "tabm"
    # tried only when named (``families=["mlp", "tabm"]``): in the default portfolio (after the plain network)
    # it fired on 2 of the 24 tasks at 60 s and made both a little worse (vehicle 0.3673 -> 0.3699 test log
    # loss, blood_transfusion 0.7193 -> 0.7120 ROC AUC, the same measured costs), its epochs taking the plain
    # network's tuning time (bench/RESULTS.md, "Networks of several members")
    place = place_large = place_multiclass = None  # type: ignore[assignment]  # the plain network's are numbers
    follows = "mlp"
    min_units = 30
    relative_cost = 16.0

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [{"hidden": 256, "layers": 3, "dropout": 0.1, "lr": 3e-3, "weight_decay": 1e-5, "members": 8}]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {**super().search_space(trial, task, n_rows),
                "members": trial.suggest_categorical("members", [4, 8, 16])}
