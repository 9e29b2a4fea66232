"""Evaluation stage: how good a model is on rows it did not learn from, how sure it is, and whether it is
really better than another.

- ``evaluate``: metrics with bootstrap intervals, curves, calibration, coverage, slices (``evaluate.py``)
- ``fit_calibrator``, ``expected_calibration_error`` (``calibration.py``)
- ``ConformalRegressor``, ``ConformalClassifier`` (``intervals.py``), fitted by ``fit_uncertainty``
- ``compare_models`` (``compare.py``), ``choose_threshold`` (``threshold.py``)
"""

from .calibration import expected_calibration_error, fit_calibrator
from .compare import compare_models
from .evaluate import evaluate
from .intervals import ConformalClassifier, ConformalRegressor
from .threshold import choose_threshold
from .uncertainty import fit_uncertainty, recalibrate

__all__ = ["ConformalClassifier", "ConformalRegressor", "choose_threshold", "compare_models", "evaluate",
           "expected_calibration_error", "fit_calibrator", "fit_uncertainty", "recalibrate"]
