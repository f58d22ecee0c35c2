"""Published CNNs from a PyPI package, fetched at test time: PaddleOCR's text-direction classifier
(MobileNetV3-style: Conv, BatchNormalization, HardSigmoid, Clip-based hard-swish, global pools),
its PP-OCRv4 recogniser (Conv stem, attention blocks, CTC softmax over 6,625 characters) and its
PP-OCRv4 text detector (DB head: Resize nearest ×2/×4/×8, ConvTranspose 2×2/2, Sigmoid), as
shipped inside rapidocr-onnxruntime's wheel. Served through the cluster with no config.pbtxt
(completed from the graph) and checked against onnxruntime. The classifier and the detector also
on a `--backend vulkan` worker (lavapipe): Conv, the pools, HardSigmoid, Resize and
ConvTranspose as device kernels (the recogniser uses Pow, which the device refuses)."""

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

from conftest import RPC_TIMEOUT, running_cluster, tensor, running_vulkan_cluster

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


@pytest.fixture(scope="module")
def vulkan_cluster(tmp_path_factory, repo):
    with running_vulkan_cluster(tmp_path_factory, "published-cnn-vulkan", model_repository=repo, workers=1) as c:
        yield c


@pytest.mark.parametrize("name,shape", [("ppocr_cls", (3, 3, 48, 192)), ("ppocr_rec", (2, 3, 48, 320))])
def test_published_model_matches_onnxruntime(cluster, repo, name, shape):
    check_classifier(cluster, repo, name, shape)


def test_published_classifier_on_vulkan_matches_onnxruntime(vulkan_cluster, repo):
    check_classifier(vulkan_cluster, repo, "ppocr_cls", (3, 3, 48, 192), timeout=120.0)


def check_classifier(cluster, repo, name, shape, timeout=RPC_TIMEOUT):
    x = np.random.default_rng(len(name)).uniform(-1, 1, shape).astype(np.float32)
    session = ort.InferenceSession(str(repo / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    output = session.get_outputs()[0].name
    actual = cluster.client().infer(name, [tensor("x", x)], client_timeout=timeout).as_numpy(output)
    assert actual.shape == expected.shape
    error = float(np.linalg.norm(actual.astype(np.float64) - expected) / np.linalg.norm(expected))
    assert error <= 1e-5, error
    np.testing.assert_array_equal(actual.argmax(-1), expected.argmax(-1))


def text_like_image() -> np.ndarray:
    """A white page with lines of dark glyph-like strokes, normalised as PaddleOCR feeds its
    detector: the probability map then has text regions, not only near-zero background."""
    page = np.ones((320, 480), np.float32)
    rng = np.random.default_rng(0)
    for row in range(40, 300, 50):
        for col in range(20, 440, 12):
            if rng.random() < 0.8:
                page[row:row + 22, col:col + 7] = 0
    return np.repeat(((page - 0.5) / 0.5)[None, None], 3, axis=1).astype(np.float32)


def test_the_text_detector_finds_the_same_text_as_onnxruntime(cluster, repo):
    check_detector(cluster, repo)


def test_the_text_detector_on_vulkan_finds_the_same_text_as_onnxruntime(vulkan_cluster, repo):
    check_detector(vulkan_cluster, repo, timeout=120.0)


def check_detector(cluster, repo, timeout=RPC_TIMEOUT):
    x = text_like_image()
    session = ort.InferenceSession(str(repo / "ppocr_det" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    assert (expected > 0.3).mean() > 0.005, "the synthetic page should contain text for the detector"
    actual = cluster.client().infer("ppocr_det", [tensor("x", x)], client_timeout=timeout).as_numpy(
        session.get_outputs()[0].name)
    assert actual.shape == expected.shape == (1, 1, 320, 480)
    error = float(np.linalg.norm(actual.astype(np.float64) - expected) / np.linalg.norm(expected))
    assert error <= 1e-5, error
    # The DB post-processing's binarisation (threshold 0.3) sees the same text mask.
    np.testing.assert_array_equal(actual > 0.3, expected > 0.3)
