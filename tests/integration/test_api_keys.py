"""Edge authentication and quotas: with `fulcrum up --api-keys FILE` every call but health checks
needs a key (UNAUTHENTICATED / 401 without one), a key reaches only its models
(PERMISSION_DENIED / 403), a key over its rate is refused (RESOURCE_EXHAUSTED / 429 with
Retry-After), and SIGHUP reloads the file without dropping connections."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from conftest import (RPC_TIMEOUT, expect_error, make_repository, mlp_data, running_cluster,
                      wait_until)

ACME = "acme-key-0123456789abcdef"      # ranking_mlp only, 5 requests/s, burst 5
OPS = "ops-key-0123456789abcdefgh"      # every model, no rate
LATE = "late-key-0123456789abcdefg"     # added by a reload


def write_keys(path, keys):
    path.write_text(json.dumps({"keys": keys}))


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "api-keys.json"
    write_keys(path, [
        {"key": ACME, "tenant": "acme", "models": ["ranking_mlp"], "rate": 5, "burst": 5},
        {"key": OPS, "tenant": "ops"},
    ])
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, keys_file):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "api-keys", model_repository=repo, workers=1,
                         extra_args=("--api-keys", str(keys_file), "--metrics")) as c:
        yield c


def bearer(key: str) -> dict:
    return {"authorization": f"Bearer {key}"}


def infer_mlp(client, key: str | None, batch: int = 1):
    x = mlp_data(np.random.default_rng(batch), batch)
    t = grpcclient.InferInput("features", list(x.shape), "FP32")
    t.set_data_from_numpy(x)
    return client.infer("ranking_mlp", [t], headers=bearer(key) if key else None, client_timeout=RPC_TIMEOUT)


def rest(cluster, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{cluster.endpoints['http']}{path}", data=data,
                                 method="POST" if data else "GET", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=RPC_TIMEOUT) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_health_needs_no_key_and_everything_else_does(cluster):
    client = cluster.client()
    assert client.is_server_live() and client.is_server_ready()
    expect_error(lambda: infer_mlp(client, None), "UNAUTHENTICATED", "API key")
    expect_error(lambda: infer_mlp(client, "not-a-key-0123456789abc"), "UNAUTHENTICATED", "not valid")
    expect_error(lambda: client.get_model_metadata("ranking_mlp"), "UNAUTHENTICATED")
    assert client.get_model_metadata("ranking_mlp", headers=bearer(OPS)).name == "ranking_mlp"
    assert rest(cluster, "/v2/health/ready")[0] == 200
    status, _, body = rest(cluster, "/v2/models/ranking_mlp")
    assert status == 401 and "API key" in body, (status, body)
    assert rest(cluster, "/v2/models/ranking_mlp", headers={"x-api-key": OPS})[0] == 200


def test_a_key_reaches_only_its_models(cluster):
    client = cluster.client()
    assert infer_mlp(client, ACME).as_numpy("score").shape == (1, 1)
    expect_error(lambda: client.get_model_metadata("simple", headers=bearer(ACME)), "PERMISSION_DENIED",
                 "tenant 'acme' may not call model 'simple'")
    status, _, body = rest(cluster, "/v2/models/simple/infer", {"inputs": []}, headers={"x-api-key": ACME})
    assert status == 403 and "may not call model 'simple'" in body, (status, body)


def test_a_key_over_its_rate_is_refused_with_a_hint(cluster):
    client = cluster.client()
    outcomes = []
    for _ in range(15):
        try:
            infer_mlp(client, ACME)
            outcomes.append("OK")
        except Exception as e:  # noqa: BLE001
            assert "over its rate of 5 requests/s" in e.message(), e.message()
            outcomes.append(e.status())
    assert "OK" in outcomes and "StatusCode.RESOURCE_EXHAUSTED" in outcomes, outcomes
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 256], "data": [0.0] * 256}]}
    statuses = [rest(cluster, "/v2/models/ranking_mlp/infer", body, headers={"x-api-key": ACME}) for _ in range(10)]
    refused = [headers for status, headers, _ in statuses if status == 429]
    assert refused, [s for s, _, _ in statuses]
    assert all(h.get("Retry-After") == "1" for h in refused)
    metrics = urllib.request.urlopen(f"http://{cluster.endpoints['metrics']['frontend']}/metrics", timeout=RPC_TIMEOUT).read().decode()
    assert 'fulcrum_frontend_tenant_requests_total{tenant="acme",outcome="over_rate"}' in metrics, metrics[:2000]


def test_sighup_reloads_the_keys_without_dropping_connections(cluster, keys_file):
    client = cluster.client()
    assert infer_mlp(client, OPS).as_numpy("score").shape == (1, 1)
    write_keys(keys_file, [{"key": LATE, "tenant": "late"}])
    os.kill(cluster.endpoints["frontend_pid"], signal.SIGHUP)

    def reloaded() -> bool:
        try:
            infer_mlp(client, LATE)
            return True
        except Exception:  # noqa: BLE001
            return False

    assert wait_until(reloaded, timeout=10), "the new key was not accepted after SIGHUP"
    expect_error(lambda: infer_mlp(client, OPS), "UNAUTHENTICATED", "not valid")
    # A file that does not parse keeps the current keys.
    keys_file.write_text("{not json")
    os.kill(cluster.endpoints["frontend_pid"], signal.SIGHUP)
    assert infer_mlp(client, LATE).as_numpy("score").shape == (1, 1)
