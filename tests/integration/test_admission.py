"""The edge bounds what it holds: past its admission limit the frontend refuses at once
(RESOURCE_EXHAUSTED over gRPC, 429 with Retry-After over HTTP) while the admitted requests are
served; a gRPC connection that sends half a frame, or a request body that never finishes, is cut
off after the read timeout, and so is an HTTP request whose head or body trickles in; an idle
connection is closed after the idle timeout.

The workers emulate a slow device (`--emulate 300+0`: every execution takes 300 ms), so a burst
piles up in the frontend; the limits are set small through the environment
(`FULCRUM_MAX_INFLIGHT`, ...), which only the frontend reads."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from conftest import RPC_TIMEOUT, make_repository, process_alive, running_cluster, simple_inputs, wait_until

MAX_INFLIGHT = 4
BURST = 24
READ_TIMEOUT_S = 2
IDLE_TIMEOUT_S = 6  # well past the read timeout, so the two cannot be mistaken for each other
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FULCRUM_MAX_INFLIGHT", str(MAX_INFLIGHT))
        patch.setenv("FULCRUM_REQUEST_READ_TIMEOUT_S", str(READ_TIMEOUT_S))
        patch.setenv("FULCRUM_IDLE_TIMEOUT_S", str(IDLE_TIMEOUT_S))
        with running_cluster(tmp_path_factory, "admission", model_repository=repo, workers=1,
                             extra_args=("--emulate", "300+0")) as c:
            patch.undo()
            yield c


def test_a_burst_past_the_limit_is_refused_fast_and_the_rest_served(cluster):
    results: list[tuple[str, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(BURST)

    def one():
        client = grpcclient.InferenceServerClient(cluster.grpc_url)
        try:
            start.wait()
            began = time.monotonic()
            try:
                client.infer("simple", simple_inputs(), client_timeout=RPC_TIMEOUT)
                outcome = "OK"
            except InferenceServerException as e:
                outcome = e.status() or "?"
                if outcome == "StatusCode.RESOURCE_EXHAUSTED":
                    assert "admission limit" in e.message(), e.message()
            with lock:
                results.append((outcome, time.monotonic() - began))
        finally:
            client.close()

    threads = [threading.Thread(target=one) for _ in range(BURST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RPC_TIMEOUT + 10)
    outcomes = [o for o, _ in results]
    refused = [d for o, d in results if o == "StatusCode.RESOURCE_EXHAUSTED"]
    served = outcomes.count("OK")
    assert len(results) == BURST, results
    assert set(outcomes) <= {"OK", "StatusCode.RESOURCE_EXHAUSTED"}, outcomes
    assert served >= MAX_INFLIGHT and refused, outcomes
    # A refusal does not wait behind the admitted requests (each of those takes >= 300 ms).
    assert sorted(refused)[len(refused) // 2] < 0.3, sorted(refused)
    assert process_alive(cluster.endpoints["frontend_pid"])


def test_http_refusals_are_429_with_retry_after(cluster):
    body = json.dumps({"inputs": [
        {"name": name, "datatype": "INT32", "shape": [1, 16], "data": list(range(16))}
        for name in ("INPUT0", "INPUT1")]}).encode()
    statuses: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def one():
        req = urllib.request.Request(f"http://{cluster.endpoints['http']}/v2/models/simple/infer", data=body,
                                     method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=RPC_TIMEOUT) as r:
                status, retry = r.status, None
        except urllib.error.HTTPError as e:
            status, retry = e.code, e.headers.get("Retry-After")
        with lock:
            statuses.append((status, retry))

    threads = [threading.Thread(target=one) for _ in range(BURST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RPC_TIMEOUT + 10)
    codes = [s for s, _ in statuses]
    assert set(codes) <= {200, 429}, statuses
    assert 429 in codes and 200 in codes, statuses
    assert all(retry == "1" for s, retry in statuses if s == 429), statuses


def host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Reads until the server closes the connection; the time it took, or None."""
    began = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - began < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - began
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - began
    return None


def test_a_frame_that_never_finishes_is_cut_off(cluster):
    with socket.create_connection(host_port(cluster.grpc_url)) as sock:
        # In one write: the HTTP/2 handler reads the whole frames and holds the partial one.
        sock.sendall(PREFACE + EMPTY_SETTINGS + b"\x00\x00\x40\x01\x04\x00\x00\x00\x01" + b"\x82")  # HEADERS: 64 bytes promised, 1 sent
        took = closed_within(sock, READ_TIMEOUT_S + 5)
    assert took is not None and took < READ_TIMEOUT_S + 2.5, took


def test_a_connection_that_sends_nothing_is_closed(cluster):
    with socket.create_connection(host_port(cluster.grpc_url)) as sock:
        took = closed_within(sock, READ_TIMEOUT_S + 5)
    assert took is not None, "a silent connection stayed open"


def test_an_idle_grpc_connection_is_closed_after_the_idle_timeout(cluster):
    with socket.create_connection(host_port(cluster.grpc_url)) as sock:
        sock.sendall(PREFACE + EMPTY_SETTINGS)
        took = closed_within(sock, IDLE_TIMEOUT_S + 5)
    assert took is not None and took > IDLE_TIMEOUT_S - 0.5, took
    assert process_alive(cluster.endpoints["frontend_pid"])


def trickle_until_closed(sock: socket.socket, data: bytes, seconds: float, every: float = 0.25) -> float | None:
    """Sends DATA one byte every EVERY seconds until the server closes the connection; the time
    from the first byte to the close, or None if it stayed open for SECONDS."""
    began = time.monotonic()
    sock.settimeout(every)
    for i in range(len(data)):
        if time.monotonic() - began > seconds:
            return None
        try:
            sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - began
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - began
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - began
    return None


def test_http_headers_trickled_byte_by_byte_are_cut_off(cluster):
    head = (f"GET /v2/health/ready HTTP/1.1\r\nHost: {cluster.endpoints['http']}\r\n"
            + "".join(f"X-Padding-{i}: {'a' * 20}\r\n" for i in range(40)) + "\r\n").encode()
    with socket.create_connection(host_port(cluster.endpoints["http"])) as sock:
        took = trickle_until_closed(sock, head, READ_TIMEOUT_S + 6)
    assert took is not None and took < READ_TIMEOUT_S + 2.5, took
    assert process_alive(cluster.endpoints["frontend_pid"])


def test_an_http_body_trickled_byte_by_byte_is_cut_off(cluster):
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": list(range(16))}]}).encode()
    head = (f"POST /v2/models/simple/infer HTTP/1.1\r\nHost: {cluster.endpoints['http']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(host_port(cluster.endpoints["http"])) as sock:
        sock.sendall(head)
        took = trickle_until_closed(sock, body, READ_TIMEOUT_S + 6)
    assert took is not None and took < READ_TIMEOUT_S + 2.5, took


def test_a_keep_alive_http_connection_between_requests_waits_for_the_idle_timeout(cluster):
    request = f"GET /v2/health/live HTTP/1.1\r\nHost: {cluster.endpoints['http']}\r\n\r\n".encode()
    with socket.create_connection(host_port(cluster.endpoints["http"])) as sock:
        sock.sendall(request)
        sock.settimeout(RPC_TIMEOUT)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "the health check was not answered"
        # The request is complete: the read deadline no longer runs, only the idle timeout.
        took = closed_within(sock, IDLE_TIMEOUT_S + 5)
    assert took is not None and took > IDLE_TIMEOUT_S - 0.5, took
