"""Explain stage: what the model looks at overall, and why it predicts what it does for one row, in the
user's columns.

- ``explain_rows``, ``column_contributions`` (``contributions.py``): additive per-column contributions
- ``shap_importance``, ``permutation_importance``, ``builtin_importance`` (``importance.py``)
- ``partial_dependence`` (``partial_dependence.py``)
"""

from .contributions import column_contributions, explain_rows
from .importance import builtin_importance, permutation_importance, shap_importance
from .partial_dependence import partial_dependence

__all__ = ["builtin_importance", "column_contributions", "explain_rows", "partial_dependence",
           "permutation_importance", "shap_importance"]
