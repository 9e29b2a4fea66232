"""MLflow behind one client: the store, training runs, the model registry, and finding a model by any name.

- ``store``: which tracking store (``./mlruns.db`` by default) and the one handle on MLflow for it;
- ``runs``: a training run and its candidates recorded; the runs listed;
- ``registry``: register a bundle as a version, point an alias at one, resolve ``models:/NAME@ALIAS``;
- ``artifacts``: where a registered version's or a run's bundle lies on this machine (read in place if local);
- ``lookup``: a Model from a folder, a registry reference or a run id, checked before it is unpickled.
"""
