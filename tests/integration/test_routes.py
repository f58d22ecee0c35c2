"""Traffic routes (`fulcrum route`): the balancer stores which versions answer the requests that
name no version, pushes them to the frontend, and rolls a version out step by step, rolling back
by itself when the version's measured p99 breaks the bound. Real clusters under `fulcrum up`, a
real emulated worker for the slow version, tritonclient for every request."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from conftest import (EXAMPLES, RPC_TIMEOUT, binary, process_alive, run_threads, join_all,
                      running_cluster, tensor, wait_until)

SPLIT_REQUESTS = 2000


SCORER_CONFIG = """name: "scorer"
platform: "onnxruntime_onnx"
max_batch_size: 8
version_policy: { all {} }
input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "Y" data_type: TYPE_FP32 dims: [ 4 ] } ]
"""


def scorer_model(offset: list[float]) -> bytes:
    """Y = X + offset: two versions that differ by a known amount in a known column."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "offset"], ["Y"])], "scorer",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[helper.make_tensor("offset", TensorProto.FLOAT, [4], offset)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def two_version_repository(dest: Path) -> Path:
    """ranking_mlp served at versions 1 and 2 (the same weights: answers are identical, the
    response's model_version says which answered), and `scorer`, whose version 2 adds 0.5 to
    the last column of version 1's answer."""
    model = dest / "ranking_mlp"
    shutil.copytree(EXAMPLES / "ranking_mlp", model)
    shutil.copytree(model / "1", model / "2")
    config = (model / "config.pbtxt").read_text()
    (model / "config.pbtxt").write_text(config.replace('platform: "onnxruntime_onnx"\n', 'platform: "onnxruntime_onnx"\nversion_policy: { all {} }\n'))
    scorer = dest / "scorer"
    (scorer / "1").mkdir(parents=True)
    (scorer / "2").mkdir()
    (scorer / "config.pbtxt").write_text(SCORER_CONFIG)
    (scorer / "1" / "model.onnx").write_bytes(scorer_model([0, 0, 0, 0]))
    (scorer / "2" / "model.onnx").write_bytes(scorer_model([0, 0, 0, 0.5]))
    return dest


def one_version_repository(dest: Path, version: int) -> Path:
    model = dest / "ranking_mlp"
    model.mkdir(parents=True)
    shutil.copy(EXAMPLES / "ranking_mlp" / "config.pbtxt", model / "config.pbtxt")
    shutil.copytree(EXAMPLES / "ranking_mlp" / "1", model / str(version))
    return dest


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = two_version_repository(tmp_path_factory.mktemp("routes-repo"))
    with running_cluster(tmp_path_factory, "routes", model_repository=repo, workers=2) as c:
        yield c


def route(cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = cluster.cli("route", *args, "--balancer", cluster.balancer_url)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def routes_json(cluster) -> dict:
    return {r["model"]: r for r in json.loads(route(cluster, "show", "--json").stdout)["routes"]}


FEATURES = np.full((1, 256), 0.5, np.float32)


def answer_version(client, request_id: str = "", version: str = "", parameters=None) -> str:
    result = client.infer("ranking_mlp", [tensor("features", FEATURES)], request_id=request_id,
                          model_version=version, parameters=parameters, client_timeout=RPC_TIMEOUT)
    return result.get_response().model_version


def wait_for_route(client, predicate, timeout: float = 10.0) -> None:
    """The frontend applies a route when the balancer's snapshot arrives (milliseconds)."""
    assert wait_until(predicate, timeout=timeout, interval=0.1), "the frontend did not apply the route"


def test_refusals_name_the_problem(cluster):
    assert "no routes" in route(cluster, "show").stdout
    bad_sum = route(cluster, "set", "ranking_mlp", "--weights", "1=90,2=20", check=False)
    assert bad_sum.returncode != 0 and "add up to 110%, not 100%" in bad_sum.stderr
    unknown_version = route(cluster, "set", "ranking_mlp", "--weights", "1=90,3=10", check=False)
    assert unknown_version.returncode == 1
    assert "has no version 3 on any worker (served: 1, 2)" in unknown_version.stderr
    unknown_model = route(cluster, "set", "nosuch", "--weights", "1=100", check=False)
    assert unknown_model.returncode == 1 and "no worker serves model 'nosuch'" in unknown_model.stderr
    twice = route(cluster, "set", "ranking_mlp", "--weights", "1=50,1=50", check=False)
    assert twice.returncode != 0 and "listed twice" in twice.stderr
    nothing = route(cluster, "rollback", "ranking_mlp", check=False)
    assert nothing.returncode == 1 and "no earlier route" in nothing.stderr
    assert routes_json(cluster) == {}


def test_weighted_split_is_sticky_pinned_and_bypassed_by_explicit_versions(cluster):
    route(cluster, "set", "ranking_mlp", "--weights", "1=90,2=10", "--pin", "tenant=beta:2")
    client = cluster.client()
    try:
        wait_for_route(client, lambda: answer_version(client, parameters={"tenant": "beta"}) == "2")
        counts = collections.Counter(answer_version(client, f"split-{k}") for k in range(SPLIT_REQUESTS))
        share = 100 * counts["2"] / SPLIT_REQUESTS
        assert set(counts) == {"1", "2"} and 7 <= share <= 13, counts
        # The same request id always lands on the same version (so a retry does too).
        for k in range(20):
            assert len({answer_version(client, f"sticky-{k}") for _ in range(5)}) == 1
        assert {answer_version(client, f"beta-{k}", parameters={"tenant": "beta"}) for k in range(50)} == {"2"}
        # A request that names its version never consults the route.
        assert {answer_version(client, f"explicit-{k}", version="1", parameters={"tenant": "beta"}) for k in range(50)} == {"1"}
        assert {answer_version(client, f"explicit2-{k}", version="2") for k in range(20)} == {"2"}
    finally:
        client.close()
    shown = routes_json(cluster)["ranking_mlp"]
    assert shown["weights"] == {"1": 90, "2": 10} and shown["pins"] == [{"parameter": "tenant", "value": "beta", "version": "2"}]
    assert "ranking_mlp" in cluster.cli("status", "--balancer", cluster.balancer_url).stdout.split("routes")[1]


def test_rollback_and_clear(cluster):
    route(cluster, "set", "ranking_mlp", "--weights", "2=100")
    before = routes_json(cluster)["ranking_mlp"]["revision"]
    route(cluster, "set", "ranking_mlp", "--weights", "1=100")
    client = cluster.client()
    try:
        wait_for_route(client, lambda: {answer_version(client, f"a{k}") for k in range(10)} == {"1"})
        rolled = route(cluster, "rollback", "ranking_mlp")
        assert "rolled back" in rolled.stdout and f"to revision {before}" in rolled.stdout
        wait_for_route(client, lambda: {answer_version(client, f"b{k}") for k in range(10)} == {"2"})
        route(cluster, "set", "ranking_mlp", "--weights", "1=100")
        wait_for_route(client, lambda: {answer_version(client, f"c{k}") for k in range(10)} == {"1"})
        cleared = route(cluster, "clear", "ranking_mlp")
        assert "newest version" in cleared.stdout
        # Without a route the newest version answers.
        wait_for_route(client, lambda: {answer_version(client, f"d{k}") for k in range(10)} == {"2"})
        assert routes_json(cluster) == {}
        route(cluster, "rollback", "ranking_mlp")  # brings the cleared route back
        wait_for_route(client, lambda: {answer_version(client, f"e{k}") for k in range(10)} == {"1"})
    finally:
        client.close()


def test_shadow_version_is_compared_and_never_answers(cluster):
    refused = route(cluster, "set", "scorer", "--weights", "1=100", "--shadow", "1=10", check=False)
    assert refused.returncode != 0 and "a shadow must be a version that does not" in refused.stderr
    route(cluster, "set", "scorer", "--weights", "1=100", "--shadow", "2=100")
    assert routes_json(cluster)["scorer"]["shadows"] == {"2": 100}
    client = cluster.client()
    flips = np.array([[1, 0, 0, 0.6]], np.float32)   # version 2: 1.1 in the last column, argmax 3
    keeps = np.array([[1, 0, 0, 0]], np.float32)     # version 2: 0.5 there, argmax stays 0
    try:
        time.sleep(0.5)
        for k in range(200):
            x = flips if k % 2 else keeps
            result = client.infer("scorer", [tensor("X", x)], request_id=f"s{k}", client_timeout=RPC_TIMEOUT)
            # Every answer is the served version's, never the shadow's.
            assert result.get_response().model_version == "1"
            np.testing.assert_array_equal(result.as_numpy("Y"), x)
    finally:
        client.close()

    def summary():
        shadows = {(s["model"], s["version"]): s for s in cluster.status().get("shadows", [])}
        return shadows.get(("scorer", "2"))

    assert wait_until(lambda: (summary() or {}).get("compared", 0) >= 200, timeout=15, interval=0.3), summary()
    s = summary()
    assert s["compared"] == 200 and s["failed"] == 0 and s["dropped"] == 0 and s["identical"] == 0, s
    assert abs(s["max_abs_error"] - 0.5) < 1e-6, s
    assert s["argmax_rows"] == 200 and s["argmax_agreed"] == 100, s
    assert s["served_p99_ms"] is not None and s["shadow_p99_ms"] is not None
    table = cluster.cli("status", "--balancer", cluster.balancer_url).stdout
    assert "shadow versions" in table and "50.0% of 200" in table
    route(cluster, "clear", "scorer")


def test_routes_survive_a_balancer_restart(cluster):
    route(cluster, "set", "ranking_mlp", "--weights", "1=100", "--pin", "tenant=beta:2")
    stored = routes_json(cluster)["ranking_mlp"]
    old = json.loads(cluster.endpoints_file.read_text())["balancer_pid"]
    os.kill(old, signal.SIGKILL)

    def restarted() -> bool:
        pid = json.loads(cluster.endpoints_file.read_text())["balancer_pid"]
        if pid == old or not process_alive(pid):
            return False
        return route(cluster, "show", check=False).returncode == 0

    assert wait_until(restarted, timeout=30, interval=0.2), cluster.log_tail()
    assert routes_json(cluster)["ranking_mlp"] == stored
    client = cluster.client()
    try:
        # The restarted balancer's snapshot carries the same route to the frontend.
        time.sleep(1.5)
        assert {answer_version(client, f"r{k}") for k in range(20)} == {"1"}
        assert {answer_version(client, f"p{k}", parameters={"tenant": "beta"}) for k in range(20)} == {"2"}
    finally:
        client.close()


class Traffic:
    """Requests with fresh ids from a few threads until stopped; counts answers per version."""

    def __init__(self, cluster, threads: int = 2, pause: float = 0.002):
        self.cluster = cluster
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        self.failures: list[str] = []
        self.threads = run_threads([lambda n=n: self.run(n, pause) for n in range(threads)])

    def run(self, n: int, pause: float) -> None:
        client = self.cluster.client()
        k = 0
        try:
            while not self.stop.is_set():
                try:
                    version = answer_version(client, f"t{n}-{k}-{time.monotonic_ns()}")
                    with self.lock:
                        self.counts[version] += 1
                except Exception as e:  # noqa: BLE001 - every failure counts
                    with self.lock:
                        self.failures.append(f"{type(e).__name__}: {e}")
                k += 1
                self.stop.wait(pause)
        finally:
            client.close()

    def finish(self) -> None:
        self.stop.set()
        join_all(self.threads, timeout=30)


def test_progressive_shift_reaches_its_target(cluster):
    route(cluster, "set", "ranking_mlp", "--weights", "1=100")
    traffic = Traffic(cluster)
    try:
        shifted = route(cluster, "shift", "ranking_mlp", "2", "--to", "30", "--step", "10", "--every", "1s",
                        "--max-p99-ms", "2000", "--max-error-rate", "5%")
        assert "2=10%" in shifted.stdout and "running" in shifted.stdout

        def completed() -> bool:
            rollout = routes_json(cluster)["ranking_mlp"]["rollout"]
            return rollout is not None and rollout["state"] == "completed"

        assert wait_until(completed, timeout=40, interval=0.5), route(cluster, "show").stdout
    finally:
        traffic.finish()
    shown = routes_json(cluster)["ranking_mlp"]
    assert shown["weights"] == {"1": 70, "2": 30}
    assert "version 2 at its target of 30%" in shown["rollout"]["reason"]
    assert not traffic.failures, traffic.failures[:3]
    assert traffic.counts["2"] > 0
    # A manual rollback after a rollout goes back to the route from before it, not one step.
    route(cluster, "rollback", "ranking_mlp")
    assert routes_json(cluster)["ranking_mlp"]["weights"] == {"1": 100}


def test_shift_halts_and_rolls_back_on_a_slow_version_and_failed_versions_hand_over(tmp_path_factory, tmp_path):
    """Version 1 on the cluster's own worker; version 2 only on an emulated worker whose every
    execution takes 40 ms. A rollout bounded at p99 ≤ 15 ms halts at its first judgement and
    puts the route back; then, with a 50/50 split, killing the version-2 worker fails nothing:
    requests routed to version 2 are answered by version 1."""
    repo = one_version_repository(tmp_path_factory.mktemp("routes-v1"), 1)
    slow_repo = one_version_repository(tmp_path / "v2", 2)
    with running_cluster(tmp_path_factory, "routes-slow", model_repository=repo, workers=1) as cluster:
        tls = Path(cluster.endpoints["tls_dir"])
        stderr_path = tmp_path / "slow-worker.stderr"
        with open(stderr_path, "wb") as err:
            slow = subprocess.Popen(
                [binary("fulcrum-worker"), "--model-repository", str(slow_repo), "--port", "0", "--threads", "1",
                 "--balancer", cluster.balancer_url, "--name", "slow-worker", "--emulate", "40+0",
                 "--tls-cert", str(tls / "worker.pem"), "--tls-key", str(tls / "worker-key.pem"), "--tls-ca", str(tls / "ca.pem")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        try:
            def slow_ready() -> bool:
                return any(w["name"] == "slow-worker" and w["state"] == "READY" for w in cluster.status()["workers"])

            assert wait_until(slow_ready, timeout=60, interval=0.2), stderr_path.read_text()[-2000:]
            traffic = Traffic(cluster, threads=3)
            try:
                shifted = route(cluster, "shift", "ranking_mlp", "2", "--to", "50", "--step", "10", "--every", "2s",
                                "--max-p99-ms", "15")
                assert "running" in shifted.stdout

                def halted() -> bool:
                    rollout = routes_json(cluster)["ranking_mlp"]["rollout"]
                    return rollout is not None and rollout["state"] == "halted"

                assert wait_until(halted, timeout=40, interval=0.5), route(cluster, "show").stdout
            finally:
                traffic.finish()
            shown = routes_json(cluster)["ranking_mlp"]
            assert shown["weights"] == {"1": 100}, shown
            assert "p99" in shown["rollout"]["reason"] and "over the bound of 15 ms" in shown["rollout"]["reason"]
            assert "halted" in cluster.cli("status", "--balancer", cluster.balancer_url).stdout
            assert "halted and rolled back" in cluster.log_tail(400)
            assert not traffic.failures, traffic.failures[:3]

            # Split traffic that meets a failing version is answered by the other one.
            route(cluster, "set", "ranking_mlp", "--weights", "1=50,2=50")
            traffic = Traffic(cluster, threads=3)
            try:
                assert wait_until(lambda: traffic.counts["2"] >= 10, timeout=20), traffic.counts
                slow.send_signal(signal.SIGKILL)
                slow.wait(10)
                time.sleep(2)
            finally:
                traffic.finish()
            assert not traffic.failures, traffic.failures[:3]
            assert traffic.counts["1"] > 0
        finally:
            if slow.poll() is None:
                slow.kill()
                slow.wait(10)
