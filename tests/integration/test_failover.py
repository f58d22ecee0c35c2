"""Failover: SIGKILL one of two workers in the middle of a request stream. The frontend must
retry on the other worker (no failed request), the balancer must drop the dead worker at once,
and its process scaler must restart it (a new process under the same name)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from conftest import (RPC_TIMEOUT, check_mlp, infer_mlp, join_all, make_repository, mlp_data,
                      process_alive, response_parameters, run_threads, running_cluster,
                      wait_until)

STREAM_SECONDS = 5.0
KILL_AFTER_SECONDS = 1.5
STREAM_THREADS = 3
PACE_SECONDS = 0.02          # per thread: a few hundred requests in all
MEMBERSHIP_TIMEOUT = 3.0     # the dead worker leaves `fulcrum status` within this (after the kill)
RESTART_TIMEOUT = 20.0       # the process scaler's replacement is READY within this
REQUEST_TIMEOUT = 10.0       # a request stuck on the dead worker is a failure, not a hang


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "failover", model_repository=repo, workers=2) as c:
        yield c


def test_worker_killed_mid_stream(cluster, reference):
    status = cluster.status()
    assert len(status["workers"]) == 2, status
    assert all(w["state"] == "READY" for w in status["workers"]), status
    pid_of = {w["id"]: w["pid"] for w in status["workers"]}
    endpoint_pids = {w["pid"] for w in cluster.endpoints["workers"]}
    assert set(pid_of.values()) == endpoint_pids, (pid_of, cluster.endpoints["workers"])

    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []
    # (started, finished, worker id) of every successful request
    done: list[tuple[float, float, str]] = []

    def stream(seed: int):
        rng = np.random.default_rng(seed)
        client = cluster.client()
        try:
            while not stop.is_set():
                x = mlp_data(rng, int(rng.integers(1, 9)))
                started = time.monotonic()
                try:
                    result = infer_mlp(client, x, client_timeout=REQUEST_TIMEOUT)
                    check_mlp(result, x, reference)
                    worker = response_parameters(result).get("fulcrum.worker", (None, None))[1]
                    with lock:
                        done.append((started, time.monotonic(), worker))
                except Exception as e:  # noqa: BLE001 - every failure counts
                    with lock:
                        failures.append(f"{time.monotonic() - t0:.3f}s {type(e).__name__}: {e}")
                stop.wait(PACE_SECONDS)
        finally:
            client.close()

    t0 = time.monotonic()
    threads = run_threads([lambda s=s: stream(s) for s in range(STREAM_THREADS)])
    try:
        # Kill the worker that served the most recent request (so it is surely in use).
        assert wait_until(lambda: len(done) >= 10 and time.monotonic() - t0 >= KILL_AFTER_SECONDS,
                          timeout=30), f"stream did not get going: {len(done)} done, {failures[:3]}"
        with lock:
            victim = done[-1][2]
        assert victim in pid_of, f"fulcrum.worker {victim!r} is not a worker id {set(pid_of)}"
        victim_pid = pid_of[victim]
        survivor = next(w for w in pid_of if w != victim)
        os.kill(victim_pid, signal.SIGKILL)
        killed_at = time.monotonic()

        # Membership: within MEMBERSHIP_TIMEOUT the dead process is no longer listed.
        seen = []

        def dead_one_gone() -> bool:
            ws = cluster.status()["workers"]
            seen.append([(w["id"], w["state"], w["pid"]) for w in ws])
            return victim_pid not in [w["pid"] for w in ws]

        gone = wait_until(dead_one_gone, timeout=MEMBERSHIP_TIMEOUT, interval=0.05)
        gone_after = time.monotonic() - killed_at
        assert gone, (f"after {gone_after:.1f} s `fulcrum status` still lists {seen[-1]} "
                      f"(killed {victim}, pid {victim_pid})")

        remaining = STREAM_SECONDS - (time.monotonic() - t0)
        if remaining > 0:
            time.sleep(remaining)
    finally:
        stop.set()
        join_all(threads, timeout=REQUEST_TIMEOUT + 10)

    assert not failures, f"{len(failures)} of {len(failures) + len(done)} requests failed: {failures[:5]}"
    assert not process_alive(victim_pid)
    assert len(done) >= 100, f"only {len(done)} requests in {STREAM_SECONDS} s"
    after_kill = [d for d in done if d[0] > killed_at]
    assert len(after_kill) >= 20, f"only {len(after_kill)} requests after the kill"
    assert sum(1 for d in after_kill if d[2] == survivor) >= 10, "the survivor did not take over"

    # The process scaler restarts the dead worker: same name, new process, READY again.
    def restarted() -> bool:
        ws = {w["id"]: w for w in cluster.status()["workers"]}
        return (victim in ws and ws[victim]["pid"] != victim_pid and ws[victim]["state"] == "READY"
                and process_alive(ws[victim]["pid"]))

    assert wait_until(restarted, timeout=RESTART_TIMEOUT, interval=0.2), (
        f"{victim} was not restarted: {cluster.status()['workers']}")


def test_serves_after_failover(cluster, reference):
    client = cluster.client()
    try:
        assert client.is_server_ready(client_timeout=RPC_TIMEOUT)
        rng = np.random.default_rng(7)
        for batch in (1, 8, 64):
            x = mlp_data(rng, batch)
            check_mlp(infer_mlp(client, x), x, reference)
    finally:
        client.close()
