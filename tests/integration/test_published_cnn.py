"""Published CNNs from a PyPI package, fetched at test time: PaddleOCR's text-direction classifier
(MobileNetV3-style: Conv, BatchNormalization, HardSigmoid, Clip-based hard-swish, global pools)
and its PP-OCRv4 recogniser (Conv stem, attention blocks, CTC softmax over 6,625 characters),
as shipped inside rapidocr-onnxruntime's wheel. Served through the cluster with no
config.pbtxt (completed from the graph) and checked against onnxruntime. The detector of the
same wheel uses Resize and ConvTranspose, which Fulcrum does not implement: it must be refused
by name while the other two serve."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient

from conftest import RPC_TIMEOUT, running_cluster, tensor

WHEEL = "rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
SHA256 = "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"
MODELS = {
    "ppocr_cls": "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "ppocr_rec": "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
    "ppocr_det": "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    download = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(download),
                           "rapidocr-onnxruntime==1.4.4"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip download of rapidocr-onnxruntime failed (PyPI unreachable?):\n{proc.stderr}"
    wheel = download / WHEEL
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == SHA256, "the wheel is not the one these tests were written for"
    folder = tmp_path_factory.mktemp("published")
    with zipfile.ZipFile(wheel) as archive:
        for name, member in MODELS.items():
            (folder / name / "1").mkdir(parents=True)
            (folder / name / "1" / "model.onnx").write_bytes(archive.read(member))
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, repo):
    with running_cluster(tmp_path_factory, "published-cnn", model_repository=repo, workers=1) as c:
        yield c


@pytest.mark.parametrize("name,shape", [("ppocr_cls", (3, 3, 48, 192)), ("ppocr_rec", (2, 3, 48, 320))])
def test_published_model_matches_onnxruntime(cluster, repo, name, shape):
    x = np.random.default_rng(len(name)).uniform(-1, 1, shape).astype(np.float32)
    session = ort.InferenceSession(str(repo / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    output = session.get_outputs()[0].name
    actual = cluster.client().infer(name, [tensor("x", x)], client_timeout=RPC_TIMEOUT).as_numpy(output)
    assert actual.shape == expected.shape
    error = float(np.linalg.norm(actual.astype(np.float64) - expected) / np.linalg.norm(expected))
    assert error <= 1e-5, error
    np.testing.assert_array_equal(actual.argmax(-1), expected.argmax(-1))


def test_the_detector_is_refused_by_name_and_the_others_serve(cluster):
    index = {m.name: m for m in cluster.client().get_model_repository_index().models}
    assert index["ppocr_cls"].state == "READY" and index["ppocr_rec"].state == "READY", index
    detector = index["ppocr_det"]
    assert detector.state != "READY", detector
    assert "Resize" in detector.reason or "ConvTranspose" in detector.reason, detector.reason
    assert "opset 12" in detector.reason, detector.reason
