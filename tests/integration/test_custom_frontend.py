"""A frontend of one's own: examples/custom-frontend (its own Package.swift, depending on Fulcrum
by path) registers a processor of its own kind (fulcrum_threshold) beside the built-in ones. The
package is built here, its executable joins a `fulcrum up` cluster as a second frontend (mutual
TLS with the cluster's certificates), and serves a pipeline that calls the pool and then the
custom processor; the cluster's own frontend, which lacks that processor, says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient

from conftest import (EXAMPLES, REPO_ROOT, RPC_TIMEOUT, expect_error, make_repository, running_cluster, tensor,
                      wait_until)

PACKAGE = REPO_ROOT / "examples" / "custom-frontend"
SCRATCH = REPO_ROOT / ".build" / "custom-frontend"


@pytest.fixture(scope="module")
def executable() -> Path:
    # Incremental after the first build; the first one builds Fulcrum's dependencies again for
    # this package (several minutes on two cores).
    built = subprocess.run(["swift", "build", "--package-path", str(PACKAGE), "--scratch-path", str(SCRATCH)],
                           capture_output=True, text=True, timeout=3600)
    if built.returncode != 0:
        pytest.fail(f"examples/custom-frontend does not build:\n{built.stdout[-4000:]}\n{built.stderr[-4000:]}", pytrace=False)
    path = SCRATCH / "debug" / "custom-frontend"
    assert path.is_file(), path
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    folder = make_repository(tmp_path_factory.mktemp("custom-frontend"))
    for name in ("risk_decision", "risk_check"):
        shutil.copytree(PACKAGE / "models" / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, repo):
    with running_cluster(tmp_path_factory, "custom-frontend", model_repository=repo, workers=1) as c:
        yield c


@pytest.fixture(scope="module")
def custom(executable, cluster, repo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("custom-frontend-run")
    address_file = folder / "address.json"
    tls = cluster.tls_dir
    assert tls, "the cluster runs with mutual TLS by default"
    log = open(folder / "custom-frontend.log", "wb")
    proc = subprocess.Popen(
        [str(executable), "--balancer", cluster.balancer_url, "--model-repository", str(repo),
         "--grpc-port", "0", "--http-port", "0", "--address-file", str(address_file), "--id", "custom-1",
         "--tls-cert", f"{tls}/frontend.pem", "--tls-key", f"{tls}/frontend-key.pem", "--tls-ca", f"{tls}/ca.pem"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: address_file.exists() and address_file.stat().st_size > 0 or proc.poll() is not None, 60)
        assert proc.poll() is None, (folder / "custom-frontend.log").read_text()
        addresses = json.loads(address_file.read_text())
        client = grpcclient.InferenceServerClient(addresses["grpc"])
        assert wait_until(lambda: client.is_model_ready("risk_check"), 60), (folder / "custom-frontend.log").read_text()
        yield client, folder / "custom-frontend.log"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_the_custom_processor_runs_in_a_pipeline(custom, repo):
    client, _ = custom
    rng = np.random.default_rng(11)
    features = rng.standard_normal((40, 256)).astype(np.float32)
    result = client.infer("risk_check", [tensor("features", features)], client_timeout=RPC_TIMEOUT)
    session = ort.InferenceSession(str(repo / "ranking_mlp" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    (scores,) = session.run(["score"], {"features": features})
    np.testing.assert_allclose(result.as_numpy("score"), scores, rtol=1e-5, atol=1e-6)
    decisions = [d.decode() for d in result.as_numpy("decision")[:, 0]]
    expected = ["approve" if s < 0.3 else "decline" if s >= 0.7 else "review" for s in scores[:, 0]]
    assert decisions == expected
    assert len(set(decisions)) > 1, decisions  # the rule was exercised, not a constant


def test_the_custom_frontend_is_still_a_full_frontend(custom, repo):
    client, _ = custom
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 256)).astype(np.float32)
    assert client.infer("ranking_mlp", [tensor("features", x)], client_timeout=RPC_TIMEOUT).as_numpy("score").shape == (2, 1)
    expect_error(lambda: client.infer("risk_decision", [tensor("score", np.array([[0.5]], dtype=np.float64))],
                                      client_timeout=RPC_TIMEOUT),
                 "INVALID_ARGUMENT", "FP64")
    config = client.get_model_config("risk_decision", client_timeout=RPC_TIMEOUT).config
    assert config.platform == "fulcrum_threshold"


def test_the_stock_frontend_names_the_missing_processor(cluster):
    index = {m.name: m for m in cluster.client().get_model_repository_index(client_timeout=RPC_TIMEOUT).models}
    assert index["risk_decision"].state == "UNAVAILABLE"
    assert 'no processor has platform "fulcrum_threshold"' in index["risk_decision"].reason
