#!/usr/bin/env python3
"""Trains classic ML models with the real libraries and exports them with the real converters into
a Triton-layout model repository: what a user arrives with, made at test time, never committed.

  scikit-learn RandomForest / GradientBoosting  -> skl2onnx   (TreeEnsembleClassifier/Regressor)
  scikit-learn LogisticRegression, LinearRegression, StandardScaler/Normalizer/MinMaxScaler
  pipelines                                     -> skl2onnx   (LinearClassifier/Regressor,
                                                                Scaler, Normalizer)
  XGBoost classifier / regressor               -> onnxmltools (imports only ai.onnx.ml)
  LightGBM classifier / regressor              -> onnxmltools (missing-value tracking)

Classifiers are exported without ZipMap (skl2onnx `options={'zipmap': False}`, onnxmltools
`zipmap=False`): Fulcrum refuses ZipMap, whose maps the inference protocol cannot carry.

    .venv/bin/python scripts/make-ml-models.py DEST            # the test suite's models
    .venv/bin/python scripts/make-ml-models.py DEST --bench    # + xgboost_bench: 500 trees,
                                                                 #   depth 6, 100 features
Each model gets config.pbtxt (max_batch_size 256, dynamic batching) and a meta.json saying how
it was made and which inputs may hold NaN.
"""
import argparse
import json
import os
import warnings

import numpy as np

FEATURES = 12


def dataset(rng, rows, features, kind):
    x = rng.standard_normal((rows, features)).astype(np.float32)
    score = x[:, 0] + 0.8 * x[:, 1] * x[:, 2] - 0.5 * np.abs(x[:, 3]) + 0.3 * rng.standard_normal(rows)
    if kind == "binary":
        return x, (score > 0).astype(np.int64)
    if kind == "multiclass":
        return x, np.digitize(score, [-0.7, 0.4]).astype(np.int64)
    return x, (3 * score + 1).astype(np.float32)


def write(dest, name, model, meta):
    import onnx
    folder = os.path.join(dest, name)
    os.makedirs(os.path.join(folder, "1"), exist_ok=True)
    onnx.save(model, os.path.join(folder, "1", "model.onnx"))
    with open(os.path.join(folder, "config.pbtxt"), "w") as f:
        f.write(f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 256\ndynamic_batching {{ }}\n')
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump(meta, f)


def make(dest, bench=False):
    warnings.filterwarnings("ignore")
    import lightgbm
    import xgboost
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    from skl2onnx import to_onnx
    from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier,
                                  RandomForestRegressor)
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, Normalizer, StandardScaler

    rng = np.random.default_rng(2026)
    made = []

    def sklearn(name, estimator, kind, nan=False):
        x, y = dataset(rng, 600, FEATURES, kind)
        estimator.fit(x, y)
        options = {"zipmap": False} if kind != "regression" else None
        model = to_onnx(estimator, x[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
        write(dest, name, model, {"library": "scikit-learn", "estimator": type(estimator).__name__, "kind": kind,
                                  "features": FEATURES, "nan": nan})
        made.append(name)

    def onnxmltools(name, library, estimator, kind, features=FEATURES, rows=600, nan=True):
        x, y = dataset(rng, rows, features, kind)
        if nan:
            x[rng.random(x.shape) < 0.1] = np.nan  # both libraries learn where missing values go
        estimator.fit(x, y)
        types = [("X", FloatTensorType([None, features]))]
        if library == "xgboost":
            model = convert_xgboost(estimator, initial_types=types, target_opset=15)
        else:
            model = convert_lightgbm(estimator, initial_types=types, target_opset=15, zipmap=False)
        write(dest, name, model, {"library": library, "estimator": type(estimator).__name__, "kind": kind,
                                  "features": features, "nan": nan})
        made.append(name)

    sklearn("sklearn_random_forest_multiclass", RandomForestClassifier(n_estimators=25, max_depth=6, random_state=1), "multiclass")
    sklearn("sklearn_random_forest_binary", RandomForestClassifier(n_estimators=25, max_depth=6, random_state=2), "binary")
    sklearn("sklearn_gradient_boosting_binary", GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=3), "binary")
    sklearn("sklearn_gradient_boosting_multiclass", GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=4), "multiclass")
    sklearn("sklearn_random_forest_regressor", RandomForestRegressor(n_estimators=25, max_depth=6, random_state=5), "regression")
    sklearn("sklearn_gradient_boosting_regressor", GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=6), "regression")
    sklearn("sklearn_logistic_binary", LogisticRegression(), "binary")
    sklearn("sklearn_logistic_multiclass", LogisticRegression(), "multiclass")
    sklearn("sklearn_scaled_logistic_pipeline", make_pipeline(StandardScaler(), Normalizer(), LogisticRegression()), "multiclass")
    sklearn("sklearn_linear_regression", LinearRegression(), "regression")
    sklearn("sklearn_minmax_ridge_pipeline", make_pipeline(MinMaxScaler(), Ridge()), "regression")
    onnxmltools("xgboost_binary", "xgboost", xgboost.XGBClassifier(n_estimators=40, max_depth=4, n_jobs=1), "binary")
    onnxmltools("xgboost_multiclass", "xgboost", xgboost.XGBClassifier(n_estimators=20, max_depth=4, n_jobs=1), "multiclass")
    onnxmltools("xgboost_regressor", "xgboost", xgboost.XGBRegressor(n_estimators=40, max_depth=4, n_jobs=1), "regression")
    onnxmltools("lightgbm_binary", "lightgbm", lightgbm.LGBMClassifier(n_estimators=40, num_leaves=15, verbose=-1, n_jobs=1), "binary")
    onnxmltools("lightgbm_multiclass", "lightgbm", lightgbm.LGBMClassifier(n_estimators=20, num_leaves=15, verbose=-1, n_jobs=1), "multiclass")
    onnxmltools("lightgbm_regressor", "lightgbm", lightgbm.LGBMRegressor(n_estimators=40, num_leaves=15, verbose=-1, n_jobs=1), "regression")
    if bench:
        # Issue 16's benchmark shape: 500 trees of depth 6 over 100 features (binary:logistic).
        onnxmltools("xgboost_bench", "xgboost", xgboost.XGBClassifier(n_estimators=500, max_depth=6, n_jobs=2),
                    "binary", features=100, rows=20000, nan=False)
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest")
    parser.add_argument("--bench", action="store_true", help="also the 500-tree XGBoost model for fulcrum-bench")
    args = parser.parse_args()
    for name in make(args.dest, bench=args.bench):
        print(os.path.join(args.dest, name))


if __name__ == "__main__":
    main()
