"""Can clients of one model call another unchanged? The contract of two bundles compared: what clients send
(the inputs) and what they get back (the outputs).

Clients of a served model send its feature columns, with values its validation accepts (numbers for a
numeric column, text or numbers for a categorical one, ...). A new model keeps those clients working when
it needs no column they do not send, knows every column they do send or may send (the server refuses unknown
columns by default, and ignores the columns a model knows but does not use: an identifier, a dropped column, the
target), and accepts for each column the kind of value they send. ``input_problems`` lists what breaks.

Clients then read what the model answers: a number for a regression, a label and one probability per class
for a classifier. A new model keeps them working when it is the same kind of task (regression, binary or
multiclass), predicts the same target, and (a classifier) still predicts every class they get now; a class
added is fine, one removed is not. ``output_problems`` lists what breaks.

``client_problems`` is both; registry promotions and a server's hot swap refuse a model with problems.
"""

from __future__ import annotations

from typing import Any

from ..data.clean import Conform

__all__ = ["client_problems", "input_contract", "input_problems", "output_problems"]

#: what a column of each role accepts, by the role of the column clients were sending to
_ACCEPTS = {
    "numeric": {"numeric"},
    "boolean": {"boolean"},
    "datetime": {"datetime"},
    "categorical": {"numeric", "boolean", "categorical", "text", "datetime", "identifier"},
    "text": {"numeric", "boolean", "categorical", "text", "datetime", "identifier"},
}

#: what clients get from a model of each task kind
_ANSWERS = {"regression": "a number", "binary": "a label of two classes and their probabilities",
            "multiclass": "a label of several classes and their probabilities"}


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
    problems += [f"it does not know column {c!r}, which the current model accepts and ignores (clients that send "
                 "it would have their rows refused)" for c in dict.fromkeys(was["known"])
                 if c not in was["features"] and c not in known and c != old.target]  # a new target: an output problem
    for c, role in now["features"].items():
        sent = was["features"].get(c)
        if sent is not None and sent not in _ACCEPTS.get(role, {role}):
            problems.append(f"column {c!r} is {role} now and was {sent}: the values clients send would be refused")
    return problems


def output_problems(old: Any, new: Any) -> list[str]:
    """Why clients reading the answers of ``old`` would be misled by those of ``new``: another kind of task,
    another target, or (a classifier) classes they get now that it never predicts. Each a short phrase."""
    problems: list[str] = []
    was, now = str(old.task.kind), str(new.task.kind)
    if was != now:
        problems.append(f"it is a {now} model and the current one is {was}: clients that get "
                        f"{_ANSWERS.get(was, was)} would get {_ANSWERS.get(now, now)}")
    if str(old.target) != str(new.target):
        problems.append(f"it predicts {new.target!r} and the current model predicts {old.target!r}")
    if was == now and old.task.is_classification:
        kept = {_label(c) for c in new.classes}
        removed = [c for c in old.classes if _label(c) not in kept]
        if removed:
            listed = ", ".join(repr(c) for c in removed[:5]) + (", ..." if len(removed) > 5 else "")
            problems.append(f"it never predicts the class{'es' if len(removed) > 1 else ''} {listed}, which "
                            f"clients get now (its classes are {', '.join(repr(c) for c in new.classes[:10])})")
    return problems


def client_problems(old: Any, new: Any) -> list[str]:
    """Why clients of ``old`` would fail against ``new``, inputs then outputs (empty when they would not)."""
    return output_problems(old, new) + input_problems(old, new)


def _label(c: Any) -> tuple[str, Any]:
    """A class label as clients see it: 1 and '1' differ (a number and a text in JSON), 1 and 1.0 do not."""
    item = getattr(c, "item", None)
    v = item() if callable(item) else c
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int | float):
        return ("number", float(v))
    return (type(v).__name__, v)
