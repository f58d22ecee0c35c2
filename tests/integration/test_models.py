"""The runtime's example models served through the whole cluster, checked against onnxruntime
on the same inputs: the DLRM-style recommender, the transformer encoder (dynamic sequence
length) and the scikit-learn-style classifier, including Triton's classification extension
with the model's labels."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc

from conftest import (EXAMPLES, RPC_TIMEOUT, expect_rpc_error, process_alive, raw_input,
                      running_cluster, tensor)

MODELS = ("dlrm", "transformer_encoder", "sklearn_classifier")


def rel_l2(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual.astype(np.float64) - expected) / max(np.linalg.norm(expected), 1e-30))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = tmp_path_factory.mktemp("models-repo")
    for model in MODELS:
        shutil.copytree(EXAMPLES / model, repo / model)
    with running_cluster(tmp_path_factory, "models", model_repository=repo, workers=1) as c:
        yield c


def session(model: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(EXAMPLES / model / "1" / "model.onnx"), providers=["CPUExecutionProvider"])


def infer(cluster, model: str, inputs: dict[str, np.ndarray], outputs=None):
    client = cluster.client()
    return client.infer(model, [tensor(name, value) for name, value in inputs.items()], outputs=outputs,
                        client_timeout=RPC_TIMEOUT)


@pytest.mark.parametrize("batch", [1, 5])
def test_dlrm_matches_onnxruntime(cluster, batch):
    rng = np.random.default_rng(batch)
    inputs = {
        "dense": rng.standard_normal((batch, 13)).astype(np.float32),
        "sparse": rng.integers(0, 50, size=(batch, 4)).astype(np.int64),
    }
    expected = session("dlrm").run(None, inputs)[0]
    actual = infer(cluster, "dlrm", inputs).as_numpy("probability")
    assert actual.shape == expected.shape
    assert rel_l2(actual, expected) <= 1e-5


@pytest.mark.parametrize("batch,sequence", [(1, 7), (3, 32)])
def test_transformer_encoder_matches_onnxruntime_at_any_sequence_length(cluster, batch, sequence):
    rng = np.random.default_rng(sequence)
    ids = rng.integers(1, 100, size=(batch, sequence)).astype(np.int64)
    mask = np.ones((batch, sequence), np.int64)
    mask[0, sequence // 2:] = 0  # padding in the first row
    inputs = {"input_ids": ids, "attention_mask": mask}
    expected = session("transformer_encoder").run(None, inputs)[0]
    actual = infer(cluster, "transformer_encoder", inputs).as_numpy("embedding")
    assert actual.shape == expected.shape == (batch, 128)
    assert rel_l2(actual, expected) <= 1e-5


def test_classifier_matches_onnxruntime_and_labels_the_top_classes(cluster):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 4)).astype(np.float32)
    probabilities, labels = session("sklearn_classifier").run(None, {"features": x})
    result = infer(cluster, "sklearn_classifier", {"features": x})
    assert rel_l2(result.as_numpy("probabilities"), probabilities) <= 1e-5
    np.testing.assert_array_equal(result.as_numpy("label").reshape(-1), labels.reshape(-1))

    names = (EXAMPLES / "sklearn_classifier" / "labels.txt").read_text().split("\n")
    requested = grpcclient.InferRequestedOutput("probabilities", class_count=2)
    top = infer(cluster, "sklearn_classifier", {"features": x}, outputs=[requested]).as_numpy("probabilities")
    assert top.shape == (4, 2)
    for row in range(4):
        best = int(np.argmax(probabilities[row]))
        value, index, label = top[row][0].decode().split(":")
        assert int(index) == best
        assert abs(float(value) - probabilities[row][best]) < 1e-5
        assert label == names[best]


# A shape whose element count overflows 64 bits once trapped in the validator and stopped the
# frontend (and, sent straight to it, a worker; under `fulcrum up` the whole cluster went down).
OVERFLOW_SHAPE = [1, 4611686018427387904]


def overflow_request(typed: bool) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name="transformer_encoder")
    for name in ("input_ids", "attention_mask"):
        request.inputs.append(raw_input(name, "INT64", OVERFLOW_SHAPE))
        if typed:
            request.inputs[-1].contents.int64_contents.extend([1, 2, 3, 4])
        else:
            request.raw_input_contents.append(np.arange(4, dtype=np.int64).tobytes())
    return request


def test_overflowing_shape_is_invalid_argument_everywhere_and_stops_nothing(cluster):
    worker_addresses = [w["address"] for w in cluster.endpoints["workers"]]
    assert worker_addresses, cluster.endpoints
    targets = [cluster.grpc_url] + worker_addresses
    for address in targets:
        with (cluster.channel() if address == cluster.grpc_url else cluster.member_channel(address)) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            for typed in (False, True):
                expect_rpc_error(lambda: stub.ModelInfer(overflow_request(typed), timeout=RPC_TIMEOUT),
                                 "INVALID_ARGUMENT", "input_ids", "more than 2147483647 elements")

    body = json.dumps({"inputs": [
        {"name": name, "datatype": "INT64", "shape": OVERFLOW_SHAPE, "data": [1, 2, 3, 4]}
        for name in ("input_ids", "attention_mask")]}).encode()
    req = urllib.request.Request(f"http://{cluster.endpoints['http']}/v2/models/transformer_encoder/infer",
                                 data=body, method="POST", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=RPC_TIMEOUT)
    assert info.value.code == 400
    assert "more than 2147483647 elements" in info.value.read().decode()

    for pid in cluster.child_pids():
        assert process_alive(pid), f"process {pid} stopped after the overflow request\n{cluster.log_tail()}"
    ids = np.ones((1, 5), np.int64)
    result = infer(cluster, "transformer_encoder", {"input_ids": ids, "attention_mask": ids})
    assert result.as_numpy("embedding").shape == (1, 128)
