"""Global feature importance per input column."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["builtin_importance"]


def builtin_importance(encoder: Any, predictor: Any) -> dict[str, float]:
    """Importance per input column from the learners' own measures (gain, impurity), weighted by each
    member's ensemble weight and summed over the features derived from one column; shares sum to 1.
    Members without a built-in measure are left out; an empty dict if none has one."""
    total: dict[str, float] = {}
    names = list(encoder.feature_names_)
    for _, model, weight in predictor.members:
        imp = model.feature_importance()
        if imp is None or len(imp) != len(names):
            continue
        imp = np.asarray(imp, dtype=float)
        s = imp.sum()
        if not s > 0:
            continue
        for name, v in zip(names, imp / s, strict=True):
            col = encoder.source_column(name)
            total[col] = total.get(col, 0.0) + weight * float(v)
    norm = sum(total.values())
    if not norm:
        return {}
    return dict(sorted(((k, v / norm) for k, v in total.items()), key=lambda kv: -kv[1]))
