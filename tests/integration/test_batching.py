"""The worker's scheduler through the whole cluster: dynamic batching combines requests without
changing any sample's result, full queues and expired queue timeouts are refused at once with
UNAVAILABLE, higher priority levels go first, and statistics count executions and batch sizes.

The models are made here with the onnx helper: a copy of ranking_mlp under batching configs, and
a deliberately slow MLP (eight 2048x2048 layers sharing one weight, ~64 MFLOP a sample) so that queues fill."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import (EXAMPLES, RPC_TIMEOUT, expect_error, join_all, mlp_data,
                      response_parameters, run_threads, running_cluster, tensor, wait_until)

SLOW_WIDTH = 2048
PRIORITY_WIDTH = 4096


def write_config(folder: Path, name: str, max_batch: int, width: int, input_name: str,
                 output_name: str, output_width: int, batching: str = "", instances: int = 1) -> None:
    folder.joinpath("config.pbtxt").write_text(f"""
name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch}
input [ {{ name: "{input_name}" data_type: TYPE_FP32 dims: [ {width} ] }} ]
output [ {{ name: "{output_name}" data_type: TYPE_FP32 dims: [ {output_width} ] }} ]
instance_group [ {{ count: {instances} kind: KIND_CPU }} ]
{batching}
""")


def slow_model(path: Path, width: int = SLOW_WIDTH, layers: int = 8) -> None:
    """x [batch, width] → `layers` times (MatMul W, Relu) with one shared W → y [batch, width]."""
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
    nodes, last = [], "x"
    for i in range(layers):
        nodes.append(helper.make_node("MatMul", [last, "w"], [f"m{i}"]))
        out = "y" if i == layers - 1 else f"r{i}"
        nodes.append(helper.make_node("Relu", [f"m{i}"], [out]))
        last = out
    graph = helper.make_graph(
        nodes, "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("batching-repo")
    mlp = EXAMPLES / "ranking_mlp" / "1" / "model.onnx"
    batched = root / "mlp_batched"
    (batched / "1").mkdir(parents=True)
    shutil.copy(mlp, batched / "1" / "model.onnx")
    write_config(batched, "mlp_batched", 64, 256, "features", "score", 1,
                 "dynamic_batching { max_queue_delay_microseconds: 20000 preferred_batch_size: [ 8 ] }")
    for name, batching in {
        "slow_queue": "dynamic_batching { default_queue_policy { max_queue_size: 2 } }",
        "slow_timeout": "dynamic_batching { default_queue_policy { default_timeout_microseconds: 1000 timeout_action: REJECT } }",
        "slow_priority": "dynamic_batching { priority_levels: 2 default_priority_level: 2 }",
    }.items():
        folder = root / name
        # The priority model is about ten times slower (~0.5 GFLOP a request), so a queue of
        # two dozen takes a good fraction of a second to drain.
        width = PRIORITY_WIDTH if name == "slow_priority" else SLOW_WIDTH
        # The queue and timeout models take four times the layers (~256 MFLOP a request):
        # sixteen requests must fill a queue of two, and twelve must keep some waiting past
        # 1 ms, even when a busy machine spreads their arrival (with 8 layers a fresh CI clone
        # once served all twelve one by one, none waiting).
        layers = {"slow_priority": 16, "slow_queue": 32, "slow_timeout": 32}.get(name, 8)
        slow_model(folder / "1" / "model.onnx", width, layers)
        write_config(folder, name, 1, width, "x", "y", width, batching)
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, repo):
    with running_cluster(tmp_path_factory, "batching", model_repository=repo, workers=1) as c:
        yield c


@pytest.fixture(scope="module")
def slow_reference(repo) -> ort.InferenceSession:
    return ort.InferenceSession(str(repo / "slow_queue" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])


def infer_batched(client, x):
    return client.infer("mlp_batched", [tensor("features", x)], client_timeout=RPC_TIMEOUT)


def infer_slow(client, model, x, **kwargs):
    return client.infer(model, [tensor("x", x)], client_timeout=RPC_TIMEOUT, **kwargs)


def test_concurrent_requests_share_batches_and_results_do_not_change(cluster, reference):
    """Eight concurrent batch-1 requests (preferred size 8, 20 ms delay) ride in shared
    executions; every score equals onnxruntime's for that sample alone."""
    rng = np.random.default_rng(11)
    xs = [mlp_data(rng, 1) for _ in range(8)]
    results: list = [None] * 8
    errors: list[str] = []

    def send(i: int):
        try:
            results[i] = infer_batched(cluster.client(), xs[i])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    join_all(run_threads([lambda i=i: send(i) for i in range(8)]), timeout=30)
    assert not errors, errors
    sizes = []
    for x, result in zip(xs, results):
        expected = reference.ranking_mlp(x)
        np.testing.assert_allclose(result.as_numpy("score"), expected, rtol=1e-6, atol=1e-7)
        sizes.append(response_parameters(result)["fulcrum.batch_size"][1])
    assert max(sizes) > 1, f"no request shared an execution: batch sizes {sizes}"

    stats = cluster.client().get_inference_statistics("mlp_batched", as_json=True)["model_stats"][0]
    assert int(stats["inference_count"]) == 8, stats
    assert int(stats["execution_count"]) < 8, stats
    batch_sizes = {int(b["batch_size"]) for b in stats["batch_stats"]}
    assert any(size > 1 for size in batch_sizes), stats
    assert int(stats["inference_stats"]["queue"]["count"]) == 8, stats


def send_async(client, model: str, xs: list[np.ndarray], **kwargs) -> list:
    """Sends every request at once over one connection (tritonclient's async_infer); returns
    [(x, result or error, seconds)] in completion order."""
    done: list = []
    lock = threading.Lock()
    finished = threading.Event()
    starts = {}

    def callback(i, result, error):
        with lock:
            done.append((i, result if error is None else error, time.monotonic() - starts[i]))
            if len(done) == len(xs):
                finished.set()

    for i, x in enumerate(xs):
        starts[i] = time.monotonic()
        client.async_infer(model, [tensor("x", x)], callback=lambda result, error, i=i: callback(i, result, error),
                           client_timeout=RPC_TIMEOUT, **kwargs)
    assert finished.wait(60), f"only {len(done)} of {len(xs)} requests finished"
    return [(xs[i], outcome, seconds) for i, outcome, seconds in done]


def flood(cluster, model: str, count: int, **kwargs) -> tuple[list, list]:
    """`count` concurrent requests to a slow model; returns (successes, (error, seconds) pairs)."""
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((1, SLOW_WIDTH)).astype(np.float32) for _ in range(count)]
    outcomes = send_async(cluster.client(), model, xs, **kwargs)
    ok = [(x, r) for x, r, _ in outcomes if not isinstance(r, Exception)]
    failed = [(r, seconds) for _, r, seconds in outcomes if isinstance(r, Exception)]
    return ok, failed


def test_a_full_queue_rejects_at_once_and_accepted_requests_are_correct(cluster, slow_reference):
    ok, failed = flood(cluster, "slow_queue", 16)
    assert failed, "16 concurrent requests against a queue of 2 were all accepted"
    for error, _ in failed:
        assert error.status() == "StatusCode.UNAVAILABLE", error
        assert "exceeds maximum queue size" in error.message(), error
    assert ok, "every request was rejected"
    for x, result in ok:
        expected = slow_reference.run(None, {"x": x})[0]
        np.testing.assert_allclose(result.as_numpy("y"), expected, rtol=1e-4, atol=1e-5)


def test_queue_timeouts_reject_with_unavailable(cluster):
    ok, failed = flood(cluster, "slow_timeout", 12)
    assert ok, "every request timed out"
    assert failed, "no request waited longer than the 1 ms queue timeout"
    for error, _ in failed:
        assert error.status() == "StatusCode.UNAVAILABLE", error
        assert "timeout" in error.message(), error


def test_higher_priority_requests_overtake_queued_lower_priority_ones(cluster):
    """Twenty-four priority-2 requests are sent at once to a slow model, then one priority-1
    request: it overtakes the low-priority requests still queued when it arrives."""
    rng = np.random.default_rng(5)
    client = cluster.client()
    lows = 24
    order: list[str] = []
    lock = threading.Lock()
    all_done = threading.Event()

    def callback(label, result, error):
        with lock:
            order.append(label if error is None else f"{label}:{error}")
            if len(order) == lows + 1:
                all_done.set()

    for i in range(lows):
        x = rng.standard_normal((1, PRIORITY_WIDTH)).astype(np.float32)
        client.async_infer("slow_priority", [tensor("x", x)], priority=2, client_timeout=RPC_TIMEOUT,
                           callback=lambda result, error, label=f"low{i}": callback(label, result, error))
    x = rng.standard_normal((1, PRIORITY_WIDTH)).astype(np.float32)
    client.async_infer("slow_priority", [tensor("x", x)], priority=1, client_timeout=RPC_TIMEOUT,
                       callback=lambda result, error: callback("high", result, error))
    assert all_done.wait(90), order
    assert all(":" not in label for label in order), order
    overtaken = len(order) - 1 - order.index("high")
    assert overtaken >= lows // 2, f"only {overtaken} of {lows} earlier low-priority requests finished after the high-priority one: {order}"


def test_a_bad_priority_is_invalid_argument(cluster):
    x = np.zeros((1, PRIORITY_WIDTH), np.float32)
    expect_error(lambda: infer_slow(cluster.client(), "slow_priority", x, priority=3), "INVALID_ARGUMENT", "priority")


def test_hundreds_of_concurrent_calls_on_one_connection(cluster, reference):
    """256 calls in flight at once on one client connection (more than HTTP/2's customary 100
    concurrent streams) all succeed, ride in shared executions, and keep their own results."""
    rng = np.random.default_rng(21)
    client = cluster.client()
    xs = [mlp_data(rng, 1) for _ in range(256)]
    done: list = []
    lock = threading.Lock()
    finished = threading.Event()

    def callback(i, result, error):
        with lock:
            done.append((i, result, error))
            if len(done) == len(xs):
                finished.set()

    for i, x in enumerate(xs):
        client.async_infer("mlp_batched", [tensor("features", x)], client_timeout=RPC_TIMEOUT,
                           callback=lambda result, error, i=i: callback(i, result, error))
    assert finished.wait(90), f"{len(done)} of {len(xs)} finished"
    errors = [error for _, _, error in done if error is not None]
    assert not errors, errors[:3]
    sizes = []
    for i, result, _ in done:
        np.testing.assert_allclose(result.as_numpy("score"), reference.ranking_mlp(xs[i]), rtol=1e-6, atol=1e-7)
        sizes.append(response_parameters(result)["fulcrum.batch_size"][1])
    assert max(sizes) > 1, sizes
