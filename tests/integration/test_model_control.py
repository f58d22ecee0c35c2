"""Model control is an admin act: repository load/unload (gRPC and REST, at the frontend or
straight at a worker) is refused by default; with `--model-control explicit` it needs the admin
token of `--admin-token-file` as `authorization: Bearer TOKEN`."""

from __future__ import annotations

import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from conftest import (RPC_TIMEOUT, check_simple, expect_error, expect_rpc_error, infer_simple,
                      make_repository, running_cluster, simple_data, wait_until)

TOKEN = "s3cret-admin-token-0123456789"


def rest(cluster, model: str, action: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    req = urllib.request.Request(f"http://{cluster.endpoints['http']}/v2/repository/models/{model}/{action}",
                                 data=b"", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=RPC_TIMEOUT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def worker_unload(cluster, address: str, model: str, token: str | None = None):
    metadata = [("authorization", f"Bearer {token}")] if token is not None else None
    # A frontend's certificate: workers take repository control only from frontends and the balancer.
    with cluster.member_channel(address, role="frontend") as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        return stub.RepositoryModelUnload(service_pb2.RepositoryModelUnloadRequest(model_name=model),
                                          metadata=metadata, timeout=RPC_TIMEOUT)


@pytest.fixture(scope="module")
def default_cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "control-none", model_repository=repo, workers=1) as c:
        yield c


@pytest.fixture(scope="module")
def explicit_cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    token_file = tmp_path_factory.mktemp("secrets") / "admin-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with running_cluster(tmp_path_factory, "control-explicit", model_repository=repo, workers=1,
                         extra_args=("--model-control", "explicit",
                                     "--admin-token-file", str(token_file))) as c:
        yield c


def test_load_and_unload_are_refused_by_default(default_cluster):
    client = default_cluster.client()
    for call in (lambda: client.unload_model("simple"), lambda: client.load_model("simple")):
        expect_error(call, "FAILED_PRECONDITION", "model control is off", "--model-control explicit")
    for action in ("unload", "load"):
        status, body = rest(default_cluster, "simple", action, token=TOKEN)
        assert status == 400 and "model control is off" in body, (status, body)
    worker = default_cluster.endpoints["workers"][0]["address"]
    expect_rpc_error(lambda: worker_unload(default_cluster, worker, "simple"), "FAILED_PRECONDITION", "model control is off")
    assert client.is_model_ready("simple"), "a refused unload must leave the model loaded"


def test_explicit_control_needs_the_admin_token(explicit_cluster):
    client = explicit_cluster.client()
    expect_error(lambda: client.unload_model("simple"), "PERMISSION_DENIED", "admin token")
    expect_error(lambda: client.unload_model("simple", headers={"authorization": "Bearer wrong-token-wrong-token"}),
                 "PERMISSION_DENIED", "admin token")
    status, body = rest(explicit_cluster, "simple", "unload")
    assert status == 403 and "admin token" in body, (status, body)
    status, body = rest(explicit_cluster, "simple", "unload", token=TOKEN[:-1])
    assert status == 403, (status, body)
    # Straight at the worker, without the token: refused too.
    worker = explicit_cluster.endpoints["workers"][0]["address"]
    expect_rpc_error(lambda: worker_unload(explicit_cluster, worker, "simple"), "PERMISSION_DENIED", "admin token")
    assert client.is_model_ready("simple")


def test_explicit_control_with_the_token_unloads_and_loads(explicit_cluster, reference):
    client = explicit_cluster.client()
    client.unload_model("simple", headers={"authorization": f"Bearer {TOKEN}"})
    assert wait_until(lambda: not client.is_model_ready("simple"), timeout=10), "simple still ready after unload"
    status, body = rest(explicit_cluster, "simple", "load", token=TOKEN)
    assert status == 200, (status, body)
    assert wait_until(lambda: client.is_model_ready("simple"), timeout=10), "simple not ready after load"
    a, b = simple_data(np.random.default_rng(3), 2)
    check_simple(infer_simple(client, a, b), a, b, reference)
