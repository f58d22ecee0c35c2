"""Convolutional networks at realistic sizes through the whole cluster: a ResNet-18-shaped network
(7×7/2 stem, max pool, four stages of basic blocks with 1×1 downsampling shortcuts, global
average pool, 1000-way Gemm) and a MobileNet-style one (depthwise-separable blocks, HardSwish,
AveragePool, HardSigmoid gate), built with the onnx helper at test time
(scripts/make-ml-models.py --cnn), 224×224 RGB, checked against onnxruntime: relative error
≤ 1e-5. Conv → BatchNormalization → activation is folded into one node at load.

The same two networks on the Vulkan backend (a second cluster whose worker runs
`--backend vulkan` on Mesa's lavapipe, or the driver VK_DRIVER_FILES names): convolutions,
pools, HardSigmoid/HardSwish and the rest of the graph as device kernels, against onnxruntime
with the same bound and the same argmax."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import RPC_TIMEOUT, running_cluster, tensor, running_vulkan_cluster

ROOT = Path(__file__).resolve().parents[2]
# lavapipe runs the shaders on this machine's CPU: a ResNet-18 at 224×224 takes seconds a batch.
VULKAN_RPC_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("make_ml_models", ROOT / "scripts" / "make-ml-models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("cnn-models")
    module.make_cnns(str(folder))
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, repo):
    with running_cluster(tmp_path_factory, "cnn", model_repository=repo, workers=1) as c:
        yield c


@pytest.mark.parametrize("name", ["resnet18_shaped", "mobilenet_style"])
@pytest.mark.parametrize("batch", [1, 3])
def test_cnn_matches_onnxruntime_through_the_cluster(cluster, repo, name, batch):
    assert_matches_onnxruntime(cluster, repo, name, batch, seed=batch, timeout=RPC_TIMEOUT)


def assert_matches_onnxruntime(cluster, repo, name: str, batch: int, seed: int, timeout: float) -> None:
    x = np.random.default_rng(seed).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    expected = ort.InferenceSession(str(repo / name / "1" / "model.onnx"), options,
                                    providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    actual = cluster.client().infer(name, [tensor("image", x)], client_timeout=timeout).as_numpy("logits")
    assert actual.shape == expected.shape == (batch, 1000)
    error = float(np.linalg.norm(actual.astype(np.float64) - expected) / np.linalg.norm(expected))
    assert error <= 1e-5, error
    np.testing.assert_array_equal(np.argmax(actual, axis=1), np.argmax(expected, axis=1))


@pytest.fixture(scope="module")
def vulkan_cluster(tmp_path_factory, repo):
    with running_vulkan_cluster(tmp_path_factory, "cnn-vulkan", model_repository=repo, workers=1) as c:
        yield c


@pytest.mark.parametrize("name", ["resnet18_shaped", "mobilenet_style"])
@pytest.mark.parametrize("batch", [1, 3])
def test_cnn_on_vulkan_matches_onnxruntime_through_the_cluster(vulkan_cluster, repo, name, batch):
    status = vulkan_cluster.status()
    assert all(worker["backend"] == "vulkan" for worker in status["workers"]), status
    assert_matches_onnxruntime(vulkan_cluster, repo, name, batch, seed=10 + batch, timeout=VULKAN_RPC_TIMEOUT)
