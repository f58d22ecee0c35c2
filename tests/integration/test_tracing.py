"""Distributed tracing and structured logs.

A `fulcrum up --trace-file` cluster records the spans of its frontend and worker in one JSON-lines
file. A client's W3C `traceparent` (gRPC metadata or HTTP header, sent with tritonclient's own
`headers=`) must come out as one linked trace: client span → frontend server span → frontend's
client span to the worker → worker server span → queue and compute spans. A standalone worker
sends its spans to an OTLP/HTTP collector (a small receiver in this test), and `--log-format json`
writes one JSON object per log line."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from conftest import (RPC_TIMEOUT, binary, infer_mlp, make_repository, mlp_data, response_parameters,
                      running_cluster, tensor, wait_until)


def new_traceparent(sampled: bool = True) -> tuple[str, str, str]:
    trace, span = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace}-{span}-{'01' if sampled else '00'}", trace, span


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    spans = tmp_path_factory.mktemp("trace") / "spans.jsonl"
    with running_cluster(tmp_path_factory, "tracing", model_repository=repo, workers=1,
                         extra_args=("--trace-file", str(spans))) as c:
        c.spans_file = spans
        yield c


def spans_of(path: Path, trace: str) -> list[dict]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [s for s in lines if s["traceId"] == trace]


def wait_for_spans(path: Path, trace: str, count: int) -> list[dict]:
    wait_until(lambda: len(spans_of(path, trace)) >= count, timeout=10)
    return spans_of(path, trace)


def check_linked(spans: list[dict], client_span: str | None) -> None:
    """The five spans of one prediction, each the child of the one before (queue and compute both
    children of the worker span), nested in time."""
    by_name = {}
    for s in spans:
        key = s["name"].split(" ")[0] if s["service"] == "fulcrum-frontend" else s["name"].split(" ")[0]
        by_name.setdefault((s["service"], s["kind"], key), []).append(s)
    server = by_name[("fulcrum-frontend", "server", "ModelInfer")]
    forward = by_name[("fulcrum-frontend", "client", "forward")]
    worker = by_name[("fulcrum-worker", "server", "worker")]
    queue = by_name[("fulcrum-worker", "internal", "queue")]
    compute = by_name[("fulcrum-worker", "internal", "compute")]
    assert [len(x) for x in (server, forward, worker, queue, compute)] == [1] * 5, spans
    server, forward, worker, queue, compute = server[0], forward[0], worker[0], queue[0], compute[0]
    assert server.get("parentSpanId") == client_span, server
    assert forward["parentSpanId"] == server["spanId"], (forward, server)
    assert worker["parentSpanId"] == forward["spanId"], (worker, forward)
    assert queue["parentSpanId"] == worker["spanId"] and compute["parentSpanId"] == worker["spanId"]
    assert server["attributes"]["fulcrum.model"] == "ranking_mlp"
    assert compute["attributes"]["fulcrum.batch_size"] >= 1
    assert forward["attributes"]["fulcrum.worker"] == worker["attributes"]["fulcrum.worker"]
    for outer, inner in ((server, forward), (forward, worker), (worker, queue), (worker, compute)):
        assert outer["startTimeUnixNano"] <= inner["startTimeUnixNano"] <= inner["endTimeUnixNano"] <= outer["endTimeUnixNano"], (outer, inner)
    assert queue["endTimeUnixNano"] <= compute["startTimeUnixNano"] + 1_000
    for key in ("fulcrum.frontend_us", "fulcrum.network_us", "fulcrum.queue_us", "fulcrum.compute_us"):
        assert isinstance(server["attributes"][key], int), server


def test_grpc_traceparent_links_every_hop(cluster):
    traceparent, trace, span = new_traceparent()
    client = cluster.client()
    try:
        result = infer_mlp(client, mlp_data(np.random.default_rng(1), 3), headers={"traceparent": traceparent})
    finally:
        client.close()
    assert response_parameters(result)["fulcrum.trace_id"] == ("string_param", trace)
    check_linked(wait_for_spans(cluster.spans_file, trace, 5), client_span=span)


def test_http_traceparent_links_every_hop(cluster):
    traceparent, trace, span = new_traceparent()
    client = httpclient.InferenceServerClient(cluster.endpoints["http"], network_timeout=RPC_TIMEOUT)
    try:
        x = mlp_data(np.random.default_rng(2), 2)
        inp = httpclient.InferInput("features", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer("ranking_mlp", [inp], headers={"traceparent": traceparent})
    finally:
        client.close()
    assert result.get_response()["parameters"]["fulcrum.trace_id"] == trace
    check_linked(wait_for_spans(cluster.spans_file, trace, 5), client_span=span)


def test_a_request_without_traceparent_starts_a_trace(cluster):
    client = cluster.client()
    try:
        result = infer_mlp(client, mlp_data(np.random.default_rng(3), 1))
        # A malformed traceparent (upper-case hex) is ignored as the specification says.
        bad = "00-" + secrets.token_hex(16).upper() + "-" + secrets.token_hex(8) + "-01"
        result_bad = infer_mlp(client, mlp_data(np.random.default_rng(4), 1), headers={"traceparent": bad})
    finally:
        client.close()
    for r in (result, result_bad):
        kind, trace = response_parameters(r)["fulcrum.trace_id"]
        assert kind == "string_param" and len(trace) == 32 and int(trace, 16) != 0
        check_linked(wait_for_spans(cluster.spans_file, trace, 5), client_span=None)
    assert response_parameters(result_bad)["fulcrum.trace_id"][1] != bad.split("-")[1].lower()


def test_unsampled_traces_propagate_but_are_not_recorded(cluster):
    traceparent, trace, _ = new_traceparent(sampled=False)
    client = cluster.client()
    try:
        result = infer_mlp(client, mlp_data(np.random.default_rng(5), 1), headers={"traceparent": traceparent})
        # A sampled request after it, so the file has certainly caught up when we look.
        sampled, sampled_trace, _ = new_traceparent()
        infer_mlp(client, mlp_data(np.random.default_rng(6), 1), headers={"traceparent": sampled})
    finally:
        client.close()
    assert response_parameters(result)["fulcrum.trace_id"] == ("string_param", trace)
    wait_for_spans(cluster.spans_file, sampled_trace, 5)
    assert spans_of(cluster.spans_file, trace) == []


class _Collector(BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).bodies.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_standalone_worker_exports_otlp_and_logs_json(tmp_path):
    repo = make_repository(tmp_path / "repo")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    address_file = tmp_path / "worker.json"
    stderr_path = tmp_path / "worker.stderr"
    with open(stderr_path, "wb") as err:
        worker = subprocess.Popen(
            [binary("fulcrum-worker"), "--model-repository", str(repo), "--port", "0", "--threads", "1",
             "--address-file", str(address_file), "--otlp-endpoint", endpoint, "--log-format", "json"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        assert wait_until(lambda: address_file.exists() and address_file.stat().st_size > 0, timeout=60), stderr_path.read_text()
        address = json.loads(address_file.read_text())["grpc"]
        import tritonclient.grpc as grpcclient
        client = grpcclient.InferenceServerClient(address)
        traceparent, trace, span = new_traceparent()
        try:
            x = mlp_data(np.random.default_rng(7), 2)
            client.infer("ranking_mlp", [tensor("features", x)], headers={"traceparent": traceparent},
                         client_timeout=RPC_TIMEOUT)
        finally:
            client.close()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, stderr_path.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
        server.shutdown()

    spans = []
    for path, content_type, body in _Collector.bodies:
        assert path == "/v1/traces" and content_type == "application/json"
        payload = json.loads(body)
        for resource in payload["resourceSpans"]:
            attrs = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}
            assert attrs["service.name"] == {"stringValue": "fulcrum-worker"}
            for scope in resource["scopeSpans"]:
                spans += scope["spans"]
    mine = [s for s in spans if s["traceId"] == trace]
    root = [s for s in mine if s["kind"] == 2]
    assert len(root) == 1 and root[0]["parentSpanId"] == span, mine
    assert sorted(s["name"] for s in mine if s.get("parentSpanId") == root[0]["spanId"]) == ["compute", "queue"], mine
    assert int(root[0]["endTimeUnixNano"]) >= int(root[0]["startTimeUnixNano"])

    lines = [line for line in stderr_path.read_text().splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "label", "message"} <= set(r) for r in records), records[:3]
    assert any("serving the inference protocol" in r["message"] for r in records), records
