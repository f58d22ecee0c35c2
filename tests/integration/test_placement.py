"""`--placement demand`: the balancer moves models between workers by demand. Two emulated workers
(a rehearsal: 50 ms + 25 ms per sample) start with every model; with no traffic each model is
unloaded down to one replica, sustained traffic on one model loads it on the second worker, and
when that traffic falls to a trickle the extra replica is unloaded again.
Requests sent all the while never fail: a replica is marked UNLOADING in the pool snapshot
(frontends stop routing to it) before its worker is told to unload."""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np

from conftest import EXAMPLES, RPC_TIMEOUT, running_cluster, tensor, wait_until


def replicas(cluster) -> dict[str, list[str]]:
    placed: dict[str, list[str]] = {}
    for worker in cluster.status()["workers"]:
        for model in worker["models"]:
            if model["state"] == "READY":
                placed.setdefault(model["name"], []).append(worker["id"])
    return placed


class Traffic:
    """Closed-loop requests to one model from `threads` threads, counting failures."""

    def __init__(self, cluster, model: str, threads: int):
        self.cluster, self.model, self.stop, self.sent, self.failures = cluster, model, threading.Event(), 0, []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        client = self.cluster.client()
        while not self.stop.is_set():
            try:
                if self.model == "simple":
                    a = np.ones((1, 16), np.int32)
                    client.infer("simple", [tensor("INPUT0", a), tensor("INPUT1", a)], client_timeout=RPC_TIMEOUT)
                else:
                    client.infer(self.model, [tensor("features", np.ones((1, 256), np.float32))], client_timeout=RPC_TIMEOUT)
                with self.lock:
                    self.sent += 1
            except Exception as error:  # noqa: BLE001 (every failure is the finding)
                with self.lock:
                    self.failures.append(str(error))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


BATCHING_CONFIG = """
name: "ranking_mlp"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "features" data_type: TYPE_FP32 dims: [ 256 ] } ]
output [ { name: "score" data_type: TYPE_FP32 dims: [ 1 ] } ]
dynamic_batching { max_queue_delay_microseconds: 1000 }
parameters { key: "fulcrum.latency_target_ms" value: { string_value: "400" } }
"""


def test_models_follow_demand_without_failing_a_request(tmp_path_factory, tmp_path):
    repo = tmp_path / "repo"
    for model in ("simple", "ranking_mlp"):
        shutil.copytree(EXAMPLES / model, repo / model)
    (repo / "ranking_mlp" / "config.pbtxt").write_text(BATCHING_CONFIG)
    # ranking_mlp batches up to 8: best 8 / (50 + 200 ms) = 32 req/s a worker. With 40 % headroom
    # one request at a time (about 13 req/s, 41 %) fits one worker; 32 in flight do not.
    extra = ("--placement", "demand", "--backend", "emulated", "--emulate", "50+25",
             "--balancer-arg=--headroom=0.4")
    with running_cluster(tmp_path_factory, "placement", model_repository=repo, workers=2, extra_args=extra) as cluster:
        assert wait_until(lambda: len(cluster.status()["workers"]) == 2, timeout=20)
        # No demand beyond one replica: each model ends on one worker.
        assert wait_until(lambda: sorted(map(len, replicas(cluster).values())) == [1, 1], timeout=30), replicas(cluster)
        with Traffic(cluster, "ranking_mlp", threads=1) as light:
            with Traffic(cluster, "ranking_mlp", threads=32) as heavy:
                # 32 requests in flight saturate one worker, so the plan needs two and ranking_mlp is
                # loaded on the other worker.
                assert wait_until(lambda: len(replicas(cluster).get("ranking_mlp", [])) == 2, timeout=30), \
                    (replicas(cluster), [(m["name"], round(m["rate_short"]), m["planned_workers"], round(m["utilisation"], 2))
                                         for m in cluster.status()["models"]])
                time.sleep(1)
            # Demand drops to one request at a time: after the 10 s stabilisation window one replica
            # is marked UNLOADING, then unloaded, while requests keep coming.
            assert wait_until(lambda: len(replicas(cluster).get("ranking_mlp", [])) == 1, timeout=40), replicas(cluster)
            time.sleep(2)
        assert heavy.sent > 50 and light.sent > 20, (heavy.sent, light.sent)
        failures = heavy.failures + light.failures
        assert failures == [], failures[:3]
        log = cluster.log_tail(400)
        assert "placement: load ranking_mlp" in log and "placement: unload ranking_mlp" in log
