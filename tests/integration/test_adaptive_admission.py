"""`--admission adaptive`: when answers start taking more than the tolerance times their lowest
recent latency, the frontend lowers its request limit and refuses the excess at once with
RESOURCE_EXHAUSTED naming the adaptive limit, while the admitted requests are served correctly;
once the load is gone a lone request is served again, and the limit in force is on the
frontend's metrics.

One worker emulates a slow device (`--emulate 100+0`: every execution takes 100 ms), so twelve
clients calling in a loop queue behind each other; the mode is set through the environment
(`FULCRUM_ADMISSION`), which only the frontend reads."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from conftest import RPC_TIMEOUT, make_repository, process_alive, running_cluster, simple_inputs

CLIENTS = 12
SECONDS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FULCRUM_ADMISSION", "adaptive")
        with running_cluster(tmp_path_factory, "adaptive", model_repository=repo, workers=1,
                             extra_args=("--emulate", "100+0", "--metrics")) as c:
            patch.undo()
            yield c


def test_queueing_lowers_the_limit_and_the_excess_is_refused_at_once(cluster):
    client = grpcclient.InferenceServerClient(cluster.grpc_url)
    # Unloaded answers first: they set the model's lowest latency.
    for _ in range(3):
        client.infer("simple", simple_inputs(), client_timeout=RPC_TIMEOUT)

    outcomes: list[tuple[str, float, str]] = []
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def loop():
        c = grpcclient.InferenceServerClient(cluster.grpc_url)
        try:
            while time.monotonic() < stop:
                began = time.monotonic()
                try:
                    result = c.infer("simple", simple_inputs(), client_timeout=RPC_TIMEOUT)
                    # The emulated device returns zeros, with the model's output shape.
                    assert result.as_numpy("OUTPUT0").shape == (1, 16)
                    outcome, message = "OK", ""
                except InferenceServerException as e:
                    outcome, message = e.status() or "?", e.message() or ""
                with lock:
                    outcomes.append((outcome, time.monotonic() - began, message))
                if outcome != "OK":
                    time.sleep(0.02)
        finally:
            c.close()

    threads = [threading.Thread(target=loop) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + RPC_TIMEOUT + 10)

    codes = {o for o, _, _ in outcomes}
    assert codes <= {"OK", "StatusCode.RESOURCE_EXHAUSTED"}, codes
    refused = [(d, m) for o, d, m in outcomes if o == "StatusCode.RESOURCE_EXHAUSTED"]
    served = [d for o, d, _ in outcomes if o == "OK"]
    assert served and refused, (len(served), len(refused))
    assert any("adaptive limit" in m for _, m in refused), refused[:3]
    # A refusal does not wait for the device (each execution takes 100 ms).
    assert sorted(d for d, _ in refused)[len(refused) // 2] < 0.1
    # With the load gone, a lone request is admitted again.
    time.sleep(0.5)
    client.infer("simple", simple_inputs(), client_timeout=RPC_TIMEOUT)
    client.close()
    assert process_alive(cluster.endpoints["frontend_pid"])
    # The limit in force is on the frontend's metrics: it started at 32 and was cut; nothing is held now.
    with urllib.request.urlopen(f"http://{cluster.endpoints['metrics']['frontend']}/metrics", timeout=10) as r:
        text = r.read().decode()
    gauges = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith("fulcrum_frontend_admission_")}
    assert 4 <= gauges["fulcrum_frontend_admission_limit"] <= 32, gauges
    assert gauges["fulcrum_frontend_admission_in_flight"] == 0, gauges
