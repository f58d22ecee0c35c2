#!/usr/bin/env python3
"""Writes Fulcrum's example model repository (Triton layout) next to this script.

    .venv/bin/python examples/models/generate.py [--out DIR]

Models (see README.md):
  simple       INPUT0, INPUT1 INT32 [16] -> OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1
  ranking_mlp  features FP32 [256] -> Gemm 512 + Relu -> Gemm 256 + Relu -> Gemm 1 -> Sigmoid -> score FP32 [1]

The output is deterministic: the same onnx/numpy versions write byte-identical files. Every model
is checked with onnx.checker and run once through onnxruntime against a numpy reference.
"""

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8
OPSET = 17
PRODUCER = "fulcrum-examples"
SEED = 20240601

SIMPLE_DIM = 16
SIMPLE_MAX_BATCH = 8

MLP_IN, MLP_H1, MLP_H2 = 256, 512, 256
MLP_MAX_BATCH = 64


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        producer_version="1",
    )
    model.ir_version = IR_VERSION
    model.model_version = 1
    onnx.checker.check_model(model, full_check=True)
    return model


def build_simple() -> onnx.ModelProto:
    shape = ["batch", SIMPLE_DIM]
    graph = helper.make_graph(
        nodes=[
            helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"], name="add"),
            helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"], name="sub"),
        ],
        name="simple",
        inputs=[
            helper.make_tensor_value_info("INPUT0", TensorProto.INT32, shape),
            helper.make_tensor_value_info("INPUT1", TensorProto.INT32, shape),
        ],
        outputs=[
            helper.make_tensor_value_info("OUTPUT0", TensorProto.INT32, shape),
            helper.make_tensor_value_info("OUTPUT1", TensorProto.INT32, shape),
        ],
        doc_string="Triton's classic 'simple' example: element-wise add and subtract.",
    )
    return _model(graph)


def mlp_weights() -> dict:
    """Deterministic weights, He-scaled so the score is spread over (0, 1), not saturated."""
    rng = np.random.default_rng(SEED)

    def layer(fan_in, fan_out, gain):
        # Gemm with transB=1: B has shape [out, in] (the PyTorch Linear layout).
        w = rng.standard_normal((fan_out, fan_in)) * np.sqrt(gain / fan_in)
        b = rng.standard_normal(fan_out) * 0.05
        return w.astype(np.float32), b.astype(np.float32)

    w1, b1 = layer(MLP_IN, MLP_H1, 2.0)
    w2, b2 = layer(MLP_H1, MLP_H2, 2.0)
    w3, b3 = layer(MLP_H2, 1, 1.0)
    return {"fc1.weight": w1, "fc1.bias": b1, "fc2.weight": w2, "fc2.bias": b2,
            "fc3.weight": w3, "fc3.bias": b3}


def build_ranking_mlp() -> onnx.ModelProto:
    weights = mlp_weights()
    # numpy_helper.from_array stores the values as raw_data (compact, little-endian).
    initializers = [numpy_helper.from_array(v, name=k) for k, v in weights.items()]
    nodes = [
        helper.make_node("Gemm", ["features", "fc1.weight", "fc1.bias"], ["fc1"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["relu1"], name="relu1"),
        helper.make_node("Gemm", ["relu1", "fc2.weight", "fc2.bias"], ["fc2"], name="fc2", transB=1),
        helper.make_node("Relu", ["fc2"], ["relu2"], name="relu2"),
        helper.make_node("Gemm", ["relu2", "fc3.weight", "fc3.bias"], ["logit"], name="fc3", transB=1),
        helper.make_node("Sigmoid", ["logit"], ["score"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes=nodes,
        name="ranking_mlp",
        inputs=[helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", MLP_IN])],
        outputs=[helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        initializer=initializers,
        doc_string="Ranking MLP 256 -> 512 -> 256 -> 1 with ReLU and a sigmoid score; "
                   f"weights from numpy default_rng({SEED}).",
    )
    for t in graph.initializer:
        assert t.HasField("raw_data") and not t.float_data, t.name
    return _model(graph)


SIMPLE_CONFIG = f"""\
name: "simple"
platform: "onnxruntime_onnx"
max_batch_size: {SIMPLE_MAX_BATCH}
input [
  {{
    name: "INPUT0"
    data_type: TYPE_INT32
    dims: [ {SIMPLE_DIM} ]
  }},
  {{
    name: "INPUT1"
    data_type: TYPE_INT32
    dims: [ {SIMPLE_DIM} ]
  }}
]
output [
  {{
    name: "OUTPUT0"
    data_type: TYPE_INT32
    dims: [ {SIMPLE_DIM} ]
  }},
  {{
    name: "OUTPUT1"
    data_type: TYPE_INT32
    dims: [ {SIMPLE_DIM} ]
  }}
]
"""

RANKING_MLP_CONFIG = f"""\
name: "ranking_mlp"
platform: "onnxruntime_onnx"
max_batch_size: {MLP_MAX_BATCH}
input [
  {{
    name: "features"
    data_type: TYPE_FP32
    dims: [ {MLP_IN} ]
  }}
]
output [
  {{
    name: "score"
    data_type: TYPE_FP32
    dims: [ 1 ]
  }}
]
instance_group [
  {{
    count: 1
    kind: KIND_CPU
  }}
]
"""


def self_check(out_dir: str) -> None:
    """Loads each written model in onnxruntime and compares with a numpy reference."""
    import onnxruntime as ort

    rng = np.random.default_rng(1)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3

    sess = ort.InferenceSession(os.path.join(out_dir, "simple", "1", "model.onnx"), opts,
                                providers=["CPUExecutionProvider"])
    for batch in (1, SIMPLE_MAX_BATCH):
        a = rng.integers(-1000, 1000, size=(batch, SIMPLE_DIM), dtype=np.int32)
        b = rng.integers(-1000, 1000, size=(batch, SIMPLE_DIM), dtype=np.int32)
        out0, out1 = sess.run(["OUTPUT0", "OUTPUT1"], {"INPUT0": a, "INPUT1": b})
        np.testing.assert_array_equal(out0, a + b)
        np.testing.assert_array_equal(out1, a - b)

    sess = ort.InferenceSession(os.path.join(out_dir, "ranking_mlp", "1", "model.onnx"), opts,
                                providers=["CPUExecutionProvider"])
    w = mlp_weights()
    x = rng.standard_normal((MLP_MAX_BATCH, MLP_IN)).astype(np.float32)
    (score,) = sess.run(["score"], {"features": x})
    h = np.maximum(x.astype(np.float64) @ w["fc1.weight"].T + w["fc1.bias"], 0)
    h = np.maximum(h @ w["fc2.weight"].T + w["fc2.bias"], 0)
    ref = 1 / (1 + np.exp(-(h @ w["fc3.weight"].T + w["fc3.bias"])))
    assert score.shape == (MLP_MAX_BATCH, 1) and score.dtype == np.float32
    np.testing.assert_allclose(score, ref, rtol=1e-5, atol=1e-6)
    # The example must be informative: scores spread out, not all saturated at 0 or 1.
    assert 0.02 < score.min() and score.max() < 0.98 and score.std() > 0.05, (
        f"scores saturated or flat: min {score.min()} max {score.max()} std {score.std()}")


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                        help="model repository to write (default: the folder of this script)")
    args = parser.parse_args(argv)

    models = {
        "simple": (build_simple(), SIMPLE_CONFIG),
        "ranking_mlp": (build_ranking_mlp(), RANKING_MLP_CONFIG),
    }
    for name, (model, config) in models.items():
        write(os.path.join(args.out, name, "config.pbtxt"), config.encode())
        write(os.path.join(args.out, name, "1", "model.onnx"), model.SerializeToString(deterministic=True))
    self_check(args.out)
    for name in models:
        size = os.path.getsize(os.path.join(args.out, name, "1", "model.onnx"))
        print(f"wrote {os.path.join(args.out, name)} (model.onnx {size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
