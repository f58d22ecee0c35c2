"""The prediction log and replay: a frontend started with --prediction-log records sampled
predictions (ids, tenant, the version and content hash that answered, raw inputs and outputs,
timing, status) in rotating files; `fulcrum log show` prints them as JSON lines and `fulcrum
replay` sends them to the cluster again: against the same version every answer is identical,
against another version the known difference is reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from conftest import RPC_TIMEOUT, expect_error, running_cluster, tensor, wait_until
from test_routes import two_version_repository

SCORER_REQUESTS = 100


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    repo = two_version_repository(tmp_path_factory.mktemp("log-repo"))
    log_dir = tmp_path_factory.mktemp("prediction-log")
    args = ("--prediction-log", str(log_dir), "--prediction-log-rate", "0,scorer=100")
    with running_cluster(tmp_path_factory, "prediction-log", model_repository=repo, workers=1, extra_args=args) as cluster:
        client = cluster.client()
        rng = np.random.default_rng(11)
        sent = {}
        try:
            for k in range(SCORER_REQUESTS):
                x = rng.normal(size=(1 + k % 3, 4)).astype(np.float32)
                x[:, 3] = np.where(k % 2, 0.6, 0.0)
                x[:, 0] = 1.0
                result = client.infer("scorer", [tensor("X", x)], request_id=f"log-{k}", parameters={"tenant": "acme"},
                                      client_timeout=RPC_TIMEOUT)
                sent[f"log-{k}"] = (x, result.as_numpy("Y"), result.get_response().model_version)
            for k in range(20):  # not sampled: 0% for every model but scorer
                client.infer("ranking_mlp", [tensor("features", np.ones((1, 256), np.float32))], request_id=f"mlp-{k}",
                             client_timeout=RPC_TIMEOUT)
            expect_error(lambda: client.infer("scorer", [tensor("X", np.ones((1, 5), np.float32))], request_id="bad",
                                              client_timeout=RPC_TIMEOUT), "INVALID_ARGUMENT")
        finally:
            client.close()

        def records() -> list[dict]:
            shown = cluster.cli("log", "show", str(log_dir))
            assert shown.returncode == 0, shown.stderr
            return [json.loads(line) for line in shown.stdout.splitlines() if line.strip()]

        # The writer is asynchronous: wait for every record.
        assert wait_until(lambda: len(records()) == SCORER_REQUESTS + 1, timeout=20, interval=0.3), len(records())
        yield cluster, log_dir, sent, records()


def test_records_hold_who_what_and_the_tensors(logged):
    cluster, log_dir, sent, records = logged
    assert {r["model"] for r in records} == {"scorer"}  # ranking_mlp sampled at 0%
    by_id = {r["request_id"]: r for r in records}
    for request_id, (x, y, version) in sent.items():
        r = by_id[request_id]
        assert r["status"]["code"] == 0 and r["version"] == version == "2" and r["tenant"] == "acme"
        assert r["model_hash"] and r["trace_id"] and r["latency_us"] > 0 and r["frontend"]
        assert "compute_us" in r["timing"] and "network_us" in r["timing"]
        (logged_x,) = r["inputs"]
        assert logged_x["name"] == "X" and logged_x["shape"] == list(x.shape)
        np.testing.assert_array_equal(np.array(logged_x["data"], np.float32).reshape(x.shape), x)
        (logged_y,) = r["outputs"]
        np.testing.assert_array_equal(np.array(logged_y["data"], np.float32).reshape(y.shape), y)
    bad = by_id["bad"]
    assert bad["status"]["code"] == 3 and "shape" in bad["status"]["message"] and bad["outputs"] == []


def test_replay_against_the_same_version_is_identical(logged):
    cluster, log_dir, _, _ = logged
    replay = cluster.cli("replay", str(log_dir), "--url", cluster.grpc_url, "--model", "scorer", "--rate", "200")
    assert replay.returncode == 0, replay.stderr
    assert f"scorer: {SCORER_REQUESTS} replayed — {SCORER_REQUESTS} identical (100.0%)" in replay.stdout, replay.stdout
    assert "1 logged failures not replayed" in replay.stdout

    # The replayed calls are logged too, marked as replays (a later replay skips them).
    def replays() -> int:
        shown = cluster.cli("log", "show", str(log_dir), "--model", "scorer")
        return sum(1 for line in shown.stdout.splitlines() if json.loads(line)["replay"])

    assert wait_until(lambda: replays() == SCORER_REQUESTS, timeout=20, interval=0.3), replays()


def test_replay_against_another_version_reports_the_difference(logged):
    cluster, log_dir, _, _ = logged
    replay = cluster.cli("replay", str(log_dir), "--url", cluster.grpc_url, "--model", "scorer", "--version", "1", "--json")
    assert replay.returncode == 0, replay.stderr
    (summary,) = json.loads(replay.stdout)["models"]
    assert summary["replayed"] == SCORER_REQUESTS and summary["changed"] == SCORER_REQUESTS and summary["identical"] == 0
    assert abs(summary["max_abs_error"] - 0.5) < 1e-6
    assert summary["worst"] and all(w["versions"] == "2 → 1" for w in summary["worst"])
    assert any("argmax changed" in w["note"] for w in summary["worst"])
    text = cluster.cli("replay", str(log_dir), "--url", cluster.grpc_url, "--model", "scorer", "--version", "1",
                       "--tolerance", "0.6").stdout
    assert f"{SCORER_REQUESTS} within 0.6" in text


def test_a_truncated_file_is_read_up_to_its_last_whole_record(logged, tmp_path):
    cluster, log_dir, _, _ = logged
    (first,) = sorted(log_dir.iterdir())[:1]
    data = first.read_bytes()
    whole = tmp_path / "whole.log"
    whole.write_bytes(data)
    records = len(cluster.cli("log", "show", str(whole)).stdout.splitlines())
    cut = tmp_path / "cut.log"
    cut.write_bytes(data[: len(data) - 7])
    shown = cluster.cli("log", "show", str(cut))
    assert shown.returncode == 0
    assert len(shown.stdout.splitlines()) == records - 1  # the last record was cut
    assert "ends inside a record" in shown.stderr
    garbage = tmp_path / "garbage.log"
    garbage.write_bytes(b"\x05hello")
    broken = cluster.cli("log", "show", str(garbage))
    assert broken.returncode == 1 and "not a prediction record" in broken.stderr
