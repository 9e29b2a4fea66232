"""monitoring stage: the prediction log, live rows compared with the bundle's reference sample (drift per
column, data quality, performance estimated without outcomes and measured with them), the server's rolling
gauges, and the retraining loop (challenger, paired test, promotion, rollback).

    >>> from mlengineer.monitoring.run import monitor_model
    >>> model, result = monitor_model("models:/price@champion", log="logs/", window="1d")   # doctest: +SKIP
"""
