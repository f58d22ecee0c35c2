"""The Vulkan backend through the whole cluster: `fulcrum up --backend vulkan` on Mesa's lavapipe
(a CPU Vulkan device; CI has no GPU), serving the ranking MLP, the DLRM-style model and the
transformer encoder with answers checked against onnxruntime; the worker reports its device in
`fulcrum status`; a worker asked for a device that does not exist exits non-zero saying so."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import EXAMPLES, RPC_TIMEOUT, binary, cli_env, running_cluster, tensor, LAVAPIPE, lavapipe_unless_chosen, vulkan_available

MODELS = ("ranking_mlp", "dlrm", "transformer_encoder")

pytestmark = pytest.mark.skipif(
    not vulkan_available(), reason="no Vulkan driver: scripts/bootstrap installs mesa-vulkan-drivers (lavapipe)")


@pytest.fixture(scope="module", autouse=True)
def lavapipe():
    """Force lavapipe for every process these tests start, unless a driver is chosen already."""
    with lavapipe_unless_chosen():
        yield


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, lavapipe):
    repo = tmp_path_factory.mktemp("vulkan-repo")
    for model in MODELS:
        shutil.copytree(EXAMPLES / model, repo / model)
    with running_cluster(tmp_path_factory, "vulkan", model_repository=repo, workers=1,
                         extra_args=("--backend", "vulkan", "--device", "0")) as c:
        yield c


def rel_l2(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual.astype(np.float64) - expected) / max(np.linalg.norm(expected), 1e-30))


def reference(model: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(EXAMPLES / model / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


def infer(cluster, model: str, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
    result = cluster.client().infer(model, [tensor(n, v) for n, v in inputs.items()], client_timeout=RPC_TIMEOUT)
    return result.as_numpy(output)


@pytest.mark.parametrize("batch", [1, 7])
def test_ranking_mlp_on_the_device_matches_onnxruntime(cluster, batch):
    x = np.random.default_rng(batch).standard_normal((batch, 256)).astype(np.float32)
    actual = infer(cluster, "ranking_mlp", {"features": x}, "score")
    expected = reference("ranking_mlp", {"features": x})
    assert actual.shape == expected.shape
    assert rel_l2(actual, expected) <= 1e-4


def test_dlrm_on_the_device_matches_onnxruntime(cluster):
    rng = np.random.default_rng(5)
    inputs = {"dense": rng.standard_normal((5, 13)).astype(np.float32),
              "sparse": rng.integers(0, 50, size=(5, 4)).astype(np.int64)}
    actual = infer(cluster, "dlrm", inputs, "probability")
    assert rel_l2(actual, reference("dlrm", inputs)) <= 1e-4


def test_transformer_on_the_device_matches_onnxruntime_with_padding(cluster):
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 100, size=(2, 12)).astype(np.int64)
    mask = np.ones((2, 12), np.int64)
    mask[0, 6:] = 0
    inputs = {"input_ids": ids, "attention_mask": mask}
    actual = infer(cluster, "transformer_encoder", inputs, "embedding")
    assert actual.shape == (2, 128)
    assert rel_l2(actual, reference("transformer_encoder", inputs)) <= 1e-4


def test_an_out_of_range_embedding_id_is_refused_and_the_worker_keeps_serving(cluster):
    inputs = {"dense": np.zeros((1, 13), np.float32), "sparse": np.array([[0, 1, 2, 1 << 40]], np.int64)}
    from tritonclient.utils import InferenceServerException
    with pytest.raises(InferenceServerException) as error:
        infer(cluster, "dlrm", inputs, "probability")
    assert "out of range" in str(error.value)
    x = np.ones((1, 256), np.float32)
    assert rel_l2(infer(cluster, "ranking_mlp", {"features": x}, "score"), reference("ranking_mlp", {"features": x})) <= 1e-4


def test_status_shows_the_workers_device(cluster):
    status = cluster.status()
    worker = status["workers"][0]
    assert worker["backend"] == "vulkan"
    assert "llvmpipe" in worker["device"]["name"] or os.environ.get("VK_DRIVER_FILES") != str(LAVAPIPE)
    assert worker["device"]["memory_bytes"] > 0
    assert worker["device"]["driver"]
    table = cluster.cli("status", "--balancer", cluster.balancer_url).stdout
    assert worker["device"]["name"] in table


def test_a_missing_device_stops_the_worker_with_the_reason(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "ranking_mlp", repo / "ranking_mlp")
    proc = subprocess.run([binary("fulcrum-worker"), "--model-repository", str(repo), "--port", "0",
                           "--backend", "vulkan", "--device", "7"],
                          capture_output=True, text=True, timeout=60, env=cli_env(), stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert "--backend vulkan" in proc.stderr and "device 7" in proc.stderr, proc.stderr


def test_no_vulkan_driver_stops_the_worker_or_falls_back_to_the_cpu(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "ranking_mlp", repo / "ranking_mlp")
    env = cli_env() | {"VK_DRIVER_FILES": str(tmp_path / "no-such-icd.json")}
    command = [binary("fulcrum-worker"), "--model-repository", str(repo), "--port", "0", "--backend", "vulkan"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert "--backend vulkan" in proc.stderr, proc.stderr
    address_file = tmp_path / "address.json"
    worker = subprocess.Popen(command + ["--cpu-fallback", "--address-file", str(address_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                              stdin=subprocess.DEVNULL)
    try:
        import time
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.1)
        assert address_file.exists(), "the worker did not start on the CPU with --cpu-fallback"
    finally:
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    assert "serving on the CPU" in stderr


def _vulkan_loader() -> Path | None:
    for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"):
        candidate = Path(folder) / "libvulkan.so.1"
        if candidate.exists():
            return candidate.resolve()
    return None


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or _vulkan_loader() is None,
                    reason="hiding the Vulkan loader needs root (a private mount namespace) and an installed loader")
def test_without_the_vulkan_loader_the_cpu_backend_serves_and_vulkan_says_what_is_missing(tmp_path):
    # The worker opens libvulkan.so.1 with dlopen only for --backend vulkan (Sources/CVulkan): on
    # a host without it, here one where the file is covered by /dev/null in a private mount
    # namespace, the CPU backend must start and answer, and --backend vulkan must say what to install.
    import json
    import time

    import tritonclient.grpc as grpcclient

    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "ranking_mlp", repo / "ranking_mlp")
    hide = ["unshare", "--mount", "sh", "-c", f'mount --bind /dev/null "{_vulkan_loader()}" && exec "$@"', "hide-vulkan"]
    worker = [binary("fulcrum-worker"), "--model-repository", str(repo), "--port", "0", "--threads", "1"]

    proc = subprocess.run(hide + worker + ["--backend", "vulkan"], capture_output=True, text=True, timeout=60,
                          env=cli_env(), stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr
    assert "the Vulkan loader could not be loaded" in proc.stderr and "libvulkan1" in proc.stderr, proc.stderr

    address_file = tmp_path / "address.json"
    serving = subprocess.Popen(hide + worker + ["--backend", "cpu", "--address-file", str(address_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env(),
                               stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (address_file.exists() and address_file.stat().st_size > 0) and time.monotonic() < deadline:
            assert serving.poll() is None, "the CPU worker stopped without the Vulkan loader"
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["grpc"]
        client = grpcclient.InferenceServerClient(address)
        x = np.random.default_rng(3).standard_normal((2, 256)).astype(np.float32)
        result = client.infer("ranking_mlp", [tensor("features", x)], client_timeout=RPC_TIMEOUT)
        assert rel_l2(result.as_numpy("score"), reference("ranking_mlp", {"features": x})) <= 1e-5
    finally:
        serving.terminate()
        serving.communicate(timeout=30)
