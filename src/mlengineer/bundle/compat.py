"""Can clients of one model call another unchanged? The input contract of two bundles compared.

Clients of a served model send its feature columns, with values its validation accepts (numbers for a
numeric column, text or numbers for a categorical one, ...). A new model keeps those clients working when
it needs no column they do not send, knows every column they do send (the server refuses unknown columns by
default), and accepts for each column the kind of value they send. ``input_problems`` lists what breaks;
registry promotions and a server's hot swap refuse a model with problems.
"""

from __future__ import annotations

from typing import Any

from ..data.clean import Conform

__all__ = ["input_contract", "input_problems"]

#: what a column of each role accepts, by the role of the column clients were sending to
_ACCEPTS = {
    "numeric": {"numeric"},
    "boolean": {"boolean"},
    "datetime": {"datetime"},
    "categorical": {"numeric", "boolean", "categorical", "text", "datetime", "identifier"},
    "text": {"numeric", "boolean", "categorical", "text", "datetime", "identifier"},
}


def input_contract(model: Any) -> dict[str, Any]:
    """The inputs a model takes: feature columns with their roles, and every column it knows (features,
    plus identifiers, dropped columns and the target, which a server ignores rather than refuses)."""
    conform = next((s for s in model.plan.steps if isinstance(s, Conform)), None)
    roles = dict(conform.roles) if conform is not None else {}  # the roles the server validates by
    known = [c.name for c in model.schema.columns] + [model.target]
    return {"features": {c: str(roles.get(c, "numeric")) for c in model.feature_names}, "known": known}


def input_problems(old: Any, new: Any) -> list[str]:
    """Why clients of ``old`` would fail against ``new`` (empty when they would not): each a short phrase."""
    was, now = input_contract(old), input_contract(new)
    problems = [f"it needs column {c!r}, which clients of the current model do not send"
                for c in now["features"] if c not in was["features"]]
    known = set(now["known"])
    problems += [f"it does not know column {c!r}, which clients send (the server would refuse their rows)"
                 for c in was["features"] if c not in known]
    for c, role in now["features"].items():
        sent = was["features"].get(c)
        if sent is not None and sent not in _ACCEPTS.get(role, {role}):
            problems.append(f"column {c!r} is {role} now and was {sent}: the values clients send would be refused")
    return problems
