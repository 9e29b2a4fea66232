"""The safety stop behind a fit's planned units: a wall-clock deadline learners check between rounds."""

from __future__ import annotations

import time

__all__ = ["Deadline"]


class Deadline:
    """A wall-clock deadline that learners check between rounds: the safety stop behind the plan's cap on
    units (``FitContext.max_units``); a fit it ends is not reproducible (``stopped_by_time``)."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.perf_counter() + max(0.0, seconds)
        self.hit = False  # set once a check found the time up

    def left(self) -> float:
        return float("inf") if self.end is None else self.end - time.perf_counter()

    def passed(self) -> bool:
        if self.left() <= 0:
            self.hit = True
        return self.hit
