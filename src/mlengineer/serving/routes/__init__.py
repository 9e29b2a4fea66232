"""The service's endpoints, one module per protocol, each a ``router(service)`` over one ``Service``:

- ``oip.py``: Open Inference Protocol v2 (``/v2``, ``/v2/health/*``, ``/v2/models/...``);
- ``mlflow.py``: MLflow's scoring protocol (``/invocations``, ``/ping``, ``/health``, ``/version``);
- ``records.py``: plain JSON records (``/predict``);
- ``explain.py``: ``/explain``;
- ``operations.py``: ``/metrics``.

A new endpoint goes into the module of its protocol (or a new module here, included by ``app.create_app``).
A route reads ``service.served`` when a request arrives, never before, so a hot swap reaches it; a route that
takes rows decodes its body with ``protocols.py`` and passes the columns to ``service.predict`` or
``service.validate``, the one validation path.
"""
