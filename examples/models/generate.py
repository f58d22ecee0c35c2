#!/usr/bin/env python3
"""Writes Fulcrum's example model repository (Triton layout) next to this script.

    .venv/bin/python examples/models/generate.py [--out DIR]

Models (see README.md):
  simple       INPUT0, INPUT1 INT32 [16] -> OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1
  ranking_mlp  features FP32 [256] -> Gemm 512 + Relu -> Gemm 256 + Relu -> Gemm 1 -> Sigmoid -> score FP32 [1]
  dlrm         dense FP32 [13], sparse INT64 [4] -> embeddings (Gather), bottom MLP, pairwise dot
               products (MatMul/Transpose), top MLP, Sigmoid -> probability FP32 [1]
  transformer_encoder  input_ids, attention_mask INT64 [-1] (sequence length dynamic) -> 2-layer
               encoder (multi-head self-attention with the mask, LayerNormalization, Erf Gelu FFN,
               residuals) -> masked mean pooling -> embedding FP32 [128]
  sklearn_classifier   features FP32 [4] -> StandardScaler (Sub/Div) -> Gemm -> Softmax ->
               probabilities FP32 [3] (labels.txt) and ArgMax -> label INT64 [1]
  recommender  user FP32 [1, 32] and items FP32 [N, 64] (no batch dimension: one request is one
               user and its candidates) -> the user row repeated N times (Expand) beside each item
               (Concat) -> Gemm 128 + Relu -> Gemm 1 -> Sigmoid -> score FP32 [N, 1]

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


WIDE_IN, WIDE_HIDDEN, WIDE_MAX_BATCH = 512, 2048, 64


def build_wide_mlp() -> onnx.ModelProto:
    """FP32 [512] -> 2048 -> 2048 -> 1 (about 10.5 MFLOP a sample): compute, not the RPC,
    dominates, so dynamic batching pays. Its config turns dynamic batching on."""
    rng = np.random.default_rng(SEED + 7)

    def layer(name, fan_in, fan_out, gain):
        w = (rng.standard_normal((fan_out, fan_in)) * np.sqrt(gain / fan_in)).astype(np.float32)
        b = (rng.standard_normal(fan_out) * 0.05).astype(np.float32)
        return [numpy_helper.from_array(w, f"{name}.weight"), numpy_helper.from_array(b, f"{name}.bias")]

    initializers = layer("fc1", WIDE_IN, WIDE_HIDDEN, 2.0) + layer("fc2", WIDE_HIDDEN, WIDE_HIDDEN, 2.0) \
        + layer("fc3", WIDE_HIDDEN, 1, 1.0)
    nodes = [
        helper.make_node("Gemm", ["features", "fc1.weight", "fc1.bias"], ["fc1"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["relu1"], name="relu1"),
        helper.make_node("Gemm", ["relu1", "fc2.weight", "fc2.bias"], ["fc2"], name="fc2", transB=1),
        helper.make_node("Relu", ["fc2"], ["relu2"], name="relu2"),
        helper.make_node("Gemm", ["relu2", "fc3.weight", "fc3.bias"], ["logit"], name="fc3", transB=1),
        helper.make_node("Sigmoid", ["logit"], ["score"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes=nodes, name="wide_mlp",
        inputs=[helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", WIDE_IN])],
        outputs=[helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        initializer=initializers,
        doc_string=f"Wide MLP {WIDE_IN} -> {WIDE_HIDDEN} -> {WIDE_HIDDEN} -> 1; weights from numpy default_rng({SEED + 7}).",
    )
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
    kind: KIND_AUTO
  }}
]
"""


DLRM_DENSE, DLRM_EMB = 13, 16
DLRM_TABLES = (1000, 500, 200, 100)
DLRM_BOTTOM = (64, DLRM_EMB)
DLRM_TOP = (64, 32)
DLRM_MAX_BATCH = 128


def _dense_layer(rng, fan_in, fan_out, gain=2.0):
    w = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(gain / fan_in)).astype(np.float32)
    b = (rng.standard_normal(fan_out) * 0.05).astype(np.float32)
    return w, b


def build_dlrm() -> onnx.ModelProto:
    """DLRM-style click model: embedding lookups, bottom MLP, dot-product interaction, top MLP."""
    rng = np.random.default_rng(SEED + 1)
    inits, nodes = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name=name))
        return name

    # Bottom MLP on the dense features (MatMul + Add + Relu: the form PyTorch exports).
    x, fan_in = "dense", DLRM_DENSE
    for i, width in enumerate(DLRM_BOTTOM):
        w, b = _dense_layer(rng, fan_in, width)
        nodes += [helper.make_node("MatMul", [x, const(f"bot{i}.weight", w)], [f"bot{i}.mm"], name=f"bot{i}"),
                  helper.make_node("Add", [f"bot{i}.mm", const(f"bot{i}.bias", b)], [f"bot{i}.pre"], name=f"bot{i}.bias"),
                  helper.make_node("Relu", [f"bot{i}.pre"], [f"bot{i}.out"], name=f"bot{i}.relu")]
        x, fan_in = f"bot{i}.out", width
    bottom = x
    # Embedding lookups: column i of `sparse` indexes table i.
    features = [bottom]
    for i, rows in enumerate(DLRM_TABLES):
        table = (rng.standard_normal((rows, DLRM_EMB)) * 0.5).astype(np.float32)
        nodes += [helper.make_node("Gather", ["sparse", const(f"col{i}", np.array(i, dtype=np.int64))], [f"idx{i}"],
                                   name=f"column{i}", axis=1),
                  helper.make_node("Gather", [const(f"emb{i}.weight", table), f"idx{i}"], [f"emb{i}"], name=f"embedding{i}")]
        features.append(f"emb{i}")
    # Interaction: T [b, F, d], Z = T · Tᵀ, keep the strict upper triangle.
    axes1 = const("axes1", np.array([1], dtype=np.int64))
    for f in features:
        nodes.append(helper.make_node("Unsqueeze", [f, axes1], [f + ".u"], name=f"unsqueeze.{f}"))
    count = len(features)
    nodes += [helper.make_node("Concat", [f + ".u" for f in features], ["T"], name="stack", axis=1),
              helper.make_node("Transpose", ["T"], ["Tt"], name="transpose", perm=[0, 2, 1]),
              helper.make_node("MatMul", ["T", "Tt"], ["Z"], name="interact"),
              helper.make_node("Flatten", ["Z"], ["Zflat"], name="flatten", axis=1)]
    upper = np.array([i * count + j for i in range(count) for j in range(i + 1, count)], dtype=np.int64)
    nodes += [helper.make_node("Gather", ["Zflat", const("triu", upper)], ["pairs"], name="upper_triangle", axis=1),
              helper.make_node("Concat", [bottom, "pairs"], ["top.in"], name="concat_top", axis=1)]
    # Top MLP (Gemm with transB: the PyTorch Linear layout), then the click probability.
    x, fan_in = "top.in", DLRM_EMB + len(upper)
    for i, width in enumerate(DLRM_TOP + (1,)):
        w, b = _dense_layer(rng, fan_in, width, gain=2.0 if width > 1 else 1.0)
        nodes.append(helper.make_node("Gemm", [x, const(f"top{i}.weight", w.T.copy()), const(f"top{i}.bias", b)],
                                      [f"top{i}.out"], name=f"top{i}", transB=1))
        if width > 1:
            nodes.append(helper.make_node("Relu", [f"top{i}.out"], [f"top{i}.act"], name=f"top{i}.relu"))
            x = f"top{i}.act"
        else:
            x = f"top{i}.out"
        fan_in = width
    nodes.append(helper.make_node("Sigmoid", [x], ["probability"], name="sigmoid"))
    graph = helper.make_graph(
        nodes, "dlrm",
        [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["batch", DLRM_DENSE]),
         helper.make_tensor_value_info("sparse", TensorProto.INT64, ["batch", len(DLRM_TABLES)])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])],
        initializer=inits,
        doc_string=f"DLRM-style model; weights from numpy default_rng({SEED + 1}).")
    return _model(graph)


TX_VOCAB, TX_MAXLEN, TX_DIM, TX_HEADS, TX_FFN, TX_LAYERS = 1000, 256, 128, 4, 512, 2
TX_MAX_BATCH = 16


def build_transformer_encoder() -> onnx.ModelProto:
    """A BERT-style encoder as PyTorch exports it: shape subgraphs, Erf Gelu, masked mean pooling."""
    rng = np.random.default_rng(SEED + 2)
    inits, nodes = [], []
    head = TX_DIM // TX_HEADS

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name=name))
        return name

    def node(op, ins, outs, name, **attrs):
        nodes.append(helper.make_node(op, ins, outs if isinstance(outs, list) else [outs], name=name, **attrs))
        return outs

    def linear(x, fan_in, fan_out, name):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = (rng.standard_normal(fan_out) * 0.02).astype(np.float32)
        node("MatMul", [x, const(name + ".weight", w)], name + ".mm", name)
        return node("Add", [name + ".mm", const(name + ".bias", b)], name + ".out", name + ".bias")

    def layer_norm(x, name):
        g = (1 + 0.1 * rng.standard_normal(TX_DIM)).astype(np.float32)
        b = (0.1 * rng.standard_normal(TX_DIM)).astype(np.float32)
        return node("LayerNormalization", [x, const(name + ".gamma", g), const(name + ".beta", b)], name + ".out", name,
                    axis=-1, epsilon=1e-5)

    # Embeddings: tokens plus positions 0..seq-1 (Slice of the position table by the runtime length).
    words = (rng.standard_normal((TX_VOCAB, TX_DIM))).astype(np.float32)
    positions = (0.5 * rng.standard_normal((TX_MAXLEN, TX_DIM))).astype(np.float32)
    node("Gather", [const("word_embeddings", words), "input_ids"], "tok", "token_embedding")
    node("Shape", ["input_ids"], "seq_len", "sequence_length", start=1, end=2)
    zero = const("zero1", np.array([0], dtype=np.int64))
    node("Slice", [const("position_embeddings", positions), zero, "seq_len", zero], "pos", "positions")
    node("Add", ["tok", "pos"], "emb", "embed_sum")
    h = layer_norm("emb", "embed_ln")
    # Additive attention mask [b, 1, 1, s]: 0 where attended, -10000 where padded.
    node("Equal", ["attention_mask", const("zero_i64", np.array(0, dtype=np.int64))], "pad", "is_padding")
    node("Where", ["pad", const("neg", np.array(-10000.0, dtype=np.float32)), const("zero_f", np.array(0.0, dtype=np.float32))],
         "mask_bias2", "mask_bias")
    node("Unsqueeze", ["mask_bias2", const("axes12", np.array([1, 2], dtype=np.int64))], "mask_bias", "mask_unsqueeze")
    # Head-split shapes from the runtime shape: [b, s, heads, head_dim].
    node("Shape", [h], "bs", "batch_seq", end=2)
    node("Concat", ["bs", const("heads_dims", np.array([TX_HEADS, head], dtype=np.int64))], "split_shape", "split_shape", axis=0)
    merge = const("merge_shape", np.array([0, 0, TX_DIM], dtype=np.int64))
    scale = const("scale", np.array(1.0 / np.sqrt(head), dtype=np.float32))
    sqrt2 = const("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    one = const("one", np.array(1.0, dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))
    for l in range(TX_LAYERS):
        p = f"layer{l}"
        heads = {}
        for part, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
            x = linear(h, TX_DIM, TX_DIM, f"{p}.{part}")
            node("Reshape", [x, "split_shape"], f"{p}.{part}.split", f"{p}.{part}.split")
            heads[part] = node("Transpose", [f"{p}.{part}.split"], f"{p}.{part}.heads", f"{p}.{part}.transpose", perm=perm)
        node("MatMul", [heads["q"], heads["k"]], f"{p}.scores", f"{p}.scores")
        node("Mul", [f"{p}.scores", scale], f"{p}.scaled", f"{p}.scale")
        node("Add", [f"{p}.scaled", "mask_bias"], f"{p}.masked", f"{p}.mask")
        node("Softmax", [f"{p}.masked"], f"{p}.probs", f"{p}.softmax", axis=-1)
        node("MatMul", [f"{p}.probs", heads["v"]], f"{p}.context", f"{p}.context")
        node("Transpose", [f"{p}.context"], f"{p}.context.t", f"{p}.context.transpose", perm=[0, 2, 1, 3])
        node("Reshape", [f"{p}.context.t", merge], f"{p}.context.merged", f"{p}.merge")
        attn = linear(f"{p}.context.merged", TX_DIM, TX_DIM, f"{p}.o")
        node("Add", [h, attn], f"{p}.res1", f"{p}.residual1")
        h = layer_norm(f"{p}.res1", f"{p}.ln1")
        # Feed-forward with the exact (erf) Gelu as PyTorch exports it.
        f1 = linear(h, TX_DIM, TX_FFN, f"{p}.ffn1")
        node("Div", [f1, sqrt2], f"{p}.gelu.div", f"{p}.gelu.div")
        node("Erf", [f"{p}.gelu.div"], f"{p}.gelu.erf", f"{p}.gelu.erf")
        node("Add", [f"{p}.gelu.erf", one], f"{p}.gelu.add", f"{p}.gelu.add")
        node("Mul", [f1, f"{p}.gelu.add"], f"{p}.gelu.mul", f"{p}.gelu.mul")
        node("Mul", [f"{p}.gelu.mul", half], f"{p}.gelu", f"{p}.gelu.half")
        f2 = linear(f"{p}.gelu", TX_FFN, TX_DIM, f"{p}.ffn2")
        node("Add", [h, f2], f"{p}.res2", f"{p}.residual2")
        h = layer_norm(f"{p}.res2", f"{p}.ln2")
    # Masked mean pooling: sum(h · m) / max(sum(m), 1e-9).
    node("Cast", ["attention_mask"], "mask_f", "mask_float", to=TensorProto.FLOAT)
    node("Unsqueeze", ["mask_f", const("axes2", np.array([2], dtype=np.int64))], "mask_f3", "mask_unsqueeze2")
    node("Mul", [h, "mask_f3"], "masked_h", "mask_hidden")
    axis1 = const("axis1", np.array([1], dtype=np.int64))
    node("ReduceSum", ["masked_h", axis1], "summed", "pool_sum", keepdims=0)
    node("ReduceSum", ["mask_f", axis1], "count", "pool_count", keepdims=1)
    node("Clip", ["count", const("min_count", np.array(1e-9, dtype=np.float32))], "count_c", "pool_clip")
    node("Div", ["summed", "count_c"], "embedding", "pool_mean")
    graph = helper.make_graph(
        nodes, "transformer_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", TX_DIM])],
        initializer=inits,
        doc_string=f"{TX_LAYERS}-layer transformer encoder, d={TX_DIM}, {TX_HEADS} heads, FFN {TX_FFN}; "
                   f"weights from numpy default_rng({SEED + 2}).")
    return _model(graph)


SK_FEATURES, SK_LABELS = 4, ("setosa", "versicolor", "virginica")
SK_MAX_BATCH = 256


def build_sklearn_classifier() -> onnx.ModelProto:
    """StandardScaler + multinomial LogisticRegression on iris-like features, as Gemm/Softmax/ArgMax."""
    mean = np.array([5.84, 3.06, 3.76, 1.20], dtype=np.float32)
    scale = np.array([0.83, 0.44, 1.76, 0.76], dtype=np.float32)
    coef = np.array([[-1.07, 1.16, -1.80, -1.71], [0.58, -0.36, -0.33, -0.74], [0.49, -0.80, 2.13, 2.45]], dtype=np.float32)
    intercept = np.array([-0.26, 2.07, -1.81], dtype=np.float32)
    inits = [numpy_helper.from_array(v, name=k) for k, v in
             (("mean", mean), ("scale", scale), ("coef", coef), ("intercept", intercept))]
    nodes = [helper.make_node("Sub", ["features", "mean"], ["centered"], name="scaler_center"),
             helper.make_node("Div", ["centered", "scale"], ["scaled"], name="scaler_scale"),
             helper.make_node("Gemm", ["scaled", "coef", "intercept"], ["logits"], name="linear", transB=1),
             helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
             helper.make_node("ArgMax", ["probabilities"], ["label"], name="argmax", axis=1, keepdims=1)]
    graph = helper.make_graph(
        nodes, "sklearn_classifier",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", SK_FEATURES])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(SK_LABELS)]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["batch", 1])],
        initializer=inits,
        doc_string="StandardScaler + LogisticRegression (multinomial) exported as Gemm + Softmax + ArgMax.")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name=PRODUCER,
                              producer_version="1")
    model.ir_version = 7
    model.model_version = 1
    onnx.checker.check_model(model, full_check=True)
    return model


REC_USER, REC_ITEM, REC_HIDDEN = 32, 64, 128


def build_recommender() -> onnx.ModelProto:
    """Scores every candidate item for one user: [user ‖ item] -> MLP -> Sigmoid."""
    rng = np.random.default_rng(SEED + 11)
    w1, b1 = _dense_layer(rng, REC_USER + REC_ITEM, REC_HIDDEN)
    w2, b2 = _dense_layer(rng, REC_HIDDEN, 1, gain=1.0)
    inits = [numpy_helper.from_array(v, name=k) for k, v in (
        ("fc1.weight", w1), ("fc1.bias", b1), ("fc2.weight", w2), ("fc2.bias", b2),
        ("zero", np.array([0], dtype=np.int64)), ("one", np.array([1], dtype=np.int64)),
        ("user_width", np.array([REC_USER], dtype=np.int64)))]
    nodes = [
        helper.make_node("Shape", ["items"], ["items_shape"], name="items_shape"),
        helper.make_node("Slice", ["items_shape", "zero", "one"], ["n"], name="candidates"),
        helper.make_node("Concat", ["n", "user_width"], ["user_rows_shape"], name="user_rows_shape", axis=0),
        helper.make_node("Expand", ["user", "user_rows_shape"], ["user_rows"], name="repeat_user"),
        helper.make_node("Concat", ["user_rows", "items"], ["pairs"], name="pairs", axis=1),
        helper.make_node("Gemm", ["pairs", "fc1.weight", "fc1.bias"], ["h1"], name="fc1"),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("Gemm", ["a1", "fc2.weight", "fc2.bias"], ["logit"], name="fc2"),
        helper.make_node("Sigmoid", ["logit"], ["score"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "recommender",
        [helper.make_tensor_value_info("user", TensorProto.FLOAT, [1, REC_USER]),
         helper.make_tensor_value_info("items", TensorProto.FLOAT, ["candidates", REC_ITEM])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["candidates", 1])],
        initializer=inits)
    return _model(graph)


def _config(name, max_batch, inputs, outputs):
    def tensor(entry):
        tname, dtype, dims = entry[:3]
        extra = f'\n    label_filename: "{entry[3]}"' if len(entry) > 3 else ""
        return f'  {{\n    name: "{tname}"\n    data_type: {dtype}\n    dims: [ {", ".join(map(str, dims))} ]{extra}\n  }}'
    separator = ",\n"
    return (f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {max_batch}\n'
            f'input [\n{separator.join(map(tensor, inputs))}\n]\n'
            f'output [\n{separator.join(map(tensor, outputs))}\n]\n'
            'instance_group [\n  {\n    count: 1\n    kind: KIND_AUTO\n  }\n]\n')


DLRM_CONFIG = _config("dlrm", DLRM_MAX_BATCH,
                      [("dense", "TYPE_FP32", [DLRM_DENSE]), ("sparse", "TYPE_INT64", [len(DLRM_TABLES)])],
                      [("probability", "TYPE_FP32", [1])])
TRANSFORMER_CONFIG = _config("transformer_encoder", TX_MAX_BATCH,
                             [("input_ids", "TYPE_INT64", [-1]), ("attention_mask", "TYPE_INT64", [-1])],
                             [("embedding", "TYPE_FP32", [TX_DIM])])
SKLEARN_CONFIG = _config("sklearn_classifier", SK_MAX_BATCH,
                         [("features", "TYPE_FP32", [SK_FEATURES])],
                         [("probabilities", "TYPE_FP32", [len(SK_LABELS)], "labels.txt"), ("label", "TYPE_INT64", [1])])


RECOMMENDER_CONFIG = _config("recommender", 0,
                              [("user", "TYPE_FP32", [1, REC_USER]), ("items", "TYPE_FP32", [-1, REC_ITEM])],
                              [("score", "TYPE_FP32", [-1, 1])])

WIDE_MLP_CONFIG = _config("wide_mlp", WIDE_MAX_BATCH, [("features", "TYPE_FP32", [WIDE_IN])],
                          [("score", "TYPE_FP32", [1])]) + (
    "dynamic_batching {\n  max_queue_delay_microseconds: 2000\n}\n")


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

    # The newer models: run once each and require informative (finite, spread) outputs.
    def run(name, feeds):
        session = ort.InferenceSession(os.path.join(out_dir, name, "1", "model.onnx"), opts,
                                       providers=["CPUExecutionProvider"])
        return session.run(None, feeds)

    (p,) = run("dlrm", {"dense": rng.standard_normal((32, DLRM_DENSE)).astype(np.float32),
                        "sparse": np.stack([rng.integers(0, r, 32) for r in DLRM_TABLES], axis=1).astype(np.int64)})
    assert np.isfinite(p).all() and 0.01 < p.min() and p.max() < 0.99 and p.std() > 0.05, (p.min(), p.max(), p.std())
    ids = rng.integers(0, TX_VOCAB, (4, 37)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 20:] = 0
    (e,) = run("transformer_encoder", {"input_ids": ids, "attention_mask": mask})
    assert e.shape == (4, TX_DIM) and np.isfinite(e).all() and e.std() > 0.1, e.std()
    # Padding must not matter: the masked row equals the same row run without its padding.
    (e1,) = run("transformer_encoder", {"input_ids": ids[1:2, :20], "attention_mask": mask[1:2, :20]})
    np.testing.assert_allclose(e[1], e1[0], rtol=1e-4, atol=1e-4)
    x = (rng.standard_normal((16, SK_FEATURES)) * [0.8, 0.4, 1.7, 0.7] + [5.8, 3.0, 3.7, 1.2]).astype(np.float32)
    probabilities, label = run("sklearn_classifier", {"features": x})
    np.testing.assert_array_equal(label[:, 0], probabilities.argmax(axis=1))
    assert len(set(label[:, 0].tolist())) > 1
    (wide,) = run("wide_mlp", {"features": rng.standard_normal((32, WIDE_IN)).astype(np.float32)})
    assert wide.shape == (32, 1) and np.isfinite(wide).all() and wide.std() > 0.02, wide.std()
    user = rng.standard_normal((1, REC_USER)).astype(np.float32)
    items = rng.standard_normal((100, REC_ITEM)).astype(np.float32)
    (rec,) = run("recommender", {"user": user, "items": items})
    rs = np.random.default_rng(SEED + 11)
    w1, b1 = _dense_layer(rs, REC_USER + REC_ITEM, REC_HIDDEN)
    w2, b2 = _dense_layer(rs, REC_HIDDEN, 1, gain=1.0)
    pairs = np.concatenate([np.repeat(user, 100, axis=0), items], axis=1).astype(np.float64)
    expected = 1 / (1 + np.exp(-(np.maximum(pairs @ w1 + b1, 0) @ w2 + b2)))
    np.testing.assert_allclose(rec, expected, rtol=1e-5, atol=1e-6)
    assert rec.std() > 0.02, rec.std()
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
        "dlrm": (build_dlrm(), DLRM_CONFIG),
        "transformer_encoder": (build_transformer_encoder(), TRANSFORMER_CONFIG),
        "sklearn_classifier": (build_sklearn_classifier(), SKLEARN_CONFIG),
        "wide_mlp": (build_wide_mlp(), WIDE_MLP_CONFIG),
        "recommender": (build_recommender(), RECOMMENDER_CONFIG),
    }
    for name, (model, config) in models.items():
        write(os.path.join(args.out, name, "config.pbtxt"), config.encode())
        write(os.path.join(args.out, name, "1", "model.onnx"), model.SerializeToString(deterministic=True))
    write(os.path.join(args.out, "sklearn_classifier", "labels.txt"), ("\n".join(SK_LABELS) + "\n").encode())
    self_check(args.out)
    for name in models:
        size = os.path.getsize(os.path.join(args.out, name, "1", "model.onnx"))
        print(f"wrote {os.path.join(args.out, name)} (model.onnx {size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
