"""A call that cannot make its deadline is refused early, not served late: while answers take
about 250 ms (one worker emulating an 8 ms device, 32 clients queueing behind each other), a call
with a 200 ms deadline is refused at once with DEADLINE_EXCEEDED naming both times, a call with a
long deadline is served, and once the queue is gone the short deadline is served again; the
refusals are counted on the frontend's metrics. Under the default adaptive admission the 32
clients, a closed loop, never engage the adaptive limit: the few short-deadline calls refused
beside them are not an overload."""

from __future__ import annotations

import re
import threading
import time
import urllib.request

import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from conftest import RPC_TIMEOUT, make_repository, process_alive, running_cluster, simple_inputs, wait_until

CLIENTS = 32
SHORT_DEADLINE_S = 0.2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "deadline", model_repository=repo, workers=1,
                         extra_args=("--emulate", "8+0", "--metrics")) as c:
        yield c


def refusals(cluster) -> float:
    with urllib.request.urlopen(f"http://{cluster.endpoints['metrics']['frontend']}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith('fulcrum_frontend_admission_refusals_total{reason="deadline"}'))


def test_a_call_that_cannot_make_its_deadline_is_refused_early(cluster):
    stop = threading.Event()
    served = [0]
    lock = threading.Lock()
    failures: list[str] = []

    def queue():
        c = grpcclient.InferenceServerClient(cluster.grpc_url)
        try:
            while not stop.is_set():
                try:
                    c.infer("simple", simple_inputs(), client_timeout=RPC_TIMEOUT)
                    with lock:
                        served[0] += 1
                except InferenceServerException as e:  # a long deadline is never refused
                    with lock:
                        failures.append(f"{e.status()}: {e.message()}")
        finally:
            c.close()

    threads = [threading.Thread(target=queue) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    client = grpcclient.InferenceServerClient(cluster.grpc_url)
    try:
        assert wait_until(lambda: served[0] >= 200, timeout=30), f"the queue did not get going: {failures[:3]}"
        outcomes = []
        for _ in range(10):
            began = time.monotonic()
            try:
                client.infer("simple", simple_inputs(), client_timeout=SHORT_DEADLINE_S)
                outcomes.append(("OK", time.monotonic() - began, ""))
            except InferenceServerException as e:
                outcomes.append((e.status(), time.monotonic() - began, e.message() or ""))
            time.sleep(0.05)
        early = [(d, m) for s, d, m in outcomes if s == "StatusCode.DEADLINE_EXCEEDED" and "refused early" in m]
        assert early, outcomes
        # Refused as it arrived, not after waiting out its deadline in the queue.
        assert min(d for d, _ in early) < SHORT_DEADLINE_S / 2, early
        # The message names both times: the deadline is what is left of the 200 ms when the
        # frontend decides (tritonclient sends it in microseconds, rounded up; transit can take a
        # millisecond off it).
        assert re.search(r"answers take about \d+ ms now, and this call's deadline of (19\d|20\d) ms", early[0][1]), early[0][1]
        # A call whose deadline has room is served meanwhile.
        client.infer("simple", simple_inputs(), client_timeout=RPC_TIMEOUT)
    finally:
        stop.set()
        for t in threads:
            t.join(RPC_TIMEOUT + 10)
    assert not failures, failures[:5]
    assert refusals(cluster) >= len(early)
    # With the queue gone (nothing in flight), the short deadline is served again.
    time.sleep(0.3)
    result = client.infer("simple", simple_inputs(), client_timeout=SHORT_DEADLINE_S)
    assert result.as_numpy("OUTPUT0").shape == (1, 16)
    client.close()
    assert process_alive(cluster.endpoints["frontend_pid"])
