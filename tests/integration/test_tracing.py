"""Distributed tracing and structured logs.

A `fulcrum up --trace-file` cluster records the spans of its frontend and worker in one JSON-lines
file. A client's W3C `traceparent` (gRPC metadata or HTTP header, sent with tritonclient's own
`headers=`) must come out as one linked trace: client span → frontend server span → frontend's
client span to the worker → worker server span → queue and compute spans. With
`--otlp-endpoint` the same trace reaches an OpenTelemetry collector through swift-otel, over
OTLP/HTTP with protobuf and over OTLP/gRPC (receivers in this test that decode the real OTLP
messages with opentelemetry-proto), and `--log-format json` writes one JSON object per log line."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.http as httpclient
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

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


class _HTTPCollector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: decodes each POSTed ExportTraceServiceRequest with OpenTelemetry's own
    protobuf classes (opentelemetry-proto from PyPI) and answers as a collector does."""
    requests: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        message = trace_service_pb2.ExportTraceServiceRequest()
        message.ParseFromString(body)
        type(self).requests.append((self.path, self.headers.get("Content-Type"), message))
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


class _GRPCCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC receiver (opentelemetry.proto.collector.trace.v1.TraceService/Export)."""

    def __init__(self):
        self.requests = []

    def Export(self, request, context):  # noqa: N802 (the service's method name)
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def otlp_spans(requests) -> list[dict]:
    """Every span of the decoded export requests, flattened into the JSON-lines form that
    check_linked reads (hex ids, kind names, typed attribute values, service from the resource)."""
    kinds = {1: "internal", 2: "server", 3: "client"}
    spans = []
    for request in requests:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = {}
                    for a in span.attributes:
                        kind = a.value.WhichOneof("value")
                        attributes[a.key] = getattr(a.value, kind)
                    record = {"service": resource["service.name"], "instance": resource.get("service.instance.id"),
                              "traceId": span.trace_id.hex(), "spanId": span.span_id.hex(), "name": span.name,
                              "kind": kinds.get(span.kind, str(span.kind)), "attributes": attributes,
                              "startTimeUnixNano": span.start_time_unix_nano, "endTimeUnixNano": span.end_time_unix_nano}
                    if span.parent_span_id:
                        record["parentSpanId"] = span.parent_span_id.hex()
                    spans.append(record)
    return spans


def test_a_cluster_exports_linked_spans_over_otlp_http_protobuf(tmp_path_factory):
    """`fulcrum up --otlp-endpoint` (OTLP/HTTP with protobuf, the default): the frontend's and the
    worker's spans of one prediction reach the collector as one linked trace."""
    _HTTPCollector.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HTTPCollector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    try:
        with running_cluster(tmp_path_factory, "otlp", model_repository=repo, workers=1,
                             extra_args=("--otlp-endpoint", endpoint)) as c:
            traceparent, trace, span = new_traceparent()
            client = c.client()
            try:
                result = infer_mlp(client, mlp_data(np.random.default_rng(8), 2), headers={"traceparent": traceparent})
            finally:
                client.close()
            assert response_parameters(result)["fulcrum.trace_id"] == ("string_param", trace)
            # The batch processor exports every few seconds; wait for both services' spans.
            wait_until(lambda: len([s for s in otlp_spans([r for _, _, r in _HTTPCollector.requests])
                                    if s["traceId"] == trace]) >= 5, timeout=30)
    finally:
        server.shutdown()
    assert all(path == "/v1/traces" and content_type == "application/x-protobuf"
               for path, content_type, _ in _HTTPCollector.requests), [r[:2] for r in _HTTPCollector.requests]
    spans = [s for s in otlp_spans([r for _, _, r in _HTTPCollector.requests]) if s["traceId"] == trace]
    check_linked(spans, client_span=span)
    assert {s["service"] for s in spans} == {"fulcrum-frontend", "fulcrum-worker"}
    assert all(s["instance"] for s in spans), spans


def test_standalone_worker_exports_otlp_grpc_and_logs_json(tmp_path):
    """A standalone worker with `--otlp-protocol grpc` sends its spans to an OTLP/gRPC collector;
    `--log-format json` writes one JSON object per log line."""
    repo = make_repository(tmp_path / "repo")
    collector = _GRPCCollector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    address_file = tmp_path / "worker.json"
    stderr_path = tmp_path / "worker.stderr"
    with open(stderr_path, "wb") as err:
        worker = subprocess.Popen(
            [binary("fulcrum-worker"), "--model-repository", str(repo), "--port", "0", "--threads", "1",
             "--address-file", str(address_file), "--otlp-endpoint", f"http://127.0.0.1:{port}",
             "--otlp-protocol", "grpc", "--log-format", "json"],
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
        # SIGTERM drains, and the span processor exports what it holds before the worker exits.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, stderr_path.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
        server.stop(grace=None)

    mine = [s for s in otlp_spans(collector.requests) if s["traceId"] == trace]
    assert all(s["service"] == "fulcrum-worker" for s in mine), mine
    root = [s for s in mine if s["kind"] == "server"]
    assert len(root) == 1 and root[0]["parentSpanId"] == span, mine
    assert sorted(s["name"] for s in mine if s.get("parentSpanId") == root[0]["spanId"]) == ["compute", "queue"], mine
    assert root[0]["endTimeUnixNano"] >= root[0]["startTimeUnixNano"]

    lines = [line for line in stderr_path.read_text().splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "label", "message"} <= set(r) for r in records), records[:3]
    assert any("serving the inference protocol" in r["message"] for r in records), records


def test_trace_file_and_otlp_endpoint_together_are_refused(tmp_path):
    result = subprocess.run(
        [binary("fulcrum-worker"), "--model-repository", str(tmp_path), "--trace-file", str(tmp_path / "spans.jsonl"),
         "--otlp-endpoint", "http://127.0.0.1:4318/v1/traces"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--trace-file and --otlp-endpoint cannot be combined" in result.stderr, result.stderr
