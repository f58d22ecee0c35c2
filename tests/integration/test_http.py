"""The HTTP/REST form of the open inference protocol, through tritonclient's HTTP client (and
plain urllib for the raw protocol), against one 1-worker cluster serving examples/models."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from conftest import (MLP_FEATURES, RPC_TIMEOUT, SIMPLE_DIM, TIMING_KEYS, make_repository, mlp_data,
                      running_cluster, simple_data)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "http", model_repository=repo, workers=1) as c:
        yield c


@pytest.fixture(scope="module")
def url(cluster) -> str:
    http = cluster.endpoints.get("http")
    assert isinstance(http, str) and http, f"the endpoints file has no http address: {cluster.endpoints}"
    return http


@pytest.fixture(scope="module")
def client(url):
    c = httpclient.InferenceServerClient(url=url, connection_timeout=RPC_TIMEOUT,
                                         network_timeout=RPC_TIMEOUT)
    yield c
    c.close()


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def http_tensor(name: str, array: np.ndarray, binary: bool) -> httpclient.InferInput:
    dt = {np.dtype(np.int32): "INT32", np.dtype(np.float32): "FP32"}[array.dtype]
    t = httpclient.InferInput(name, list(array.shape), dt)
    t.set_data_from_numpy(array, binary_data=binary)
    return t


def request(url: str, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A raw HTTP call: (status, headers, body), errors included."""
    req = urllib.request.Request(f"http://{url}{path}", data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=RPC_TIMEOUT) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# --------------------------------------------------------------------------------------------
# health and metadata


def test_live_and_ready(client, url):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("simple")
    assert client.is_model_ready("ranking_mlp", "1")
    assert not client.is_model_ready("no_such_model")
    status, _, body = request(url, "GET", "/v2/health/ready")
    assert (status, body) == (200, b"")


def test_server_metadata(client):
    metadata = client.get_server_metadata()
    assert metadata["name"] == "fulcrum"
    assert {"binary_tensor_data", "statistics", "model_repository"} <= set(metadata["extensions"])


def test_model_metadata(client):
    metadata = client.get_model_metadata("simple")
    assert metadata["name"] == "simple"
    assert metadata["versions"] == ["1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        ("INPUT0", "INT32", [-1, SIMPLE_DIM]), ("INPUT1", "INT32", [-1, SIMPLE_DIM])]
    assert {t["name"] for t in metadata["outputs"]} == {"OUTPUT0", "OUTPUT1"}
    assert client.get_model_metadata("ranking_mlp", "1")["inputs"][0]["shape"] == [-1, MLP_FEATURES]


def test_model_config(client):
    config = client.get_model_config("simple")
    assert config["name"] == "simple"
    assert config["max_batch_size"] == 8
    assert [i["name"] for i in config["input"]] == ["INPUT0", "INPUT1"]
    assert config["input"][0]["data_type"] == "TYPE_INT32"
    assert config["input"][0]["dims"] == [SIMPLE_DIM]


# --------------------------------------------------------------------------------------------
# inference


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_simple(client, rng, binary):
    a, b = simple_data(rng, 3)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("OUTPUT0", "OUTPUT1")]
    result = client.infer("simple", [http_tensor("INPUT0", a, binary), http_tensor("INPUT1", b, binary)],
                          outputs=outputs, request_id="req-7")
    got0, got1 = result.as_numpy("OUTPUT0"), result.as_numpy("OUTPUT1")
    assert got0.dtype == np.int32 and got1.dtype == np.int32
    np.testing.assert_array_equal(got0, a + b)
    np.testing.assert_array_equal(got1, a - b)
    response = result.get_response()
    assert response["model_name"] == "simple" and response["model_version"] == "1"
    assert response["id"] == "req-7"
    for key in TIMING_KEYS:
        assert isinstance(response["parameters"][key], int), (key, response["parameters"])
    output = result.get_output("OUTPUT0")
    assert ("data" in output) != binary
    assert ("binary_data_size" in output.get("parameters", {})) == binary


def test_infer_simple_default_outputs_are_binary(client, rng):
    a, b = simple_data(rng, 1)
    result = client.infer("simple", [http_tensor("INPUT0", a, True), http_tensor("INPUT1", b, False)])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_ranking_mlp(client, rng, reference, binary):
    x = mlp_data(rng, 4)
    result = client.infer("ranking_mlp", [http_tensor("features", x, binary)],
                          outputs=[httpclient.InferRequestedOutput("score", binary_data=binary)])
    got = result.as_numpy("score")
    assert got.dtype == np.float32 and got.shape == (4, 1)
    # JSON carries float32 values in their shortest decimal form: they round-trip exactly.
    np.testing.assert_allclose(got, reference.ranking_mlp(x), rtol=1e-5, atol=1e-6)


def test_infer_plain_json_with_nested_data(url):
    a = [[i for i in range(SIMPLE_DIM)]]
    b = [[2 * i for i in range(SIMPLE_DIM)]]
    body = json.dumps({"inputs": [
        {"name": "INPUT0", "shape": [1, SIMPLE_DIM], "datatype": "INT32", "data": a},
        {"name": "INPUT1", "shape": [1, SIMPLE_DIM], "datatype": "INT32", "data": b},
    ]}).encode()
    status, headers, raw = request(url, "POST", "/v2/models/simple/versions/1/infer", body,
                                   {"Content-Type": "application/json"})
    assert status == 200, raw
    assert headers.get("Content-Type") == "application/json"
    response = json.loads(raw)
    outputs = {o["name"]: o for o in response["outputs"]}
    assert outputs["OUTPUT0"]["data"] == [3 * i for i in range(SIMPLE_DIM)]
    assert outputs["OUTPUT1"]["data"] == [-i for i in range(SIMPLE_DIM)]
    assert outputs["OUTPUT0"]["shape"] == [1, SIMPLE_DIM]


# --------------------------------------------------------------------------------------------
# statistics and repository


def test_statistics_and_repository_index(client, rng):
    a, b = simple_data(rng, 1)
    client.infer("simple", [http_tensor("INPUT0", a, True), http_tensor("INPUT1", b, True)])
    stats = client.get_inference_statistics("simple")
    (entry,) = stats["model_stats"]
    assert entry["name"] == "simple" and entry["version"] == "1"
    assert entry["inference_stats"]["success"]["count"] >= 1
    everything = client.get_inference_statistics()
    assert {"simple", "ranking_mlp"} <= {s["name"] for s in everything["model_stats"]}
    index = client.get_model_repository_index()
    assert {(m["name"], m.get("state")) for m in index} >= {("simple", "READY"), ("ranking_mlp", "READY")}


# --------------------------------------------------------------------------------------------
# errors


def test_unknown_model_is_404(client, url, rng):
    a, b = simple_data(rng, 1)
    with pytest.raises(InferenceServerException) as info:
        client.infer("no_such_model", [http_tensor("INPUT0", a, True), http_tensor("INPUT1", b, True)])
    assert info.value.status() == "404"
    assert "no_such_model" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("no_such_model")
    assert info.value.status() == "404"
    status, _, body = request(url, "GET", "/v2/models/no_such_model/config")
    assert status == 404 and "no_such_model" in json.loads(body)["error"]


def test_wrong_shape_is_400_naming_the_input(client, rng):
    a = rng.integers(0, 10, size=(1, SIMPLE_DIM - 1), dtype=np.int32)
    b = rng.integers(0, 10, size=(1, SIMPLE_DIM), dtype=np.int32)
    for binary in (True, False):
        with pytest.raises(InferenceServerException) as info:
            client.infer("simple", [http_tensor("INPUT0", a, binary), http_tensor("INPUT1", b, binary)])
        assert info.value.status() == "400"
        assert "INPUT0" in info.value.message() and "shape" in info.value.message()


def test_malformed_bodies_are_400_with_an_error(url):
    status, _, body = request(url, "POST", "/v2/models/simple/infer", b"{not json")
    assert status == 400 and "JSON" in json.loads(body)["error"]
    bad = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1, SIMPLE_DIM], "datatype": "INT32",
                                  "data": ["x"] * SIMPLE_DIM}]}).encode()
    status, _, body = request(url, "POST", "/v2/models/simple/infer", bad)
    assert status == 400 and "INPUT0" in json.loads(body)["error"]
    status, _, body = request(url, "POST", "/v2/models/simple/infer", b"{}",
                              {"Content-Encoding": "gzip"})
    assert status == 400 and "Content-Encoding" in json.loads(body)["error"]
    status, _, body = request(url, "GET", "/v2/nothing/here")
    assert status == 404 and "error" in json.loads(body)
