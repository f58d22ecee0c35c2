"""Adaptive admission, the default: a closed loop is never refused, however much its answers
queue; an open-loop overload (more requests a second than the pool answers) engages the limit,
which refuses the excess at once with RESOURCE_EXHAUSTED naming the adaptive limit while the
admitted requests are served correctly; once the overload is over the limit lets go, and the
limit in force is on the frontend's metrics.

One worker emulates a slow device (`--emulate 100+0`: every execution takes 100 ms, one at a
time, so the pool answers 10 requests a second)."""

from __future__ import annotations

import queue
import threading
import time
import urllib.request

import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from conftest import RPC_TIMEOUT, make_repository, process_alive, running_cluster, simple_inputs, wait_until

CLOSED_CLIENTS = 12
CLOSED_SECONDS = 4
OPEN_RATE = 80  # requests a second, 8x what the pool answers
OPEN_SECONDS = 3
DEFAULT_MAX_INFLIGHT = 2048


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "adaptive", model_repository=repo, workers=1,
                         extra_args=("--emulate", "100+0", "--metrics")) as c:
        yield c


def admission_gauges(cluster) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{cluster.endpoints['metrics']['frontend']}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.startswith("fulcrum_frontend_admission_")}


def outcome_of(call) -> tuple[str, str]:
    try:
        result = call()
        # The emulated device returns zeros, with the model's output shape.
        assert result.as_numpy("OUTPUT0").shape == (1, 16)
        return "OK", ""
    except InferenceServerException as e:
        return e.status() or "?", e.message() or ""


def test_a_closed_loop_is_never_refused_however_long_its_answers_queue(cluster):
    client = grpcclient.InferenceServerClient(cluster.grpc_url)
    # Unloaded answers first: they set the model's lowest latency.
    for _ in range(3):
        client.infer("simple", simple_inputs(), client_timeout=RPC_TIMEOUT)
    client.close()

    outcomes: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + CLOSED_SECONDS

    def loop():
        c = grpcclient.InferenceServerClient(cluster.grpc_url)
        try:
            while time.monotonic() < stop:
                outcome, _ = outcome_of(lambda: c.infer("simple", simple_inputs(), client_timeout=RPC_TIMEOUT))
                with lock:
                    outcomes.append(outcome)
        finally:
            c.close()

    threads = [threading.Thread(target=loop) for _ in range(CLOSED_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CLOSED_SECONDS + RPC_TIMEOUT + 10)
    # Twelve callers behind a device that answers one at a time: every answer waited ~1.2 s, 12x
    # the model's lowest latency, yet the queue never grew past the twelve, so nothing is refused.
    assert outcomes and set(outcomes) == {"OK"}, {o: outcomes.count(o) for o in set(outcomes)}
    assert admission_gauges(cluster)["fulcrum_frontend_admission_limit"] == DEFAULT_MAX_INFLIGHT


def test_an_open_loop_overload_engages_the_limit_and_its_end_releases_it(cluster):
    client = grpcclient.InferenceServerClient(cluster.grpc_url)
    for _ in range(3):
        client.infer("simple", simple_inputs(), client_timeout=RPC_TIMEOUT)

    results: queue.Queue[tuple[str, float, str]] = queue.Queue()
    sender = grpcclient.InferenceServerClient(cluster.grpc_url)

    def send():
        began = time.monotonic()

        def done(result, error):
            if error is None:
                outcome, message = outcome_of(lambda: result)
            else:
                outcome, message = error.status() or "?", error.message() or ""
            results.put((outcome, time.monotonic() - began, message))

        sender.async_infer("simple", simple_inputs(), done, client_timeout=RPC_TIMEOUT)

    # Open loop: a request every 1/80 s whatever the answers do.
    count = OPEN_RATE * OPEN_SECONDS
    first = time.monotonic()
    seen = []  # (limit, in flight) each second
    for i in range(count):
        delay = first + i / OPEN_RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send()
        if i % (OPEN_RATE // 2) == OPEN_RATE // 2 - 1:
            gauges = admission_gauges(cluster)
            seen.append((gauges["fulcrum_frontend_admission_limit"], gauges["fulcrum_frontend_admission_in_flight"]))
    outcomes = [results.get(timeout=RPC_TIMEOUT + 10) for _ in range(count)]
    sender.close()

    codes = {o for o, _, _ in outcomes}
    assert codes <= {"OK", "StatusCode.RESOURCE_EXHAUSTED"}, codes
    refused = [(d, m) for o, d, m in outcomes if o == "StatusCode.RESOURCE_EXHAUSTED"]
    served = [d for o, d, _ in outcomes if o == "OK"]
    assert served and refused, (len(served), len(refused), seen, served[:12])
    # Most of an 8x overload is refused, and by the adaptive limit, not the static one.
    assert len(refused) > count // 2, (len(served), len(refused))
    assert any("adaptive limit" in m for _, m in refused), refused[:3]
    # A refusal does not wait for the device (each execution takes 100 ms).
    assert sorted(d for d, _ in refused)[len(refused) // 2] < 0.1
    # While the overload lasted the limit in force was at most where it engages.
    assert min(limit for limit, _ in seen) <= 32, seen
    # With the overload over, the next answers release the limit.
    assert wait_until(lambda: (client.infer("simple", simple_inputs(), client_timeout=RPC_TIMEOUT) is not None
                               and admission_gauges(cluster)["fulcrum_frontend_admission_limit"] == DEFAULT_MAX_INFLIGHT),
                      timeout=20, interval=0.2), admission_gauges(cluster)
    client.close()
    assert process_alive(cluster.endpoints["frontend_pid"])
    assert admission_gauges(cluster)["fulcrum_frontend_admission_in_flight"] == 0
