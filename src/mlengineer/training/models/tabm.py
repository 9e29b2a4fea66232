"""Networks of several members in one (TabM-mini, Gorishniy et al. 2024), trained from scratch (the ``deep`` extra).

The mlp family's network with ``members`` k: each member multiplies the input by its own vector (random signs
at the start, learned), all go through the same hidden layers, each has its own output layer, and the answer
is their mean. k members learn at little more than one network's cost in parameters, and average out much of
one network's noise (``_torch_net.TabularMLP``). An epoch costs several times a plain network's on CPU
(measured, 256 wide, ms an epoch for 1, 4, 8, 16 members: car 40/76/127/225, letter 167/619/1,002/1,983), so
the family is tried only where the plain network is close to the lead (``follows``) and where the plan lets a
fit run enough epochs (``min_units``).
"""

from __future__ import annotations

from typing import Any

from .base import register
from .mlp import MLPFamily


@register
class TabMFamily(MLPFamily):
    name = "tabm"
    place = 5  # after XGBoost (registered before it), where it is tried at all (``follows``)
    place_large = 4
    place_multiclass = 2.75  # right after the plain network, before CatBoost
    follows = "mlp"
    min_units = 30
    relative_cost = 16.0

    def default_configs(self, task: Any, n_rows: int, n_features: int) -> list[dict[str, Any]]:
        return [{"hidden": 256, "layers": 3, "dropout": 0.1, "lr": 3e-3, "weight_decay": 1e-5, "members": 8}]

    def search_space(self, trial: Any, task: Any, n_rows: int) -> dict[str, Any]:
        return {**super().search_space(trial, task, n_rows),
                "members": trial.suggest_categorical("members", [4, 8, 16])}
