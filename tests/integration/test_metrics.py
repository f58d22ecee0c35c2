"""Prometheus metrics: every process of a `fulcrum up --metrics` cluster serves /metrics, and a
real Prometheus server (Debian's `prometheus`, on loopback) scrapes all of them; the series it
stores add up to the predictions sent."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

from conftest import infer_mlp, make_repository, mlp_data, running_cluster, wait_until

PREDICTIONS = 25


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.headers.get("Content-Type", ""), r.read().decode()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "metrics", model_repository=repo, workers=1,
                         extra_args=("--metrics",)) as c:
        client = c.client()
        try:
            rng = np.random.default_rng(3)
            for _ in range(PREDICTIONS):
                infer_mlp(client, mlp_data(rng, 4))
        finally:
            client.close()
        yield c


def metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{") or line.startswith(name + " ")]


def test_every_process_serves_metrics(cluster):
    endpoints = cluster.endpoints["metrics"]
    assert set(endpoints) >= {"balancer", "frontend"} and len(endpoints) == 3, endpoints
    worker = next(k for k in endpoints if k not in ("balancer", "frontend"))
    texts = {}
    for name, address in endpoints.items():
        content_type, texts[name] = get(f"http://{address}/metrics")
        assert content_type.startswith("text/plain; version=0.0.4"), (name, content_type)
    frontend, balancer, worker_text = texts["frontend"], texts["balancer"], texts[worker]
    ok = metric_lines(frontend, "fulcrum_frontend_requests_total")
    assert any('code="OK"' in l and 'model="ranking_mlp"' in l and float(l.split()[-1]) == PREDICTIONS for l in ok), ok
    for hop in ("frontend", "network", "queue", "compute"):
        assert any(f'hop="{hop}"' in l for l in metric_lines(frontend, "fulcrum_hop_seconds_count")), hop
    assert any(float(l.split()[-1]) == PREDICTIONS for l in metric_lines(worker_text, "fulcrum_worker_requests_total")), worker_text
    assert metric_lines(worker_text, "fulcrum_worker_batch_size_count"), "no batch sizes"
    assert any('state="ready"' in l and float(l.split()[-1]) == 1 for l in metric_lines(balancer, "fulcrum_pool_workers")), balancer
    assert metric_lines(balancer, "fulcrum_desired_workers"), balancer
    # The worker's metrics address is in the balancer's pool too.
    status = cluster.status()
    assert [w["metrics"] for w in status["workers"]] == [endpoints[worker]], status["workers"]


def test_prometheus_scrapes_the_cluster(cluster, tmp_path):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("Debian's `prometheus` is not installed (scripts/bootstrap installs it)")
    endpoints = cluster.endpoints["metrics"]
    jobs = "\n".join(
        f"  - job_name: {name}\n    static_configs:\n      - targets: ['{address}']"
        for name, address in sorted(endpoints.items()))
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}\n")
    port = free_port()
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def query(expr: str) -> list:
        _, body = get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def ready() -> bool:
        try:
            return get(f"{base}/-/ready")[1].strip() != ""
        except OSError:
            return False

    try:
        assert wait_until(ready, timeout=30, interval=0.3), (tmp_path / "prometheus.log").read_text()[-2000:]
        assert wait_until(lambda: len([r for r in query("up") if r["value"][1] == "1"]) == len(endpoints),
                          timeout=30, interval=0.5), query("up")
        total = query('sum(fulcrum_frontend_requests_total{code="OK", model="ranking_mlp"})')
        assert total and float(total[0]["value"][1]) == PREDICTIONS, total
        worker = query('sum(fulcrum_worker_requests_total{code="OK"})')
        assert worker and float(worker[0]["value"][1]) == PREDICTIONS, worker
        ready_workers = query('fulcrum_pool_workers{state="ready"}')
        assert ready_workers and float(ready_workers[0]["value"][1]) == 1, ready_workers
        p99 = query('histogram_quantile(0.99, sum by (le) (fulcrum_frontend_request_seconds_bucket))')
        assert p99 and 0 < float(p99[0]["value"][1]) < 10, p99
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
