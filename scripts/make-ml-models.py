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
    .venv/bin/python scripts/make-ml-models.py DEST --cnn      # ResNet-18-shaped and MobileNet-style
                                                               #   CNNs (onnx helper, 224×224)
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


def write(dest, name, model, meta, batching="max_batch_size: 256\ndynamic_batching { }\n"):
    import onnx
    folder = os.path.join(dest, name)
    os.makedirs(os.path.join(folder, "1"), exist_ok=True)
    onnx.save(model, os.path.join(folder, "1", "model.onnx"))
    with open(os.path.join(folder, "config.pbtxt"), "w") as f:
        f.write(f'name: "{name}"\nplatform: "onnxruntime_onnx"\n{batching}')
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


def make_cnns(dest):
    """ResNet-18's layer shapes and a MobileNet-style net, built with the onnx helper (He-initialised
    random weights, BatchNormalization with random statistics), 224×224 RGB input, batch up to 8."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(18)
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv(x, name, cin, cout, k, stride=1, pad=None, group=1, act="Relu", bias=False):
        pad = k // 2 if pad is None else pad
        w = rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / (cin // group * k * k))
        inputs = [x, const(name + ".w", w)] + ([const(name + ".b", rng.standard_normal(cout) * 0.1)] if bias else [])
        nodes.append(helper.make_node("Conv", inputs, [name + ".c"], strides=[stride, stride], pads=[pad] * 4, group=group))
        bn = [const(name + ".g", 1 + 0.1 * rng.standard_normal(cout)), const(name + ".beta", 0.1 * rng.standard_normal(cout)),
              const(name + ".mean", 0.1 * rng.standard_normal(cout)), const(name + ".var", 1 + 0.1 * np.abs(rng.standard_normal(cout)))]
        nodes.append(helper.make_node("BatchNormalization", [name + ".c"] + bn, [name + ".n"], epsilon=1e-5))
        if act is None:
            return name + ".n"
        nodes.append(helper.make_node(act, [name + ".n"], [name + ".a"]))
        return name + ".a"

    def head(x, channels, name):
        nodes.append(helper.make_node("GlobalAveragePool", [x], [name + ".gap"]))
        nodes.append(helper.make_node("Flatten", [name + ".gap"], [name + ".flat"], axis=1))
        nodes.append(helper.make_node("Gemm", [name + ".flat", const(name + ".fc.w", rng.standard_normal((1000, channels)) * 0.02),
                                               const(name + ".fc.b", np.zeros(1000))], ["logits"], transB=1))

    def save(name, producer):
        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 224, 224])],
                                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], initializer=inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name=producer)
        model.ir_version = 8
        write(dest, name, model, {"library": "onnx.helper", "kind": "cnn", "input": "image"}, batching="max_batch_size: 8\n")

    # ResNet-18: 7×7/2 stem, 3×3/2 max pool, four stages of two basic blocks (64, 128, 256, 512).
    x = conv("image", "stem", 3, 64, 7, stride=2, pad=3)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = "pool", 64
    for stage, cout in enumerate([64, 128, 256, 512]):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            name = f"s{stage}b{block}"
            y = conv(x, name + ".1", cin, cout, 3, stride=stride)
            y = conv(y, name + ".2", cout, cout, 3, act=None)
            shortcut = conv(x, name + ".down", cin, cout, 1, stride=stride, pad=0, act=None) if stride != 1 or cin != cout else x
            nodes.append(helper.make_node("Add", [y, shortcut], [name + ".sum"]))
            nodes.append(helper.make_node("Relu", [name + ".sum"], [name + ".out"]))
            x, cin = name + ".out", cout
    head(x, 512, "resnet")
    save("resnet18_shaped", "fulcrum resnet18-shaped")

    # MobileNet-style: depthwise-separable blocks with HardSwish, average pooling, a biased conv.
    nodes.clear()
    inits.clear()
    x = conv("image", "stem", 3, 16, 3, stride=2, act="HardSwish")
    cin = 16
    for i, (cout, stride) in enumerate([(24, 2), (40, 2), (80, 2), (112, 1), (160, 2)]):
        y = conv(x, f"b{i}.dw", cin, cin, 3, stride=stride, group=cin, act="HardSwish")
        x = conv(y, f"b{i}.pw", cin, cout, 1, pad=0, act="Relu")
        cin = cout
    nodes.append(helper.make_node("AveragePool", [x], ["avg"], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1]))
    nodes.append(helper.make_node("HardSigmoid", ["avg"], ["gate"], alpha=0.2, beta=0.5))
    nodes.append(helper.make_node("Mul", ["avg", "gate"], ["gated"]))
    x = conv("gated", "last", cin, 256, 1, pad=0, act="HardSwish", bias=True)
    head(x, 256, "mobilenet")
    save("mobilenet_style", "fulcrum mobilenet-style")
    return ["resnet18_shaped", "mobilenet_style"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest")
    parser.add_argument("--bench", action="store_true", help="also the 500-tree XGBoost model for fulcrum-bench")
    parser.add_argument("--cnn", action="store_true", help="only the two 224×224 CNNs (ResNet-18 shapes, MobileNet-style)")
    args = parser.parse_args()
    for name in (make_cnns(args.dest) if args.cnn else make(args.dest, bench=args.bench)):
        print(os.path.join(args.dest, name))


if __name__ == "__main__":
    main()
