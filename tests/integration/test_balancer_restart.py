"""The balancer is not a single point of failure under `fulcrum up`: SIGKILL of the balancer in
the middle of a request stream fails no request (the frontend routes on its pool, the workers
keep serving), `fulcrum up` restarts the balancer on the same port, the workers rejoin it and it
adopts them (no extra worker processes), and it plans with the capacity model its predecessor
learned (capacity.json in its --state-dir). SIGKILL of `fulcrum up` itself still leaves nothing
running."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import (RPC_TIMEOUT, check_mlp, infer_mlp, join_all, make_repository,
                      mlp_data, process_alive, process_cmdline, run_threads, running_cluster,
                      wait_until)

STREAM_THREADS = 3
PACE_SECONDS = 0.02
KILLS = 2
REJOIN_TIMEOUT = 20.0
REQUEST_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "balancer-restart", model_repository=repo, workers=2) as c:
        yield c


def worker_processes(cluster) -> list[int]:
    """Live fulcrum-worker processes serving this cluster's repository (whoever their parent)."""
    repo = str(cluster.model_repository.resolve())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and process_alive(int(entry)):
            line = process_cmdline(int(entry))
            if "fulcrum-worker" in line.split(" ")[0] and repo in line:
                found.append(int(entry))
    return found


def endpoints(cluster) -> dict:
    return json.loads(cluster.endpoints_file.read_text())


def test_balancer_killed_mid_stream_fails_nothing(cluster, reference):
    worker_pids = sorted(w["pid"] for w in cluster.endpoints["workers"])
    assert sorted(worker_processes(cluster)) == worker_pids

    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []
    done: list[float] = []

    def stream(seed: int):
        rng = np.random.default_rng(seed)
        client = cluster.client()
        try:
            while not stop.is_set():
                x = mlp_data(rng, int(rng.integers(1, 9)))
                try:
                    check_mlp(infer_mlp(client, x, client_timeout=REQUEST_TIMEOUT), x, reference)
                    with lock:
                        done.append(time.monotonic())
                except Exception as e:  # noqa: BLE001 - every failure counts
                    with lock:
                        failures.append(f"{type(e).__name__}: {e}")
                stop.wait(PACE_SECONDS)
        finally:
            client.close()

    threads = run_threads([lambda s=s: stream(s) for s in range(STREAM_THREADS)])
    kills = []
    try:
        assert wait_until(lambda: len(done) >= 20, timeout=30), f"stream did not get going: {failures[:3]}"
        for _ in range(KILLS):
            balancer = endpoints(cluster)["balancer_pid"]
            os.kill(balancer, signal.SIGKILL)
            killed_at = time.monotonic()
            kills.append(killed_at)

            def rejoined() -> bool:
                current = endpoints(cluster)
                if current["balancer_pid"] == balancer or not process_alive(current["balancer_pid"]):
                    return False
                status = cluster.status()
                return sorted(w["pid"] for w in status["workers"] if w["state"] == "READY") == worker_pids

            assert wait_until(rejoined, timeout=REJOIN_TIMEOUT, interval=0.2), (
                f"no restarted balancer with both workers rejoined after {REJOIN_TIMEOUT} s\n{cluster.log_tail()}")
            # Let requests flow against the restarted balancer's pool for a while.
            time.sleep(1.5)
    finally:
        stop.set()
        join_all(threads, timeout=REQUEST_TIMEOUT + 10)

    assert not failures, f"{len(failures)} of {len(failures) + len(done)} requests failed: {failures[:5]}"
    assert sum(1 for t in done if t > kills[0]) >= 50, "too few requests after the first kill"
    # The same two workers, adopted: none was started twice, none exited.
    assert sorted(worker_processes(cluster)) == worker_pids
    assert all(process_alive(p) for p in worker_pids)
    assert endpoints(cluster)["balancer"] == cluster.endpoints["balancer"], "the balancer moved to another port"


def state_dir(cluster) -> Path:
    """The running balancer's --state-dir, from its command line."""
    with open(f"/proc/{endpoints(cluster)['balancer_pid']}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    return Path(argv[argv.index(b"--state-dir") + 1].decode())


def test_restarted_balancer_plans_with_what_its_predecessor_learned(cluster, reference):
    client = cluster.client()
    try:
        rng = np.random.default_rng(7)
        for _ in range(40):
            x = mlp_data(rng, int(rng.integers(1, 9)))
            check_mlp(infer_mlp(client, x, client_timeout=REQUEST_TIMEOUT), x, reference)
    finally:
        client.close()
    saved = state_dir(cluster) / "capacity.json"

    def learned_model(status: dict) -> dict | None:
        return next((m for m in status["models"] if m["name"] == "ranking_mlp" and m["curve_samples"] > 0), None)

    def saved_model() -> dict | None:
        try:
            learned = json.loads(saved.read_text())
        except (OSError, ValueError):
            return None
        return next((m for m in learned["models"] if m["name"] == "ranking_mlp"), None)

    # No traffic now: wait until the file holds every sample the model has (saved every 5 s).
    def settled() -> bool:
        model, kept = learned_model(cluster.status()), saved_model()
        return model is not None and kept is not None and len(kept["samples"]) == model["curve_samples"]

    assert wait_until(settled, timeout=20, interval=0.5), (
        f"capacity.json never caught up with the model: {saved_model()} vs {learned_model(cluster.status())}")
    before = learned_model(cluster.status())

    balancer = endpoints(cluster)["balancer_pid"]
    os.kill(balancer, signal.SIGKILL)

    def restarted() -> dict | None:
        current = endpoints(cluster)
        if current["balancer_pid"] == balancer or not process_alive(current["balancer_pid"]):
            return None
        try:
            return cluster.status()
        except AssertionError:
            return None

    assert wait_until(lambda: restarted() is not None, timeout=REJOIN_TIMEOUT, interval=0.2), cluster.log_tail()
    after = learned_model(restarted())
    assert after is not None, f"the restarted balancer starts from its prior: {restarted()['models']}"
    assert after["curve_samples"] == before["curve_samples"], (before, after)
    assert after["fixed_ms"] == pytest.approx(before["fixed_ms"], rel=1e-6, abs=1e-9), (before, after)
    assert after["per_sample_ms"] == pytest.approx(before["per_sample_ms"], rel=1e-6, abs=1e-9), (before, after)
    assert after["max_batch_size"] == before["max_batch_size"]


def test_fulcrum_up_killed_leaves_nothing_running(tmp_path):
    from conftest import Cluster, ClusterError
    cluster = Cluster("supervisor-kill", tmp_path / "cluster", make_repository(tmp_path / "repo"), workers=2)
    try:
        cluster.start()
    except ClusterError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        children = cluster.child_pids()
        assert len(children) == 4 and all(process_alive(p) for p in children), cluster.endpoints
        cluster.proc.send_signal(signal.SIGKILL)
        cluster.proc.wait(10)
        assert wait_until(lambda: not any(process_alive(p) for p in children), timeout=10), (
            f"still running after `fulcrum up` was killed: {[process_cmdline(p) for p in children if process_alive(p)]}")
    finally:
        cluster.stop()
