"""One 2-worker cluster serving a copy of examples/models plus a `broken` model (garbage
model.onnx), with --max-message-bytes 1 MiB; exercised through tritonclient's gRPC client,
raw protobuf stubs, grpc.health.v1 and the `fulcrum` CLI."""

from __future__ import annotations

import json
import re
import threading
import time
import socket
import urllib.request
import zlib

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import model_config_pb2, service_pb2
from tritonclient.utils import InferenceServerException

from conftest import (MLP_FEATURES, MLP_MAX_BATCH, MiB, RPC_TIMEOUT, SIMPLE_DIM, SIMPLE_MAX_BATCH,
                      TIMING_KEYS, check_mlp, check_simple, expect_error, expect_rpc_error,
                      infer_mlp, infer_simple, join_all, make_repository, mlp_data, process_alive,
                      raw_input, response_parameters, run_cli, run_threads, running_cluster, simple_data,
                      tensor, wait_until)

WORKERS = 2
MAX_MESSAGE_BYTES = 1 * MiB


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"), broken=True)
    with running_cluster(tmp_path_factory, "serving", model_repository=repo, workers=WORKERS,
                         max_message_bytes=MAX_MESSAGE_BYTES) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    c = cluster.client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def stub(cluster):
    return cluster.stub()


@pytest.fixture
def rng(request):
    # A different but reproducible stream per test.
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


# --------------------------------------------------------------------------------------------
# startup contract


def test_endpoints_file(cluster):
    ep = cluster.endpoints
    for key in ("balancer", "grpc"):
        assert re.fullmatch(r"127\.0\.0\.1:\d+", ep[key]), f"{key}: {ep[key]!r}"
        assert int(ep[key].rsplit(":", 1)[1]) > 0
    assert ep.get("http") is None or re.fullmatch(r"127\.0\.0\.1:\d+", ep["http"])
    assert isinstance(ep["balancer_pid"], int) and process_alive(ep["balancer_pid"])
    assert isinstance(ep["frontend_pid"], int) and process_alive(ep["frontend_pid"])
    workers = ep["workers"]
    assert [w["name"] for w in workers] == [f"worker-{i}" for i in range(1, WORKERS + 1)]
    for w in workers:
        assert re.fullmatch(r"127\.0\.0\.1:\d+", w["address"]), w
        assert isinstance(w["pid"], int) and process_alive(w["pid"]), w
    pids = cluster.child_pids()
    assert len(set(pids)) == len(pids) == WORKERS + 2
    assert cluster.proc.pid not in pids


def test_up_prints_ready(cluster):
    assert wait_until(lambda: "fulcrum: ready" in cluster.stdout_path.read_text(errors="replace"),
                      timeout=10), f"stdout: {cluster.stdout_path.read_text(errors='replace')!r}"


# --------------------------------------------------------------------------------------------
# health and metadata


def test_live_and_ready(client):
    assert client.is_server_live(client_timeout=RPC_TIMEOUT) is True
    assert client.is_server_ready(client_timeout=RPC_TIMEOUT) is True
    for model in ("simple", "ranking_mlp"):
        assert client.is_model_ready(model, client_timeout=RPC_TIMEOUT) is True, model
        assert client.is_model_ready(model, "1", client_timeout=RPC_TIMEOUT) is True, model


def test_model_ready_false_for_broken_and_unknown(client):
    assert client.is_model_ready("broken", client_timeout=RPC_TIMEOUT) is False
    for model, version in (("no_such_model", ""), ("simple", "7")):
        try:
            ready = client.is_model_ready(model, version, client_timeout=RPC_TIMEOUT)
        except InferenceServerException as e:  # Triton answers false; NOT_FOUND is fine too
            assert e.status() == "StatusCode.NOT_FOUND", (e.status(), e.message())
        else:
            assert ready is False, (model, version)


def test_grpc_health_check(cluster):
    with cluster.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        response = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_http_health_ready(cluster):
    if not cluster.endpoints.get("http"):
        pytest.skip("this cluster has no HTTP endpoint (endpoints file: http is null)")
    for path in ("/v2/health/live", "/v2/health/ready"):
        with urllib.request.urlopen(f"http://{cluster.endpoints['http']}{path}", timeout=RPC_TIMEOUT) as r:
            assert r.status == 200, path


def test_server_metadata(client):
    md = client.get_server_metadata(client_timeout=RPC_TIMEOUT)
    assert md.name == "fulcrum"
    assert md.version != ""


@pytest.mark.parametrize("version", ["", "1"])
def test_model_metadata_simple(client, version):
    md = client.get_model_metadata("simple", version, client_timeout=RPC_TIMEOUT)
    assert md.name == "simple"
    assert list(md.versions) == ["1"]
    assert md.platform == "onnxruntime_onnx"
    assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [
        ("INPUT0", "INT32", [-1, SIMPLE_DIM]), ("INPUT1", "INT32", [-1, SIMPLE_DIM])]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [
        ("OUTPUT0", "INT32", [-1, SIMPLE_DIM]), ("OUTPUT1", "INT32", [-1, SIMPLE_DIM])]


def test_model_metadata_ranking_mlp(client):
    md = client.get_model_metadata("ranking_mlp", client_timeout=RPC_TIMEOUT)
    assert md.name == "ranking_mlp"
    assert list(md.versions) == ["1"]
    assert md.platform == "onnxruntime_onnx"
    assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [("features", "FP32", [-1, MLP_FEATURES])]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [("score", "FP32", [-1, 1])]


def test_model_metadata_unknown_model(client):
    expect_error(lambda: client.get_model_metadata("no_such_model", client_timeout=RPC_TIMEOUT),
                 "NOT_FOUND", "no_such_model")


def test_model_config(client):
    cfg = client.get_model_config("simple", client_timeout=RPC_TIMEOUT).config
    assert cfg.name == "simple"
    assert cfg.max_batch_size == SIMPLE_MAX_BATCH
    assert [(i.name, i.data_type, list(i.dims)) for i in cfg.input] == [
        ("INPUT0", model_config_pb2.TYPE_INT32, [SIMPLE_DIM]),
        ("INPUT1", model_config_pb2.TYPE_INT32, [SIMPLE_DIM])]
    assert [(o.name, o.data_type, list(o.dims)) for o in cfg.output] == [
        ("OUTPUT0", model_config_pb2.TYPE_INT32, [SIMPLE_DIM]),
        ("OUTPUT1", model_config_pb2.TYPE_INT32, [SIMPLE_DIM])]

    cfg = client.get_model_config("ranking_mlp", client_timeout=RPC_TIMEOUT).config
    assert cfg.name == "ranking_mlp"
    assert cfg.max_batch_size == MLP_MAX_BATCH
    assert [(i.name, i.data_type, list(i.dims)) for i in cfg.input] == [
        ("features", model_config_pb2.TYPE_FP32, [MLP_FEATURES])]
    assert [(o.name, o.data_type, list(o.dims)) for o in cfg.output] == [
        ("score", model_config_pb2.TYPE_FP32, [1])]


# --------------------------------------------------------------------------------------------
# inference, checked against onnxruntime on the same model files


@pytest.mark.parametrize("batch", [1, 3, SIMPLE_MAX_BATCH])
def test_infer_simple(client, reference, rng, batch):
    a, b = simple_data(rng, batch)
    result = infer_simple(client, a, b)
    response = result.get_response()
    assert response.model_name == "simple"
    assert response.model_version in ("", "1")
    outputs = {o.name: (o.datatype, list(o.shape)) for o in response.outputs}
    assert outputs == {"OUTPUT0": ("INT32", [batch, SIMPLE_DIM]), "OUTPUT1": ("INT32", [batch, SIMPLE_DIM])}
    assert len(response.raw_output_contents) == 2
    check_simple(result, a, b, reference)


@pytest.mark.parametrize("batch", [1, 5, MLP_MAX_BATCH])
def test_infer_ranking_mlp(client, reference, rng, batch):
    x = mlp_data(rng, batch)
    result = infer_mlp(client, x)
    response = result.get_response()
    assert response.model_name == "ranking_mlp"
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [("score", "FP32", [batch, 1])]
    check_mlp(result, x, reference)


def test_infer_explicit_version(client, reference, rng):
    a, b = simple_data(rng, 2)
    check_simple(infer_simple(client, a, b, model_version="1"), a, b, reference)


def test_infer_many_sequential(client, reference, rng):
    """Many requests in a row: every one right (catches buffer reuse and routing bugs)."""
    for i in range(40):
        if i % 2:
            a, b = simple_data(rng, 1 + i % SIMPLE_MAX_BATCH)
            check_simple(infer_simple(client, a, b), a, b, reference)
        else:
            x = mlp_data(rng, 1 + i % 9)
            check_mlp(infer_mlp(client, x), x, reference)


def test_timing_breakdown_parameters(cluster, client, rng):
    worker_ids = cluster.worker_ids()
    assert len(worker_ids) == WORKERS
    for model in ("simple", "ranking_mlp"):
        if model == "simple":
            result = infer_simple(client, *simple_data(rng, 2))
        else:
            result = infer_mlp(client, mlp_data(rng, 4))
        params = response_parameters(result)
        for key in TIMING_KEYS:
            assert key in params, f"{model}: {key} missing from {params}"
            kind, value = params[key]
            assert kind == "int64_param", f"{key} is {kind}"
            assert 0 <= value < 60_000_000, f"{key} = {value} us"
        kind, worker = params.get("fulcrum.worker", (None, None))
        assert kind == "string_param", f"fulcrum.worker is {kind}"
        assert worker in worker_ids, f"fulcrum.worker {worker!r} is not a worker id {worker_ids}"


def test_typed_contents_simple(stub, reference, rng):
    """Inputs as typed `contents` (not raw): the answer still comes back as raw outputs."""
    batch = 3
    a, b = simple_data(rng, batch)
    request = service_pb2.ModelInferRequest(model_name="simple")
    for name, array in (("INPUT0", a), ("INPUT1", b)):
        t = raw_input(name, "INT32", [batch, SIMPLE_DIM])
        t.contents.int_contents.extend(array.ravel().tolist())
        request.inputs.append(t)
    response = stub.ModelInfer(request, timeout=RPC_TIMEOUT)
    assert [o.name for o in response.outputs] == ["OUTPUT0", "OUTPUT1"]
    assert len(response.raw_output_contents) == 2
    o0, o1 = reference.simple(a, b)
    for out, raw, want in zip(response.outputs, response.raw_output_contents, (o0, o1)):
        assert out.datatype == "INT32" and list(out.shape) == [batch, SIMPLE_DIM]
        np.testing.assert_array_equal(np.frombuffer(raw, dtype="<i4").reshape(batch, SIMPLE_DIM), want)


def test_typed_contents_ranking_mlp(stub, reference, rng):
    batch = 4
    x = mlp_data(rng, batch)
    request = service_pb2.ModelInferRequest(model_name="ranking_mlp", id="typed-1")
    t = raw_input("features", "FP32", [batch, MLP_FEATURES])
    t.contents.fp32_contents.extend(x.ravel().tolist())
    request.inputs.append(t)
    response = stub.ModelInfer(request, timeout=RPC_TIMEOUT)
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [("score", "FP32", [batch, 1])]
    got = np.frombuffer(response.raw_output_contents[0], dtype="<f4").reshape(batch, 1)
    np.testing.assert_allclose(got, reference.ranking_mlp(x), rtol=1e-5, atol=1e-6)


def test_raw_request_through_stub(stub, reference, rng):
    """The same raw encoding tritonclient uses, built by hand (little-endian, row-major)."""
    a, b = simple_data(rng, 2)
    request = service_pb2.ModelInferRequest(model_name="simple", model_version="1")
    for name, array in (("INPUT0", a), ("INPUT1", b)):
        request.inputs.append(raw_input(name, "INT32", list(array.shape)))
        request.raw_input_contents.append(array.astype("<i4").tobytes())
    response = stub.ModelInfer(request, timeout=RPC_TIMEOUT)
    o0, _ = reference.simple(a, b)
    index = [o.name for o in response.outputs].index("OUTPUT0")
    np.testing.assert_array_equal(
        np.frombuffer(response.raw_output_contents[index], dtype="<i4").reshape(a.shape), o0)


# Beyond the stated contract, but what Triton does and tritonclient users rely on.

def test_requested_output_subset(client, reference, rng):
    a, b = simple_data(rng, 2)
    result = client.infer("simple", [tensor("INPUT0", a), tensor("INPUT1", b)],
                          outputs=[grpcclient.InferRequestedOutput("OUTPUT1")],
                          client_timeout=RPC_TIMEOUT)
    assert [o.name for o in result.get_response().outputs] == ["OUTPUT1"]
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), reference.simple(a, b)[1])


def test_request_id_echoed(client, rng):
    result = infer_simple(client, *simple_data(rng, 1), request_id="req-42")
    assert result.get_response().id == "req-42"


# --------------------------------------------------------------------------------------------
# errors

NOT_FOUND, INVALID, UNAVAILABLE = "NOT_FOUND", "INVALID_ARGUMENT", "UNAVAILABLE"
I32 = np.zeros((1, SIMPLE_DIM), np.int32)


def _simple_inputs(**overrides):
    """INPUT0/INPUT1 [1,16] INT32; overrides name -> (array, datatype) or None (drop)."""
    inputs = []
    for name in ("INPUT0", "INPUT1"):
        spec = overrides.pop(name, (I32, "INT32"))
        if spec is not None:
            inputs.append(tensor(name, spec[0], spec[1]))
    for name, (array, datatype) in overrides.items():  # extra (unknown) inputs
        inputs.append(tensor(name, array, datatype))
    return inputs


# (id, model, version, inputs factory, expected code, message fragments)
BAD_TRITONCLIENT_REQUESTS = [
    ("unknown-model", "no_such_model", "", lambda: _simple_inputs(), NOT_FOUND, ["no_such_model"]),
    ("unknown-version", "simple", "7", lambda: _simple_inputs(), NOT_FOUND, ["simple", "7"]),
    # every required input present plus one the model does not have
    ("unknown-input-name", "simple", "", lambda: _simple_inputs(INPUT9=(I32, "INT32")), INVALID, ["INPUT9"]),
    ("unknown-input-name-mlp", "ranking_mlp", "",
     lambda: [tensor("features", np.zeros((1, MLP_FEATURES), np.float32)), tensor("extra", I32)],
     INVALID, ["extra"]),
    ("missing-input", "simple", "", lambda: _simple_inputs(INPUT1=None), INVALID, ["INPUT1"]),
    ("wrong-datatype", "simple", "",
     lambda: _simple_inputs(INPUT0=(np.zeros((1, SIMPLE_DIM), np.float32), "FP32")), INVALID, ["INPUT0"]),
    ("wrong-shape", "simple", "",
     lambda: _simple_inputs(INPUT0=(np.zeros((1, SIMPLE_DIM - 1), np.int32), "INT32")), INVALID, ["INPUT0"]),
    ("missing-batch-dim", "simple", "",
     lambda: _simple_inputs(INPUT0=(np.zeros((SIMPLE_DIM,), np.int32), "INT32")), INVALID, ["INPUT0"]),
    ("wrong-shape-mlp", "ranking_mlp", "",
     lambda: [tensor("features", np.zeros((2, MLP_FEATURES + 1), np.float32))], INVALID, ["features"]),
    ("batch-too-large", "simple", "",
     lambda: _simple_inputs(INPUT0=(np.zeros((SIMPLE_MAX_BATCH + 1, SIMPLE_DIM), np.int32), "INT32"),
                            INPUT1=(np.zeros((SIMPLE_MAX_BATCH + 1, SIMPLE_DIM), np.int32), "INT32")),
     INVALID, [re.compile(rf"\b{SIMPLE_MAX_BATCH}\b")]),
    ("batch-too-large-mlp", "ranking_mlp", "",
     lambda: [tensor("features", np.zeros((MLP_MAX_BATCH + 1, MLP_FEATURES), np.float32))],
     INVALID, [re.compile(rf"\b{MLP_MAX_BATCH}\b")]),
    ("broken-model", "broken", "", lambda: [tensor("x", np.zeros((1, 4), np.float32))], UNAVAILABLE, []),
]


@pytest.mark.parametrize("model,version,make_inputs,code,fragments",
                         [case[1:] for case in BAD_TRITONCLIENT_REQUESTS],
                         ids=[case[0] for case in BAD_TRITONCLIENT_REQUESTS])
def test_error(client, model, version, make_inputs, code, fragments):
    expect_error(lambda: client.infer(model, make_inputs(), model_version=version,
                                      client_timeout=RPC_TIMEOUT), code, *fragments)


def _raw_simple_request(byte_counts=(64, 64), typed_first=False) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name="simple")
    for i, (name, n) in enumerate(zip(("INPUT0", "INPUT1"), byte_counts, strict=True)):
        t = raw_input(name, "INT32", [1, SIMPLE_DIM])
        if typed_first and i == 0:
            t.contents.int_contents.extend([1] * SIMPLE_DIM)
        else:
            request.raw_input_contents.append(b"\x01" * n)
        request.inputs.append(t)
    return request


BAD_RAW_REQUESTS = [
    # raw byte count does not match [1,16] INT32 (64 bytes)
    ("raw-too-short", lambda: _raw_simple_request((60, 64)), INVALID, ["INPUT0"]),
    ("raw-too-long", lambda: _raw_simple_request((64, 68)), INVALID, ["INPUT1"]),
    # typed contents on INPUT0 and raw contents for INPUT1 in one request
    ("typed-and-raw-mixed", lambda: _raw_simple_request((64, 64), typed_first=True), INVALID, ["INPUT0"]),
]


@pytest.mark.parametrize("make_request,code,fragments", [c[1:] for c in BAD_RAW_REQUESTS],
                         ids=[c[0] for c in BAD_RAW_REQUESTS])
def test_error_raw(stub, make_request, code, fragments):
    expect_rpc_error(lambda: stub.ModelInfer(make_request(), timeout=RPC_TIMEOUT), code, *fragments)


def test_error_raw_count_mismatch(stub):
    """Two inputs but only one raw_input_contents entry."""
    request = _raw_simple_request((64, 64))
    del request.raw_input_contents[1]
    expect_rpc_error(lambda: stub.ModelInfer(request, timeout=RPC_TIMEOUT), INVALID)


def test_error_message_too_large(client, reference, rng):
    """~2 MiB against --max-message-bytes 1 MiB: RESOURCE_EXHAUSTED, and the server lives on."""
    x = np.zeros((2 * MiB // (4 * MLP_FEATURES), MLP_FEATURES), np.float32)
    expect_error(lambda: infer_mlp(client, x), "RESOURCE_EXHAUSTED")
    a, b = simple_data(rng, 1)
    check_simple(infer_simple(client, a, b), a, b, reference)


def test_error_just_under_limit_is_not_resource_exhausted(client):
    """~0.9 MiB is below the limit: the only complaint may be the batch size."""
    x = np.zeros((900 * 1024 // (4 * MLP_FEATURES), MLP_FEATURES), np.float32)
    expect_error(lambda: infer_mlp(client, x), INVALID, re.compile(rf"\b{MLP_MAX_BATCH}\b"))


def test_errors_do_not_disturb_good_requests(cluster, reference):
    """Threads send good requests while bad ones (every kind above) are sent: zero good
    failures, and every bad request fails with its expected status."""
    duration = 4.0
    stop = threading.Event()
    good_failures: list[str] = []
    good_count = [0]
    lock = threading.Lock()

    def good(seed: int):
        rng = np.random.default_rng(seed)
        client = cluster.client()
        try:
            while not stop.is_set():
                try:
                    if rng.integers(2):
                        a, b = simple_data(rng, int(rng.integers(1, SIMPLE_MAX_BATCH + 1)))
                        check_simple(infer_simple(client, a, b), a, b, reference)
                    else:
                        x = mlp_data(rng, int(rng.integers(1, 17)))
                        check_mlp(infer_mlp(client, x), x, reference)
                    with lock:
                        good_count[0] += 1
                except Exception as e:  # noqa: BLE001 - every failure counts
                    with lock:
                        good_failures.append(f"{type(e).__name__}: {e}")
        finally:
            client.close()

    threads = run_threads([lambda s=s: good(s) for s in range(3)])
    bad_client = cluster.client()
    stub = cluster.stub()
    oversize = np.zeros((2 * MiB // (4 * MLP_FEATURES), MLP_FEATURES), np.float32)
    bad_count = 0
    try:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            for _, model, version, make_inputs, code, fragments in BAD_TRITONCLIENT_REQUESTS:
                expect_error(lambda: bad_client.infer(model, make_inputs(), model_version=version,
                                                      client_timeout=RPC_TIMEOUT), code, *fragments)
                bad_count += 1
            for _, make_request, code, fragments in BAD_RAW_REQUESTS:
                expect_rpc_error(lambda: stub.ModelInfer(make_request(), timeout=RPC_TIMEOUT),
                                 code, *fragments)
                bad_count += 1
            expect_error(lambda: infer_mlp(bad_client, oversize), "RESOURCE_EXHAUSTED")
            bad_count += 1
    finally:
        stop.set()
        join_all(threads, timeout=RPC_TIMEOUT + 10)
        bad_client.close()
    assert not good_failures, f"{len(good_failures)} good requests failed, e.g. {good_failures[:5]}"
    assert good_count[0] >= 20, f"only {good_count[0]} good requests completed in {duration} s"
    assert bad_count >= len(BAD_TRITONCLIENT_REQUESTS) + len(BAD_RAW_REQUESTS) + 1


# --------------------------------------------------------------------------------------------
# repository, statistics


def test_repository_index(client):
    index = client.get_model_repository_index(client_timeout=RPC_TIMEOUT)
    models = {}
    for m in index.models:
        models.setdefault(m.name, []).append(m)
    assert set(models) == {"simple", "ranking_mlp", "broken"}, index
    for name in ("simple", "ranking_mlp"):
        assert [m.state for m in models[name]] == ["READY"], models[name]
        assert all(m.version in ("", "1") for m in models[name])
    assert [m.state for m in models["broken"]] == ["UNAVAILABLE"], models["broken"]
    assert models["broken"][0].reason.strip() != "", "an UNAVAILABLE model must say why"


def _inference_count(client, model: str) -> int:
    stats = client.get_inference_statistics(model, client_timeout=RPC_TIMEOUT)
    entries = [s for s in stats.model_stats if s.name == model]
    assert entries, f"no statistics for {model}: {stats}"
    return sum(s.inference_count for s in entries)


def test_statistics(client, rng):
    n = 6
    before = _inference_count(client, "simple")
    for _ in range(n):
        infer_simple(client, *simple_data(rng, 1))
    counts = []

    def caught_up():  # statistics may be aggregated from worker reports: allow a few seconds
        counts.append(_inference_count(client, "simple"))
        return counts[-1] >= before + n

    assert wait_until(caught_up, timeout=5, interval=0.25), (
        f"inference_count went from {before} to {counts[-1]} after {n} inferences")


def test_statistics_all_models(client):
    stats = client.get_inference_statistics(client_timeout=RPC_TIMEOUT)
    names = {s.name for s in stats.model_stats}
    assert {"simple", "ranking_mlp"} <= names, names


# --------------------------------------------------------------------------------------------
# CLI


def test_cli_status_json(cluster):
    status = cluster.status()
    assert isinstance(status["generation"], int)
    workers = status["workers"]
    assert len(workers) == WORKERS, workers
    by_name = {w["name"]: w for w in workers}
    for w in cluster.endpoints["workers"]:
        s = by_name.get(w["name"])
        assert s is not None, f"{w['name']} missing from status: {workers}"
        assert s["address"] == w["address"] and s["pid"] == w["pid"], (s, w)
        assert s["state"] == "READY", s
        assert isinstance(s["id"], str) and s["id"], s
        models = {m["name"]: m for m in s["models"]}
        assert {"simple", "ranking_mlp", "broken"} <= set(models), models
        for name in ("simple", "ranking_mlp"):
            assert models[name]["state"] == "READY", models[name]
            assert str(models[name]["version"]) == "1", models[name]
        assert models["broken"]["state"] != "READY", models["broken"]
        assert models["broken"]["reason"], models["broken"]
        # A CPU worker reports which OpenBLAS kernels it chose (CPUKernelSelection).
        assert s["device"]["driver"].startswith("OpenBLAS "), s["device"]
    assert len({w["id"] for w in workers}) == WORKERS


def test_cli_status_text(cluster):
    r = cluster.cli("status", "--balancer", cluster.balancer_url)
    assert r.returncode == 0, r.stderr
    assert "worker-1" in r.stdout and "worker-2" in r.stdout, r.stdout
    assert "OpenBLAS" in r.stdout, r.stdout


def test_cli_infer(cluster):
    a = list(range(100, 100 + SIMPLE_DIM))
    b = [1000] * SIMPLE_DIM
    r = cluster.cli("infer", "simple", "--url", cluster.grpc_url,
                    "--input", "INPUT0=" + ",".join(map(str, a)),
                    "--input", "INPUT1=" + ",".join(map(str, b)))
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    out = r.stdout
    assert "OUTPUT0" in out and "OUTPUT1" in out, out
    numbers = [int(n) for n in re.findall(r"-?\d+", out)]
    sums = [x + y for x, y in zip(a, b)]
    diffs = [x - y for x, y in zip(a, b)]
    for want in (sums, diffs):
        assert any(numbers[i:i + SIMPLE_DIM] == want for i in range(len(numbers))), (
            f"{want} not printed in order:\n{out}")
    lower = out.lower()
    for part in ("queue", "compute", "network"):
        assert part in lower, f"timing breakdown lacks {part!r}:\n{out}"


def test_cli_infer_ranking_mlp(cluster, reference):
    x = np.linspace(-1, 1, MLP_FEATURES, dtype=np.float32)
    r = cluster.cli("infer", "ranking_mlp", "--url", cluster.grpc_url,
                    "--input", "features=" + ",".join(repr(float(v)) for v in x))
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "score" in r.stdout, r.stdout
    want = float(reference.ranking_mlp(x.reshape(1, -1))[0, 0])
    after = r.stdout[r.stdout.index("score"):]
    printed = [float(v) for v in re.findall(r"\d\.\d+(?:[eE][-+]?\d+)?", after)]
    assert any(abs(v - want) <= 1e-4 for v in printed), f"score {want} not printed:\n{r.stdout}"


def test_cli_infer_error(cluster):
    r = cluster.cli("infer", "no_such_model", "--url", cluster.grpc_url, "--input", "x=1")
    assert r.returncode != 0, r.stdout
    assert "no_such_model" in (r.stdout + r.stderr), (r.stdout, r.stderr)


def test_cli_status_unreachable_balancer(tmp_path):
    """A balancer that is not there is an error, not a hang (bounded by CLI_TIMEOUT)."""
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run_cli("status", "--balancer", f"127.0.0.1:{port}", "--json", timeout=30)
    assert r.returncode != 0, r.stdout


def test_cluster_still_healthy(cluster, client, reference, rng):
    """Runs last: after every error above, all workers are still READY and serve."""
    status = cluster.status()
    assert [w["state"] for w in status["workers"]] == ["READY"] * WORKERS, status
    for pid in cluster.child_pids():
        assert process_alive(pid), f"child {pid} died"
    x = mlp_data(rng, 8)
    check_mlp(infer_mlp(client, x), x, reference)
    assert json.loads(cluster.endpoints_file.read_text()) == cluster.endpoints


def test_stream_infer_answers_each_request_and_survives_errors(cluster, reference, rng):
    """ModelStreamInfer (tritonclient's streaming API): responses come back for every request on
    the stream, and a bad request's error does not end the stream."""
    import queue

    results: "queue.Queue" = queue.Queue()
    client = cluster.client()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        a, b = simple_data(rng, 2)
        client.async_stream_infer("simple", [tensor("INPUT0", a), tensor("INPUT1", b)], request_id="1")
        client.async_stream_infer("simple", [tensor("INPUT9", a), tensor("INPUT1", b)], request_id="2")
        client.async_stream_infer("simple", [tensor("INPUT0", b), tensor("INPUT1", a)], request_id="3")
        outcomes = [results.get(timeout=RPC_TIMEOUT) for _ in range(3)]
    finally:
        client.stop_stream()
    ok = [r for r, e in outcomes if e is None]
    errors = [e for r, e in outcomes if e is not None]
    assert len(ok) == 2 and len(errors) == 1, outcomes
    assert "INPUT9" in str(errors[0])
    by_id = {r.get_response().id: r for r in ok}
    check_simple(by_id["1"], a, b, reference)
    check_simple(by_id["3"], b, a, reference)
