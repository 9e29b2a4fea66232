"""What the report's importance figure speaks for: the members of the ensemble its stored importance measures,
the share of the model's weight they carry, and why the others were left out; and which ranking of the columns
the partial-dependence panels follow (the permutation importance on the given rows, which measures the whole
model, where the stored one speaks for too little of it)."""

from __future__ import annotations

from typing import Any

from .summary import IMPORTANCE_COVERS, importance_covers, share

__all__ = ["importance_caption", "left_out_members", "panel_ranking"]


def left_out_members(model: Any) -> list[tuple[str, float, str]]:
    """The ensemble's members the stored importance leaves out, each with its share of the model's weight and
    why: under mean |SHAP|, the members without an exact attribution (training ranks columns by the others where
    there are any); under the learners' own gain or impurity, the members without such a measure."""
    from ..explain.contributions import is_sampled, sampled_reason

    members = list(getattr(model.predictor, "members", None) or [])
    total = sum(w for _, _, w in members) or 1.0
    method = str(model.metadata.get("importance_method") or "learners' gain")
    if method.startswith("mean |SHAP|"):
        left = [(n, w / total, sampled_reason(m)) for n, m, w in members if is_sampled(m)]
        return left if len(left) < len(members) else []  # all sampled: every member was explained by sampling
    out = []
    for n, m, w in members:
        measure = getattr(m, "feature_importance", None)
        if measure is None or measure() is None:
            out.append((n, w / total, "no gain or impurity measure of its own"))
    return out if len(out) < len(members) else []


def importance_caption(model: Any) -> str:
    """The importance figure's caption: what it measures, for which members, the share of the model's weight
    they carry, and each member left out with its weight and the reason."""
    method = str(model.metadata.get("importance_method") or "learners' gain")
    left = left_out_members(model)
    if not left:
        return f"Share of the model's attention per column ({method})."
    measure = "mean |SHAP| on training rows" if method.startswith("mean |SHAP|") else "the learners' own gain/impurity"
    names = {n for n, _, _ in left}
    kept = [n for n, _, _ in model.predictor.members if n not in names]
    covers = 1.0 - sum(w for _, w, _ in left)
    words = "; ".join(f"{n} ({share(w)} of the weight: {why})" for n, w, why in left)
    names_said = kept[0] if len(kept) == 1 else f"{', '.join(kept[:-1])} and {kept[-1]}"
    who = "the member that carries" if len(kept) == 1 else "the members that carry"
    caption = (f"Share of the attention per column of {names_said}, {who} {share(covers)} of "
               f"the model's weight ({measure}). Left out: {words}.")
    if measure.startswith("mean"):
        caption += (" A member without an exact attribution could only be explained by sampling Shapley values, "
                    "hundreds of predictions a row, which training did not spend on this ranking.")
    return caption


def panel_ranking(model: Any, importance: dict[str, float],
                  permutation: dict[str, dict[str, float]] | None) -> dict[str, float]:
    """The columns the partial-dependence panels show, most important first: the stored importance, or where it
    speaks for less than ``IMPORTANCE_COVERS`` of the model, the permutation importance on the given rows (the
    same ranking as the summary's sentence on what matters), where there is one."""
    gains = {k: v["mean"] for k, v in (permutation or {}).items() if v["mean"] > 0}
    if importance_covers(model.metadata) < IMPORTANCE_COVERS and gains:
        return dict(sorted(gains.items(), key=lambda kv: -kv[1]))
    return importance
