"""serving stage."""

import os

# the server's workers each predict beside the others: OpenMP threads that spin while they
# wait would hold the cores the others need (training/models/threads.py); set before any learner loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
