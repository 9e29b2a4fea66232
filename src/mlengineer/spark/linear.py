"""Regularised linear models on the cluster with Spark MLlib, exported as the ordinary ``linear`` family's
fitted model (``OneHotScaler`` + a scikit-learn estimator carrying MLlib's coefficients), so the bundle
predicts, explains and serves them without Spark.

The one-hot and scaling step is fitted on the driver's sample as the local family fits it, then written as
Spark expressions (clip, impute, standardise; one-hot vectors from MLlib's encoder), so MLlib learns on
exactly the columns the exported model multiplies. The penalties are translated: scikit-learn's ``C`` and
``alpha`` weigh a sum over rows, MLlib's ``regParam`` a mean (over the rows' weights, where the table has them:
MLlib's ``weightCol``, as the local family's ``sample_weight``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..features.onehot import OneHotScaler
from ..training.models import get_family
from ..training.models.linear import LinearModel, clip_percent
from .prepare import LABEL, VALID, EncodedTable

__all__ = ["onehot_vectors", "train_linear"]

VECTOR = "__z"


def onehot_vectors(table: EncodedTable, prep: OneHotScaler) -> Any:
    """``table.frame`` with a vector column equal, row by row, to ``prep.transform`` of its features."""
    from pyspark.ml.feature import OneHotEncoder, VectorAssembler
    from pyspark.sql import functions as F

    frame = table.frame
    spark = frame.sparkSession
    cols, parts = [], []
    for i, j in enumerate(prep.num_):
        x = F.col(table.feature_columns[j]).cast("double")
        missing = x.isNull() | F.isnan(x)
        value = F.when(missing, float(prep.median_[i])).otherwise(
            F.least(F.greatest(x, F.lit(float(prep.lo_[i]))), F.lit(float(prep.hi_[i]))))
        cols.append(((value - float(prep.mean_[i])) / float(prep.scale_[i])).alias(f"__n{i}"))
        parts.append(f"__n{i}")
    for i in prep.flag_:
        x = F.col(table.feature_columns[prep.num_[i]])
        cols.append((x.isNull() | F.isnan(x)).cast("double").alias(f"__m{i}"))
        parts.append(f"__m{i}")
    codes, onehots = [], []
    for j, c in prep.cat_:
        x = F.col(table.feature_columns[j])
        cols.append(F.when(x.isNull() | F.isnan(x), c).otherwise(F.least(x, F.lit(float(c)))).cast("double")
                    .alias(f"__c{j}"))
        codes.append(f"__c{j}")
        onehots.append(f"__o{j}")
    weights = list(dict.fromkeys(w for w in (table.weight, table.fit_weight) if w is not None))
    frame = frame.select(LABEL, VALID, *weights, *cols)
    if codes:  # an encoder that has seen every code 0..c of each column makes vectors of size c + 1
        top = max(c for _, c in prep.cat_)
        seen = spark.createDataFrame([tuple(float(min(r, c)) for _, c in prep.cat_) for r in range(top + 1)], codes)
        encoder = OneHotEncoder(inputCols=codes, outputCols=onehots, dropLast=False).fit(seen)
        frame = encoder.transform(frame)
        parts += onehots
    return VectorAssembler(inputCols=parts, outputCol=VECTOR, handleInvalid="keep").transform(frame)


def train_linear(table: EncodedTable, sample_X: np.ndarray, *, params: dict[str, Any] | None = None,
                 max_iter: int = 30) -> LinearModel:
    """Logistic regression (classes) or ridge regression (values) by MLlib on the rows not held out, each
    counted by its weight where the table has weights."""
    import time

    from pyspark.ml.classification import LogisticRegression as SparkLogistic
    from pyspark.ml.regression import LinearRegression as SparkLinear
    from pyspark.sql import functions as F
    from sklearn.linear_model import LogisticRegression, Ridge

    t0 = time.perf_counter()
    task = table.task
    config = dict(params or get_family("linear").default_configs(task, table.n_train, len(table.feature_names))[0])
    prep = OneHotScaler(table.categorical, table.cardinalities, clip=clip_percent(task)).fit(sample_X)
    train = onehot_vectors(table, prep).where(~F.col(VALID))
    # the penalty against the loss summed over the rows (scikit-learn), or over their weights
    n = table.n_train if table.weight is None else table.weight_train
    weighted: dict[str, Any] = {} if table.fit_weight is None else {"weightCol": table.fit_weight}
    extra = {"_z_std": prep.transform(sample_X).std(axis=0), "_n_in": sample_X.shape[1]}
    if task.is_classification:
        # scikit-learn: C * sum(loss) + |w|^2 / 2; MLlib: mean(loss) + regParam * |w|^2 / 2
        fitted = SparkLogistic(featuresCol=VECTOR, labelCol=LABEL, regParam=1.0 / (float(config.get("C", 1.0)) * n),
                               elasticNetParam=0.0, standardization=False, maxIter=max_iter, tol=1e-6,
                               family="multinomial" if task.kind == "multiclass" else "binomial",
                               **weighted).fit(train)
        est = LogisticRegression(C=float(config.get("C", 1.0)))
        est.coef_ = np.asarray(fitted.coefficientMatrix.toArray(), dtype=np.float64)
        est.intercept_ = np.asarray(fitted.interceptVector.toArray(), dtype=np.float64)
        est.classes_ = np.arange(max(est.coef_.shape[0], 2))
        model = LinearModel((prep, est), {**config, **extra}, task)
    else:
        stats = train.agg(F.avg(LABEL).alias("m"), F.stddev_pop(LABEL).alias("s")).first()
        y_mean, y_scale = float(stats["m"]), float(stats["s"] or 1.0) or 1.0
        scaled = train.withColumn("__y", (F.col(LABEL) - y_mean) / y_scale)
        # scikit-learn: sum((y - Xw)^2) + alpha |w|^2; MLlib: mean((y - Xw)^2) / 2 + regParam |w|^2 / 2
        fitted = SparkLinear(featuresCol=VECTOR, labelCol="__y", regParam=float(config.get("alpha", 1.0)) / n,
                             elasticNetParam=0.0, standardization=False, solver="normal", **weighted).fit(scaled)
        est = Ridge(alpha=float(config.get("alpha", 1.0)))
        est.coef_ = np.asarray(fitted.coefficients.toArray(), dtype=np.float64)
        est.intercept_ = float(fitted.intercept)
        model = LinearModel((prep, est), {**config, **extra, "_y_mean": y_mean, "_y_scale": y_scale}, task)
    model.family = "linear"
    model.fit_seconds = time.perf_counter() - t0
    return model
