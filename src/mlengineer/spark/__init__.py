"""spark stage."""

import os

# Spark runs a Python worker per core, side by side: OpenMP threads that spin while they
# wait would hold the cores the others need (training/models/threads.py); set before any learner loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
