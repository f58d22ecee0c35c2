#!/usr/bin/env python3
"""Writes the ONNX fixtures for Tests/FulcrumRuntimeTests/Fixtures.

Each case is <name>.onnx plus <name>.json holding inputs and onnxruntime's outputs:
  {"inputs": {name: {"dtype": "FP32", "shape": [...], "data": [...]}}, "outputs": {...}}
Refusal cases (unsupported op, cycle, external data escaping the folder) have no JSON.
Needs numpy, onnx and onnxruntime:  /tmp/venvtest/bin/python scripts/make-runtime-fixtures.py
The output is deterministic (fixed seeds), so rerunning gives the same files.
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "FulcrumRuntimeTests", "Fixtures")
rng = np.random.default_rng(20240601)
DTYPES = {np.float32: "FP32", np.int32: "INT32", np.int64: "INT64"}


def model(nodes, inputs, outputs, initializers=(), opset=17, name="fixture"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="fulcrum-fixtures")
    m.ir_version = 8
    return m


def tensor_json(array):
    return {"dtype": DTYPES[array.dtype.type], "shape": list(array.shape), "data": array.reshape(-1).tolist()}


def save(name, m, feeds):
    path = os.path.join(OUT, name + ".onnx")
    onnx.save(m, path)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, feeds)
    doc = {
        "inputs": {k: tensor_json(v) for k, v in feeds.items()},
        "outputs": {k: tensor_json(v) for k, v in zip(names, results)},
    }
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(doc, f)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    vi = helper.make_tensor_value_info

    # Triton's "simple": INT32 add and sub, batch dimension.
    save("simple_int32", model(
        [helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"], name="add"),
         helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"], name="sub")],
        [vi("INPUT0", TensorProto.INT32, ["batch", 16]), vi("INPUT1", TensorProto.INT32, ["batch", 16])],
        [vi("OUTPUT0", TensorProto.INT32, ["batch", 16]), vi("OUTPUT1", TensorProto.INT32, ["batch", 16])]),
        {"INPUT0": rng.integers(-1000, 1000, (3, 16)).astype(np.int32),
         "INPUT1": rng.integers(-1000, 1000, (3, 16)).astype(np.int32)})

    # FP32 add/sub with multidirectional broadcasting, no batch dimension.
    save("broadcast_fp32", model(
        [helper.make_node("Add", ["A", "B"], ["SUM"], name="add"),
         helper.make_node("Sub", ["B", "A"], ["DIFF"], name="sub"),
         helper.make_node("Mul", ["A", "B"], ["PROD"], name="mul"),
         helper.make_node("Div", ["A", "B"], ["QUOT"], name="div")],
        [vi("A", TensorProto.FLOAT, [3, 1, 5]), vi("B", TensorProto.FLOAT, [4, 1])],
        [vi(n, TensorProto.FLOAT, [3, 4, 5]) for n in ("SUM", "DIFF", "PROD", "QUOT")]),
        {"A": f32(3, 1, 5), "B": f32(4, 1) + 3})

    # A small MLP: Gemm(transB) + Relu, MatMul + Add + Sigmoid, Gemm with C [N] + Softmax.
    w1, b1 = f32(13, 7), f32(13)
    w2, b2 = f32(13, 9), f32(9)
    w3, b3 = f32(9, 5), f32(5)
    save("mlp", model(
        [helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], name="fc1", transB=1),
         helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
         helper.make_node("MatMul", ["a1", "w2"], ["m2"], name="fc2"),
         helper.make_node("Add", ["m2", "b2"], ["h2"], name="bias2"),
         helper.make_node("Sigmoid", ["h2"], ["a2"], name="sigmoid2"),
         helper.make_node("Gemm", ["a2", "w3", "b3"], ["logits"], name="fc3", alpha=0.5, beta=2.0),
         helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1),
         helper.make_node("Tanh", ["logits"], ["squashed"], name="tanh")],
        [vi("x", TensorProto.FLOAT, ["batch", 7])],
        [vi("probabilities", TensorProto.FLOAT, ["batch", 5]), vi("squashed", TensorProto.FLOAT, ["batch", 5])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"), numpy_helper.from_array(w2, "w2"),
         numpy_helper.from_array(b2, "b2"), numpy_helper.from_array(w3, "w3"), numpy_helper.from_array(b3, "b3")]),
        {"x": f32(6, 7)})

    # Batched and broadcast MatMul, 1-D promotion.
    save("matmul_batched", model(
        [helper.make_node("MatMul", ["A", "B"], ["Y"], name="batched"),
         helper.make_node("MatMul", ["C", "D"], ["Z"], name="broadcast"),
         helper.make_node("MatMul", ["v", "B2"], ["w"], name="vector")],
        [vi("A", TensorProto.FLOAT, [2, 3, 4, 5]), vi("B", TensorProto.FLOAT, [5, 6]),
         vi("C", TensorProto.FLOAT, [3, 1, 4, 5]), vi("D", TensorProto.FLOAT, [2, 5, 7]),
         vi("v", TensorProto.FLOAT, [5]), vi("B2", TensorProto.FLOAT, [2, 5, 3])],
        [vi("Y", TensorProto.FLOAT, [2, 3, 4, 6]), vi("Z", TensorProto.FLOAT, [3, 2, 4, 7]),
         vi("w", TensorProto.FLOAT, [2, 3])]),
        {"A": f32(2, 3, 4, 5), "B": f32(5, 6), "C": f32(3, 1, 4, 5), "D": f32(2, 5, 7), "v": f32(5), "B2": f32(2, 5, 3)})

    # Gemm variants: transA with C [M, 1]; no C (opset 11+); scalar C.
    save("gemm_variants", model(
        [helper.make_node("Gemm", ["A", "B", "C"], ["Y1"], name="transA", transA=1, alpha=1.5, beta=-0.5),
         helper.make_node("Gemm", ["A2", "B2"], ["Y2"], name="noC", transA=0, transB=1),
         helper.make_node("Gemm", ["A2", "B3", "s"], ["Y3"], name="scalarC")],
        [vi("A", TensorProto.FLOAT, [11, 3]), vi("B", TensorProto.FLOAT, [11, 17]), vi("C", TensorProto.FLOAT, [3, 1]),
         vi("A2", TensorProto.FLOAT, [5, 9]), vi("B2", TensorProto.FLOAT, [4, 9]), vi("B3", TensorProto.FLOAT, [9, 2]),
         vi("s", TensorProto.FLOAT, [])],
        [vi("Y1", TensorProto.FLOAT, [3, 17]), vi("Y2", TensorProto.FLOAT, [5, 4]), vi("Y3", TensorProto.FLOAT, [5, 2])],
        opset=13),
        {"A": f32(11, 3), "B": f32(11, 17), "C": f32(3, 1), "A2": f32(5, 9), "B2": f32(4, 9), "B3": f32(9, 2),
         "s": np.array(0.25, dtype=np.float32)})

    # Softmax: opset 11 flattens at axis (default 1); opset 13 normalises one axis.
    for opset in (11, 13):
        save(f"softmax_opset{opset}", model(
            [helper.make_node("Softmax", ["X"], ["Y"], name="default_axis"),
             helper.make_node("Softmax", ["X"], ["Z"], name="axis1", axis=1)],
            [vi("X", TensorProto.FLOAT, [2, 3, 4])],
            [vi("Y", TensorProto.FLOAT, [2, 3, 4]), vi("Z", TensorProto.FLOAT, [2, 3, 4])], opset=opset),
            {"X": f32(2, 3, 4) * 3})

    # External data: weights in weights.bin beside the model.
    weights = f32(4, 3)
    ext = model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="project")],
        [vi("x", TensorProto.FLOAT, ["batch", 4])], [vi("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(weights, "w")])
    onnx.external_data_helper.convert_model_to_external_data(
        ext, all_tensors_to_one_file=True, location="external_weights.bin", size_threshold=0)
    save("external_data", ext, {"x": f32(2, 4)})

    # Refusals.
    onnx.save(model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv0")],
        [vi("x", TensorProto.FLOAT, [1, 1, 4, 4]), vi("w", TensorProto.FLOAT, [1, 1, 3, 3])],
        [vi("y", TensorProto.FLOAT, [1, 1, 2, 2])]), os.path.join(OUT, "unsupported_conv.onnx"))
    onnx.save(model(
        [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
         helper.make_node("Relu", ["a"], ["b"], name="second"),
         helper.make_node("Identity", ["a"], ["y"], name="out")],
        [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.FLOAT, [2])]), os.path.join(OUT, "cycle.onnx"))
    escaping = model(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.ones(2, np.float32), "w")])
    w = escaping.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../secret.bin"), ("offset", "0"), ("length", "8")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(escaping, os.path.join(OUT, "external_escape.onnx"))
    old_opset = model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                      [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.FLOAT, [2])], opset=6)
    onnx.save(old_opset, os.path.join(OUT, "opset6.onnx"))


if __name__ == "__main__":
    main()
