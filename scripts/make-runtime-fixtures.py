#!/usr/bin/env python3
"""Writes the ONNX fixtures for Tests/FulcrumRuntimeTests/Fixtures.

Each case is <name>.onnx plus <name>.json holding inputs and onnxruntime's outputs:
  {"inputs": {name: {"dtype": "FP32", "shape": [...], "data": [...]}}, "outputs": {...}}
Refusal cases (unsupported op, cycle, external data escaping the folder) have no JSON.
Per-operator cases live in ops/<case>.onnx + .json (every operator and opset variant the runtime
implements, with broadcasting corners, odd sizes, empty and size-1 dimensions); the example models'
inputs and onnxruntime's outputs live in models/<model>-io.json (the models themselves stay in
examples/models, made by examples/models/generate.py).
Needs numpy, onnx and onnxruntime:  .venv/bin/python scripts/make-runtime-fixtures.py
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
DTYPES = {"float32": "FP32", "float64": "FP64", "int32": "INT32", "int64": "INT64", "bool": "BOOL"}
ONNX_TYPES = {np.float32: TensorProto.FLOAT, np.int32: TensorProto.INT32, np.int64: TensorProto.INT64,
              np.bool_: TensorProto.BOOL}


def model(nodes, inputs, outputs, initializers=(), opset=17, name="fixture"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="fulcrum-fixtures")
    m.ir_version = 8
    return m


def tensor_json(array):
    data = array.reshape(-1)
    if array.dtype == np.bool_:
        data = data.astype(np.int64)
    values = data.tolist()
    if array.dtype.kind == "f":
        values = ["nan" if v != v else v for v in values]  # JSON has no NaN
    return {"dtype": DTYPES[array.dtype.name], "shape": list(array.shape), "data": values}


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


def i64(*values):
    return np.array(values, dtype=np.int64)


def op_case(name, op_type, feeds, consts=(), outputs=1, opset=17, **attrs):
    """One node of `op_type` reading the graph inputs `feeds` (name -> array) and the initializers
    `consts` (name -> array, in input order after the feeds unless named ''), writing `outputs`."""
    inputs = list(feeds) + [k for k, _ in consts]
    out_names = [f"Y{i}" for i in range(outputs)] if isinstance(outputs, int) else outputs
    node = helper.make_node(op_type, inputs, out_names, name=name, **attrs)
    graph_inputs = [helper.make_tensor_value_info(k, ONNX_TYPES[v.dtype.type], list(v.shape)) for k, v in feeds.items()]
    inits = [numpy_helper.from_array(v, k) for k, v in consts if k]
    m = model([node], graph_inputs, [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in out_names],
              inits, opset=opset, name=name)
    # Let onnx fill the output types and shapes.
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    inferred = {v.name: v for v in list(m.graph.value_info) + list(m.graph.output)}
    m.graph.ClearField("output")
    m.graph.output.extend(inferred[o] for o in out_names)
    m.graph.ClearField("value_info")
    save(os.path.join("ops", name), m, feeds)


def graph_case(name, nodes, feeds, consts=(), outputs=("Y",), opset=17):
    graph_inputs = [helper.make_tensor_value_info(k, ONNX_TYPES[v.dtype.type], list(v.shape)) for k, v in feeds.items()]
    inits = [numpy_helper.from_array(v, k) for k, v in consts]
    m = model(nodes, graph_inputs, [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
              inits, opset=opset, name=name)
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    inferred = {v.name: v for v in list(m.graph.value_info) + list(m.graph.output)}
    m.graph.ClearField("output")
    m.graph.output.extend(inferred[o] for o in outputs)
    m.graph.ClearField("value_info")
    save(os.path.join("ops", name), m, feeds)


def operator_cases():
    os.makedirs(os.path.join(OUT, "ops"), exist_ok=True)
    pos = lambda *s: (np.abs(f32(*s)) + 0.1).astype(np.float32)
    # Elementwise arithmetic: broadcasting corners, odd sizes, empty and size-1 dimensions, INT64.
    op_case("add_odd_broadcast", "Add", {"A": f32(7, 1, 13), "B": f32(5, 1)})
    op_case("sub_scalar", "Sub", {"A": f32(), "B": f32(3, 9)})
    op_case("mul_empty", "Mul", {"A": f32(0, 3), "B": f32(3)})
    op_case("div_size1", "Div", {"A": f32(1, 1, 17), "B": pos(4, 1, 1)})
    op_case("add_int64", "Add", {"A": i64(1, -2, 3, 4).reshape(2, 2), "B": i64(10, 20)})
    op_case("div_int64", "Div", {"A": i64(7, -7, 9, -9, 100, 5), "B": i64(2, 2, -4, 4, 7, 5)})
    op_case("mul_int64", "Mul", {"A": i64(3, -4, 5), "B": i64(-2)})
    op_case("pow_fp32", "Pow", {"X": pos(3, 5), "Y": f32(5)})
    op_case("pow_int_exponent", "Pow", {"X": f32(2, 3)}, consts=[("E", i64(3))])
    op_case("pow_square", "Pow", {"X": f32(9)}, consts=[("E", np.array(2, np.float32))])
    # Unary.
    x = (f32(3, 11) * 3).astype(np.float32)
    for op in ("Neg", "Abs", "Relu", "Sigmoid", "Tanh", "Erf", "Exp"):
        op_case(op.lower(), op, {"X": x})
    op_case("sqrt", "Sqrt", {"X": pos(2, 9)})
    op_case("log", "Log", {"X": pos(2, 9)})
    op_case("sigmoid_extremes", "Sigmoid", {"X": np.array([-100, -20, -1e-3, 0, 1e-3, 20, 100], np.float32)})
    op_case("leaky_relu", "LeakyRelu", {"X": x}, alpha=0.2)
    op_case("leaky_relu_default", "LeakyRelu", {"X": x})
    op_case("gelu_opset20", "Gelu", {"X": x}, opset=20)
    op_case("gelu_tanh_opset20", "Gelu", {"X": x}, opset=20, approximate="tanh")
    op_case("clip_opset10_attrs", "Clip", {"X": x}, opset=10, min=-0.5, max=1.5)
    op_case("clip_opset13_inputs", "Clip", {"X": x}, consts=[("lo", np.array(-1, np.float32)), ("hi", np.array(0.25, np.float32))], opset=13)
    op_case("clip_opset13_min_only", "Clip", {"X": x}, consts=[("lo", np.array(0.3, np.float32))], opset=13)
    # Softmax family.
    s3 = (f32(2, 3, 5) * 2).astype(np.float32)
    op_case("softmax_opset11_axis2", "Softmax", {"X": s3}, opset=11, axis=2)
    op_case("softmax_opset13_axis0", "Softmax", {"X": s3}, opset=13, axis=0)
    op_case("logsoftmax_opset11", "LogSoftmax", {"X": s3}, opset=11)
    op_case("logsoftmax_opset13", "LogSoftmax", {"X": s3}, opset=13)
    # Matrix products.
    op_case("matmul_vectors", "MatMul", {"A": f32(5), "B": f32(5)})
    op_case("matmul_vector_matrix", "MatMul", {"A": f32(6), "B": f32(3, 6, 4)})
    op_case("matmul_broadcast_batch", "MatMul", {"A": f32(2, 1, 3, 7), "B": f32(1, 4, 7, 5)})
    op_case("gemm_transposes", "Gemm", {"A": f32(4, 3), "B": f32(5, 4), "C": f32(3, 5)}, transA=1, transB=1, alpha=0.7, beta=1.3)
    op_case("gemm_opset7_c_required", "Gemm", {"A": f32(2, 3), "B": f32(3, 4), "C": f32(4)}, opset=7)
    # Shapes and data movement.
    op_case("concat_axis1", "Concat", {"A": f32(2, 3, 4), "B": f32(2, 1, 4), "C": f32(2, 0, 4)}, axis=1)
    op_case("concat_negative_axis", "Concat", {"A": i64(1, 2).reshape(1, 2), "B": i64(3, 4, 5, 6).reshape(1, 4)}, axis=-1)
    op_case("split_opset11_attr", "Split", {"X": f32(2, 7)}, outputs=2, opset=11, axis=1, split=[3, 4])
    op_case("split_opset13_input", "Split", {"X": f32(5, 2)}, consts=[("split", i64(1, 4))], outputs=2, opset=13)
    op_case("split_opset13_equal", "Split", {"X": f32(3, 6)}, outputs=3, opset=13, axis=1)
    op_case("split_opset18_num_outputs", "Split", {"X": f32(2, 7)}, outputs=3, opset=18, axis=-1, num_outputs=3)
    op_case("gather_axis0_negative", "Gather", {"X": f32(5, 3)}, consts=[("I", i64(0, -1, 2, 2))])
    op_case("gather_axis1_2d", "Gather", {"X": f32(2, 6, 3), "I": i64(5, 0, 3, 1).reshape(2, 2)}, axis=1)
    op_case("gather_scalar_int32", "Gather", {"X": f32(4, 5)}, consts=[("I", np.array(-2, np.int32))], axis=1)
    for axis in (0, 2, -1):
        op_case(f"flatten_axis{axis}".replace("-", "m"), "Flatten", {"X": f32(2, 3, 4)}, axis=axis)
    op_case("reshape_zero_minus_one", "Reshape", {"X": f32(2, 3, 4)}, consts=[("S", i64(0, -1, 2))])
    op_case("reshape_allowzero_opset14", "Reshape", {"X": f32(0, 3)}, consts=[("S", i64(3, 0))], opset=14, allowzero=1)
    op_case("squeeze_opset11_attr", "Squeeze", {"X": f32(1, 3, 1, 2)}, opset=11, axes=[0, -2])
    op_case("squeeze_opset13_input", "Squeeze", {"X": f32(1, 3, 1, 2)}, consts=[("A", i64(2))], opset=13)
    op_case("squeeze_all", "Squeeze", {"X": f32(1, 3, 1, 2)}, opset=13)
    op_case("unsqueeze_opset11_attr", "Unsqueeze", {"X": f32(3, 2)}, opset=11, axes=[0, 3])
    op_case("unsqueeze_opset13_negative", "Unsqueeze", {"X": f32(3, 2)}, consts=[("A", i64(-1, 1))], opset=13)
    op_case("transpose_default", "Transpose", {"X": f32(2, 3, 4)})
    op_case("transpose_perm", "Transpose", {"X": f32(2, 3, 4, 5)}, perm=[0, 2, 3, 1])
    op_case("expand_bidirectional", "Expand", {"X": f32(3, 1)}, consts=[("S", i64(2, 1, 4))])
    op_case("expand_smaller_shape", "Expand", {"X": f32(2, 3, 1)}, consts=[("S", i64(1, 5))])
    op_case("slice_opset13_steps", "Slice", {"X": f32(5, 7)},
            consts=[("st", i64(-1, 1)), ("en", i64(-9223372036854775807, 100)), ("ax", i64(0, 1)), ("sp", i64(-2, 3))], opset=13)
    op_case("slice_opset13_defaults", "Slice", {"X": f32(4, 6)}, consts=[("st", i64(1)), ("en", i64(-1))], opset=13)
    op_case("slice_opset9_attrs", "Slice", {"X": f32(4, 6)}, opset=9, starts=[1, 0], ends=[3, 100], axes=[1, 0])
    op_case("slice_empty", "Slice", {"X": f32(4, 6)}, consts=[("st", i64(3)), ("en", i64(1)), ("ax", i64(1))], opset=13)
    op_case("shape_opset13", "Shape", {"X": f32(2, 3, 4)}, opset=13)
    op_case("shape_opset15_start_end", "Shape", {"X": f32(2, 3, 4, 5)}, opset=15, start=-3, end=-1)
    op_case("cast_float_to_int64", "Cast", {"X": np.array([-2.7, -0.5, 0, 0.5, 2.7, 1e6], np.float32)}, to=TensorProto.INT64)
    op_case("cast_int64_to_float", "Cast", {"X": i64(-5, 0, 7, 1 << 40)}, to=TensorProto.FLOAT)
    op_case("cast_float_to_bool", "Cast", {"X": np.array([0, -0.0, 1e-30, -3], np.float32)}, to=TensorProto.BOOL)
    op_case("cast_bool_to_float", "Cast", {"X": np.array([True, False, True])}, to=TensorProto.FLOAT)
    op_case("cast_int32_to_int64", "Cast", {"X": np.array([-3, 4], np.int32)}, to=TensorProto.INT64)
    graph_case("constant_value_tensor", [
        helper.make_node("Constant", [], ["K"], value=numpy_helper.from_array(f32(2, 3))),
        helper.make_node("Add", ["X", "K"], ["Y"])], {"X": f32(2, 3)})
    graph_case("constant_value_ints", [
        helper.make_node("Constant", [], ["S"], value_ints=[3, 2]),
        helper.make_node("Reshape", ["X", "S"], ["Y"])], {"X": f32(2, 3)})
    op_case("constant_of_shape_default", "ConstantOfShape", {}, consts=[("S", i64(2, 3))])
    op_case("constant_of_shape_int64", "ConstantOfShape", {}, consts=[("S", i64(4))],
            value=numpy_helper.from_array(i64(7)))
    op_case("where_broadcast", "Where", {"C": rng.random((3, 1)) > 0.5, "X": f32(1, 4), "Y": f32(3, 4)})
    op_case("where_int64", "Where", {"C": np.array([True, False, True])}, consts=[("X", i64(1, 2, 3)), ("Y", i64(-1))])
    a, b = f32(3, 4).round(0), f32(4).round(0)
    for op in ("Equal", "Less", "Greater"):
        op_case(op.lower() + "_fp32", op, {"A": a, "B": b})
        op_case(op.lower() + "_int64", op, {"A": i64(1, 5, 3, -2).reshape(2, 2), "B": i64(3)})
    op_case("equal_bool", "Equal", {"A": np.array([True, False]), "B": np.array([[True], [False]])})
    # Reductions: axes as attribute vs input by version, keepdims, noop_with_empty_axes.
    r = f32(2, 3, 4)
    op_case("reducesum_opset11_attr", "ReduceSum", {"X": r}, opset=11, axes=[0, 2])
    op_case("reducesum_opset13_input", "ReduceSum", {"X": r}, consts=[("A", i64(-1))], opset=13, keepdims=0)
    op_case("reducesum_opset13_all", "ReduceSum", {"X": r}, opset=13)
    op_case("reducesum_opset13_noop", "ReduceSum", {"X": r}, opset=13, noop_with_empty_axes=1)
    op_case("reducemean_opset17_attr", "ReduceMean", {"X": r}, opset=17, axes=[1], keepdims=0)
    op_case("reducemean_opset18_input", "ReduceMean", {"X": r}, consts=[("A", i64(0, 1))], opset=18)
    op_case("reducemax_opset13_attr", "ReduceMax", {"X": r}, opset=13, axes=[2])
    op_case("reducemax_opset18_input", "ReduceMax", {"X": r}, consts=[("A", i64(1))], opset=18, keepdims=0)
    # Normalisation.
    op_case("layernorm_last_axis", "LayerNormalization", {"X": f32(3, 2, 13)}, consts=[("S", f32(13)), ("B", f32(13))])
    op_case("layernorm_axis1_no_bias", "LayerNormalization", {"X": f32(2, 3, 5)}, consts=[("S", f32(3, 5))], axis=1, epsilon=1e-3)
    op_case("batchnorm_inference", "BatchNormalization", {"X": f32(2, 3, 4, 5)},
            consts=[("s", f32(3)), ("b", f32(3)), ("m", f32(3)), ("v", pos(3))], epsilon=1e-4)
    # Arg/TopK.
    op_case("argmax_axis1", "ArgMax", {"X": f32(3, 7)}, axis=1, keepdims=0)
    op_case("argmax_ties_last", "ArgMax", {"X": np.array([[1, 3, 3, 0], [2, 2, 1, 2]], np.float32)}, axis=1, select_last_index=1)
    op_case("argmax_default_axis", "ArgMax", {"X": f32(4, 2)})
    op_case("topk_opset11_largest", "TopK", {"X": f32(3, 8)}, consts=[("K", i64(3))], outputs=2, opset=11)
    op_case("topk_opset11_smallest_axis0", "TopK", {"X": f32(6, 2)}, consts=[("K", i64(2))], outputs=2, opset=11, axis=0, largest=0)
    op_case("topk_opset9_attr", "TopK", {"X": f32(2, 5)}, outputs=2, opset=9, k=2)
    # Patterns the plan folds and fuses; results must not change.
    w, bias = f32(6, 5), f32(5)
    graph_case("fused_matmul_add_relu", [
        helper.make_node("MatMul", ["X", "W"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["Y"])], {"X": f32(2, 3, 6)}, [("W", w), ("b", bias)])
    graph_case("fused_gemm_sigmoid", [
        helper.make_node("Gemm", ["X", "W", "b"], ["g"], transB=1), helper.make_node("Sigmoid", ["g"], ["Y"])],
        {"X": f32(4, 5)}, [("W", f32(3, 5)), ("b", f32(3))])
    graph_case("fused_erf_gelu", [
        helper.make_node("MatMul", ["X", "W"], ["m"]), helper.make_node("Add", ["b", "m"], ["x"]),
        helper.make_node("Mul", ["x", "r2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["p"]), helper.make_node("Mul", ["x", "half"], ["h"]),
        helper.make_node("Mul", ["h", "p"], ["Y"])], {"X": f32(3, 6)},
        [("W", w), ("b", bias), ("r2", np.array(0.70710678, np.float32)), ("one", np.array(1, np.float32)),
         ("half", np.array(0.5, np.float32))])
    graph_case("unfused_shared_intermediate", [
        helper.make_node("MatMul", ["X", "W"], ["m"]), helper.make_node("Add", ["m", "b"], ["Z"]),
        helper.make_node("Relu", ["Z"], ["Y"])], {"X": f32(2, 6)}, [("W", w), ("b", bias)], outputs=("Y", "Z"))
    graph_case("folded_constant_chain", [
        helper.make_node("Transpose", ["W"], ["Wt"]), helper.make_node("Mul", ["Wt", "two"], ["W2"]),
        helper.make_node("MatMul", ["X", "W2"], ["Y"])], {"X": f32(3, 5)}, [("W", f32(6, 5)), ("two", np.array(2, np.float32))])
    graph_case("shape_subgraph_reshape", [
        helper.make_node("Shape", ["X"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]), helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["X", "target"], ["Y"])], {"X": f32(3, 2, 4)},
        [("zero", np.array(0, np.int64)), ("ax", i64(0)), ("minus1", i64(-1))])


def tree_cases():
    """ai.onnx.ml tree ensembles built by hand: every node mode, NaN with and without missing-value
    tracking, features equal to thresholds, every aggregate and post transform, the classifier's
    binary conventions (one class's weights, two classes', base values 0/1/2), TreeEnsemble
    (ml opset 5) with a BRANCH_MEMBER node. Its own generator, so other fixtures do not change."""
    t = np.random.default_rng(1107)
    modes = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]

    def forest(trees, depth, features, outputs, use_modes, tracks=False, per_leaf=1, classes=None):
        a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
                             "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true")}
        w = {"treeids": [], "nodeids": [], "ids": [], "weights": []}
        for tree in range(trees):
            def grow(node_id, level):
                # Returns the next free id; ids are given in breadth-unaware preorder on purpose.
                if level == depth or (level > 1 and t.random() < 0.2):
                    a["nodes_treeids"].append(tree); a["nodes_nodeids"].append(node_id)
                    a["nodes_featureids"].append(0); a["nodes_modes"].append("LEAF"); a["nodes_values"].append(0.0)
                    a["nodes_truenodeids"].append(0); a["nodes_falsenodeids"].append(0)
                    a["nodes_missing_value_tracks_true"].append(0)
                    for out in t.choice(outputs, size=min(per_leaf, outputs), replace=False):
                        w["treeids"].append(tree); w["nodeids"].append(node_id)
                        w["ids"].append(int(out) if classes is None else int(classes[int(out) % len(classes)]))
                        w["weights"].append(float(np.float32(t.standard_normal())))
                    return node_id + 1
                index = len(a["nodes_nodeids"])
                a["nodes_treeids"].append(tree); a["nodes_nodeids"].append(node_id)
                a["nodes_featureids"].append(int(t.integers(0, features)))
                a["nodes_modes"].append(use_modes[int(t.integers(0, len(use_modes)))])
                a["nodes_values"].append(float(np.float32(np.round(t.standard_normal(), 1))))
                a["nodes_missing_value_tracks_true"].append(int(tracks and t.random() < 0.5))
                a["nodes_truenodeids"].append(0); a["nodes_falsenodeids"].append(0)
                true_id = node_id + 1
                false_id = grow(true_id, level + 1)
                end = grow(false_id, level + 1)
                a["nodes_truenodeids"][index] = true_id
                a["nodes_falsenodeids"][index] = false_id
                return end
            grow(0, 0)
        return a, w

    def inputs(rows, features, nan=True):
        x = np.round(t.standard_normal((rows, features)), 1).astype(np.float32)  # hits thresholds exactly
        if nan:
            x[t.random((rows, features)) < 0.15] = np.nan
        return x

    def ml_case(name, op, attrs, x, outputs, ml_opset=3, x_type=TensorProto.FLOAT):
        node = helper.make_node(op, ["X"], outputs, name=name, domain="ai.onnx.ml", **attrs)
        graph = helper.make_graph([node], name, [helper.make_tensor_value_info("X", x_type, list(x.shape))],
                                  [helper.make_tensor_value_info(o, TensorProto.INT64 if o == "label" else TensorProto.FLOAT, None)
                                   for o in outputs])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", ml_opset)], producer_name="fulcrum-fixtures")
        m.ir_version = 8
        m = onnx.shape_inference.infer_shapes(m)
        save(os.path.join("ops", name), m, {"X": x})

    def regressor(name, trees, depth, features, targets, use_modes, x, tracks=False, per_leaf=1, **extra):
        a, w = forest(trees, depth, features, targets, use_modes, tracks, per_leaf)
        attrs = dict(a, n_targets=targets, target_treeids=w["treeids"], target_nodeids=w["nodeids"],
                     target_ids=w["ids"], target_weights=w["weights"], **extra)
        ml_case(name, "TreeEnsembleRegressor", attrs, x, ["Y"])

    def classifier(name, trees, depth, features, labels, use_modes, x, weight_classes=None, per_leaf=1, **extra):
        a, w = forest(trees, depth, features, len(labels), use_modes, per_leaf=per_leaf, classes=weight_classes)
        attrs = dict(a, classlabels_int64s=labels, class_treeids=w["treeids"], class_nodeids=w["nodeids"],
                     class_ids=w["ids"], class_weights=w["weights"], **extra)
        ml_case(name, "TreeEnsembleClassifier", attrs, x, ["label", "probabilities"])

    regressor("tree_regressor_leq_sum", 6, 4, 5, 1, ["BRANCH_LEQ"], inputs(9, 5, nan=False), base_values=[0.25])
    regressor("tree_regressor_missing", 6, 4, 5, 1, ["BRANCH_LEQ", "BRANCH_LT"], inputs(11, 5), tracks=True)
    regressor("tree_regressor_modes_average", 8, 3, 4, 3, modes, inputs(13, 4), tracks=True, per_leaf=2,
              aggregate_function="AVERAGE", base_values=[0.5, -1.0, 2.0])
    for agg in ("MIN", "MAX"):
        regressor(f"tree_regressor_{agg.lower()}", 5, 3, 4, 2, modes, inputs(9, 4), aggregate_function=agg, base_values=[1.0, -1.0])
        regressor(f"tree_regressor_{agg.lower()}_one", 5, 3, 4, 1, modes, inputs(7, 4), aggregate_function=agg, base_values=[0.5])
    for post in ("LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"):
        regressor(f"tree_regressor_{post.lower()}", 4, 3, 4, 3, ["BRANCH_LEQ", "BRANCH_GT"], inputs(8, 4), post_transform=post)
    # PROBIT (one target): leaf sums kept inside (0, 1).
    a, w = forest(5, 3, 4, 1, ["BRANCH_LEQ"])
    ml_case("tree_regressor_probit", "TreeEnsembleRegressor",
            dict(a, n_targets=1, target_treeids=w["treeids"], target_nodeids=w["nodeids"], target_ids=w["ids"],
                 target_weights=[0.1 + v / 50 for v in w["weights"]], base_values=[0.05], post_transform="PROBIT"),
            inputs(9, 4, nan=False), ["Y"])
    # Thresholds and weights as double tensors.
    a, w = forest(4, 3, 4, 1, ["BRANCH_LT"])
    values = a.pop("nodes_values")
    attrs = dict(a, n_targets=1, target_treeids=w["treeids"], target_nodeids=w["nodeids"], target_ids=w["ids"],
                 nodes_values_as_tensor=numpy_helper.from_array(np.array(values, np.float64) + 1e-9, "v"),
                 target_weights_as_tensor=numpy_helper.from_array(np.array(w["weights"], np.float64), "w"))
    ml_case("tree_regressor_as_tensor", "TreeEnsembleRegressor", attrs, np.round(inputs(7, 4, nan=False).astype(np.float64) * 8) / 8, ["Y"],
            x_type=TensorProto.DOUBLE)
    # Double input.
    a, w = forest(4, 3, 4, 1, ["BRANCH_LEQ"])
    ml_case("tree_regressor_fp64_input", "TreeEnsembleRegressor",
            dict(a, n_targets=1, target_treeids=w["treeids"], target_nodeids=w["nodeids"], target_ids=w["ids"], target_weights=w["weights"]),
            # Multiples of 1/8: exact in JSON (Foundation's JSON reader rounds some doubles).
            np.round(inputs(6, 4).astype(np.float64) * 8) / 8, ["Y"], x_type=TensorProto.DOUBLE)

    classifier("tree_classifier_softmax", 6, 3, 5, [0, 1, 2], ["BRANCH_LEQ", "BRANCH_LT"], inputs(12, 5),
               post_transform="SOFTMAX", base_values=[0.1, -0.2, 0.3])
    classifier("tree_classifier_untouched_class", 3, 2, 4, [3, 5, 7, 9], ["BRANCH_LEQ"], inputs(10, 4), weight_classes=[0, 2])
    classifier("tree_classifier_logistic_multi", 4, 3, 4, [0, 1, 2], modes, inputs(9, 4), per_leaf=2, post_transform="LOGISTIC")
    # Two classes, all weights for one class: the converters' binary convention.
    for label, kw in {"positive": dict(), "logistic_base1": dict(post_transform="LOGISTIC", base_values=[0.3]),
                      "logistic_nobase": dict(post_transform="LOGISTIC"), "base2": dict(base_values=[0.2, 0.2])}.items():
        a, w = forest(5, 3, 4, 2, ["BRANCH_LEQ"], classes=[0])
        weights = [abs(v) / 5 for v in w["weights"]] if label == "positive" else w["weights"]
        attrs = dict(a, classlabels_int64s=[0, 1], class_treeids=w["treeids"], class_nodeids=w["nodeids"],
                     class_ids=w["ids"], class_weights=weights, **kw)
        ml_case(f"tree_classifier_binary_{label}", "TreeEnsembleClassifier", attrs, inputs(10, 4, nan=False), ["label", "probabilities"])
    # Two classes with weights for both.
    classifier("tree_classifier_two_classes", 4, 3, 4, [0, 1], ["BRANCH_LEQ"], inputs(9, 4), base_values=[0.1, 0.2])
    classifier("tree_classifier_two_classes_nobase", 4, 3, 4, [4, 8], ["BRANCH_LEQ"], inputs(9, 4), post_transform="SOFTMAX")

    # TreeEnsemble (ml opset 5): two trees, one BRANCH_MEMBER node, missing tracking, 2 targets.
    x = np.array([[1, 0.5, 3], [2, -1, np.nan], [7, 2.5, 0], [np.nan, 0.1, 1], [4, 9, -2]], np.float32)
    attrs = dict(
        n_targets=2, aggregate_function=1, post_transform=0, tree_roots=[0, 2],
        nodes_modes=numpy_helper.from_array(np.array([6, 0, 3], np.uint8), "m"),
        nodes_featureids=[0, 1, 2], nodes_splits=numpy_helper.from_array(np.array([0, 0.5, 0.5], np.float32), "s"),
        nodes_truenodeids=[0, 1, 3], nodes_trueleafs=[1, 1, 1], nodes_falsenodeids=[1, 2, 4], nodes_falseleafs=[0, 1, 1],
        nodes_missing_value_tracks_true=[0, 1, 0],
        membership_values=numpy_helper.from_array(np.array([1, 4, 7, np.nan], np.float32), "mv"),
        leaf_targetids=[0, 1, 0, 0, 1], leaf_weights=numpy_helper.from_array(np.array([1, 2, 3, 4, 5], np.float32), "lw"))
    ml_case("tree_ensemble_opset5", "TreeEnsemble", attrs, x, ["Y"], ml_opset=5)

    # Linear models, Scaler, Normalizer (ml opset 1).
    lin = lambda *s: [float(v) for v in np.float32(t.standard_normal(s)).reshape(-1)]
    x = np.round(t.standard_normal((7, 5)), 2).astype(np.float32)
    ml_case("linear_regressor", "LinearRegressor", dict(coefficients=lin(3, 5), intercepts=lin(3), targets=3), x, ["Y"], ml_opset=1)
    ml_case("linear_regressor_softmax", "LinearRegressor", dict(coefficients=lin(3, 5), intercepts=lin(3), targets=3,
            post_transform="SOFTMAX"), x, ["Y"], ml_opset=1)
    ml_case("linear_regressor_one_target", "LinearRegressor", dict(coefficients=lin(1, 5), intercepts=lin(1)), x, ["Y"], ml_opset=1)
    ml_case("linear_classifier_multiclass", "LinearClassifier", dict(coefficients=lin(3, 5), intercepts=lin(3),
            classlabels_ints=[2, 4, 6], post_transform="SOFTMAX", multi_class=1), x, ["label", "probabilities"], ml_opset=1)
    ml_case("linear_classifier_logistic", "LinearClassifier", dict(coefficients=lin(3, 5), intercepts=lin(3),
            classlabels_ints=[0, 1, 2], post_transform="LOGISTIC"), x, ["label", "probabilities"], ml_opset=1)
    ml_case("linear_classifier_binary", "LinearClassifier", dict(coefficients=lin(1, 5), intercepts=lin(1),
            classlabels_ints=[0, 1]), x, ["label", "probabilities"], ml_opset=1)
    ml_case("linear_classifier_int64_input", "LinearClassifier", dict(coefficients=lin(2, 5), intercepts=lin(2),
            classlabels_ints=[7, 9]), t.integers(-5, 5, (6, 5)).astype(np.int64), ["label", "probabilities"], ml_opset=1,
            x_type=TensorProto.INT64)
    ml_case("scaler_per_feature", "Scaler", dict(offset=lin(5), scale=lin(5)), x, ["Y"], ml_opset=1)
    ml_case("scaler_one", "Scaler", dict(offset=[0.5], scale=[2.0]), np.round(x.astype(np.float64) * 8) / 8, ["Y"],
            ml_opset=1, x_type=TensorProto.DOUBLE)
    for norm in ("MAX", "L1", "L2"):
        z = x.copy()
        z[2] = 0  # a zero row stays as it is
        ml_case(f"normalizer_{norm.lower()}", "Normalizer", dict(norm=norm), z, ["Y"], ml_opset=1)


def cnn_cases():
    """Convolution and pooling (2-D, NCHW): pads, strides, dilations, groups, depthwise, 1×1,
    auto_pad, ceil_mode, count_include_pad; and Conv → BatchNormalization → Relu, which the
    runtime folds into one node. Its own generator, so other fixtures do not change."""
    c = np.random.default_rng(2024)
    x = lambda *s: c.standard_normal(s).astype(np.float32)
    op_case("conv_basic", "Conv", {"X": x(2, 3, 9, 9)}, [("W", x(4, 3, 3, 3)), ("B", x(4))], pads=[1, 1, 1, 1])
    op_case("conv_stride_dilation", "Conv", {"X": x(1, 4, 11, 10)}, [("W", x(6, 4, 3, 2))],
            strides=[2, 1], dilations=[2, 1], pads=[1, 0, 2, 1])
    op_case("conv_groups", "Conv", {"X": x(1, 6, 8, 8)}, [("W", x(4, 3, 3, 3)), ("B", x(4))], group=2)
    op_case("conv_depthwise", "Conv", {"X": x(2, 5, 7, 7)}, [("W", x(5, 1, 3, 3)), ("B", x(5))], group=5,
            pads=[1, 1, 1, 1], strides=[2, 2])
    op_case("conv_pointwise", "Conv", {"X": x(2, 8, 5, 6)}, [("W", x(3, 8, 1, 1)), ("B", x(3))])
    for mode in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        op_case(f"conv_{mode.lower()}", "Conv", {"X": x(1, 2, 7, 8)}, [("W", x(3, 2, 4, 3))], strides=[2, 2], auto_pad=mode)
    op_case("maxpool", "MaxPool", {"X": x(2, 3, 9, 9)}, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    op_case("maxpool_ceil", "MaxPool", {"X": x(1, 2, 8, 7)}, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    op_case("maxpool_dilation", "MaxPool", {"X": x(1, 2, 9, 9)}, kernel_shape=[2, 2], dilations=[2, 2], opset=17)
    op_case("maxpool_same_upper", "MaxPool", {"X": x(1, 2, 7, 6)}, kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_UPPER")
    op_case("averagepool", "AveragePool", {"X": x(2, 3, 9, 9)}, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    op_case("averagepool_include_pad", "AveragePool", {"X": x(1, 3, 8, 8)}, kernel_shape=[3, 3], strides=[2, 2],
            pads=[1, 1, 1, 1], count_include_pad=1)
    op_case("averagepool_ceil", "AveragePool", {"X": x(1, 2, 8, 7)}, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1,
            pads=[0, 1, 0, 1], count_include_pad=1)
    op_case("global_average_pool", "GlobalAveragePool", {"X": x(2, 4, 5, 6)})
    op_case("global_max_pool", "GlobalMaxPool", {"X": x(2, 4, 5, 6)})
    op_case("hardsigmoid", "HardSigmoid", {"X": x(3, 17) * 4}, alpha=0.3, beta=0.4)
    op_case("hardswish", "HardSwish", {"X": x(3, 17) * 5})
    bn = [("gamma", x(4) + 1.5), ("beta", x(4)), ("mean", x(4)), ("var", np.abs(x(4)) + 0.5)]
    # ConvTranspose: PaddleOCR's 2×2/2 upsampling, pads with output_padding, groups, dilation.
    op_case("convtranspose_k2s2", "ConvTranspose", {"X": x(1, 6, 5, 4)}, [("W", x(6, 3, 2, 2))], strides=[2, 2])
    op_case("convtranspose_pads", "ConvTranspose", {"X": x(2, 4, 5, 5)}, [("W", x(4, 2, 3, 3)), ("B", x(2))],
            strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    op_case("convtranspose_groups", "ConvTranspose", {"X": x(1, 4, 3, 4)}, [("W", x(4, 3, 3, 2)), ("B", x(6))],
            group=2, dilations=[2, 1], pads=[0, 1, 1, 0])
    # Resize: constant scales or sizes, nearest with each rounding, linear with each coordinate mode.
    empty = np.array([], np.float32)
    for coords, rounding in [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"), ("align_corners", "round_prefer_ceil"),
                             ("tf_half_pixel_for_nn", "ceil")]:
        op_case(f"resize_nearest_{coords}", "Resize", {"X": x(1, 2, 5, 4)},
                [("roi", empty), ("scales", np.array([1, 1, 2, 1.5], np.float32))],
                mode="nearest", coordinate_transformation_mode=coords, nearest_mode=rounding)
    for coords in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"):
        op_case(f"resize_linear_{coords}", "Resize", {"X": x(2, 3, 4, 5)},
                [("roi", empty), ("scales", np.array([1, 1, 1.75, 0.6], np.float32))],
                mode="linear", coordinate_transformation_mode=coords)
    op_case("resize_linear_sizes", "Resize", {"X": x(1, 2, 6, 7)},
            [("roi", empty), ("", None), ("sizes", np.array([1, 2, 9, 3], np.int64))], mode="linear")
    # Pad: constant (attribute form before 11, inputs after), reflect, edge, negative pads, axes (18).
    op_case("pad_constant_opset2", "Pad", {"X": x(2, 3, 4)}, pads=[0, 1, 2, 0, 2, 1], value=1.5, opset=10)
    op_case("pad_constant", "Pad", {"X": x(1, 2, 4, 5)}, [("pads", i64(0, 0, 1, 2, 0, 0, 3, 1)),
            ("value", np.array(-2, np.float32))])
    op_case("pad_reflect", "Pad", {"X": x(1, 2, 4, 5)}, [("pads", i64(0, 0, 3, 2, 0, 0, 2, 4))], mode="reflect")
    op_case("pad_edge_crop", "Pad", {"X": x(1, 2, 4, 5)}, [("pads", i64(0, 0, -1, 2, 0, 0, 2, -2))], mode="edge")
    op_case("pad_axes", "Pad", {"X": x(2, 3, 4)}, [("pads", i64(1, 2, 3, 0)), ("", None), ("axes", i64(-1, 0))], opset=18)
    graph_case("conv_bn_relu", [
        helper.make_node("Conv", ["X", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["Y"])], {"X": x(2, 3, 6, 6)}, [("W", x(4, 3, 3, 3)), ("B", x(4))] + bn)
    graph_case("conv_relu_maxpool", [
        helper.make_node("Conv", ["X", "W"], ["c"], strides=[2, 2], pads=[3, 3, 3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["Y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        {"X": x(1, 3, 32, 32)}, [("W", x(8, 3, 7, 7))])
    graph_case("conv_dw_bn_hardswish", [
        helper.make_node("Conv", ["X", "W", "B"], ["c"], group=4, strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], epsilon=1e-3),
        helper.make_node("HardSwish", ["n"], ["Y"])], {"X": x(2, 4, 9, 40) * 3}, [("W", x(4, 1, 3, 3)), ("B", x(4))] + bn)


def model_io():
    """Inputs and onnxruntime's outputs for the example models (tests load examples/models)."""
    os.makedirs(os.path.join(OUT, "models"), exist_ok=True)
    repo = os.path.join(os.path.dirname(__file__), "..", "examples", "models")
    r = np.random.default_rng(7)
    ids = r.integers(0, 1000, (3, 11)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 9:] = 0
    cases = {
        "ranking_mlp": {"features": r.standard_normal((5, 256)).astype(np.float32)},
        "dlrm": {"dense": r.standard_normal((6, 13)).astype(np.float32),
                 "sparse": np.stack([r.integers(0, n, 6) for n in (1000, 500, 200, 100)], axis=1).astype(np.int64)},
        "transformer_encoder": {"input_ids": ids, "attention_mask": mask},
        "sklearn_classifier": {"features": (r.standard_normal((9, 4)) * [0.8, 0.4, 1.7, 0.7] + [5.8, 3.0, 3.7, 1.2]).astype(np.float32)},
    }
    for name, feeds in cases.items():
        session = ort.InferenceSession(os.path.join(repo, name, "1", "model.onnx"), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        results = session.run(names, feeds)
        doc = {"inputs": {k: tensor_json(v) for k, v in feeds.items()},
               "outputs": {k: tensor_json(v) for k, v in zip(names, results)}}
        with open(os.path.join(OUT, "models", name + "-io.json"), "w") as f:
            json.dump(doc, f)


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
    weights_path = os.path.join(OUT, "external_weights.bin")
    if os.path.exists(weights_path):
        os.remove(weights_path)  # onnx appends to an existing data file
    save("external_data", ext, {"x": f32(2, 4)})

    # Refusals.
    onnx.save(model(
        [helper.make_node("GridSample", ["x", "grid"], ["y"], name="sampler0")],
        [vi("x", TensorProto.FLOAT, [1, 1, 4, 4]), vi("grid", TensorProto.FLOAT, [1, 2, 2, 2])],
        [vi("y", TensorProto.FLOAT, [1, 1, 2, 2])]), os.path.join(OUT, "unsupported_op.onnx"))
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

    # After the cases above, so adding cases here never changes their random values.
    operator_cases()
    tree_cases()
    cnn_cases()
    model_io()


if __name__ == "__main__":
    main()
