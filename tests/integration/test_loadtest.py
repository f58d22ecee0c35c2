"""`fulcrum loadtest` against a real 1-worker cluster: a short open-loop run and a closed-loop
run, checking that the report (result.json, summary.md, SVG plots) exists and is consistent."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from conftest import make_repository, run_cli, running_cluster

LOADTEST_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "loadtest", model_repository=repo, workers=1) as c:
        yield c


def loadtest(*args: str):
    r = run_cli("loadtest", *args, timeout=LOADTEST_TIMEOUT)
    assert r.returncode == 0, f"fulcrum loadtest failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def check_report(out, svgs):
    result = json.loads((out / "result.json").read_text())
    assert (out / "summary.md").read_text().startswith("# Load test: ranking_mlp")
    for name in svgs:
        root = ET.fromstring((out / name).read_text())  # well-formed XML
        assert root.tag.endswith("svg"), name
    # Counts add up.
    assert result["requests"] == result["ok"] + result["errors"]
    assert result["errors"] == sum(result["errors_by_code"].values())
    series = result["time_series"]
    assert sum(s["ok"] + s["errors"] for s in series) == result["requests"] + result["warmup"]["completed"]
    assert sum(s["dropped"] for s in series) == result["dropped"] + result["warmup"]["dropped"]
    assert result["latency_us"]["count"] == result["ok"]
    # Percentiles are ordered.
    lat = result["latency_us"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    for s in series:
        assert s["p50_us"] <= s["p99_us"]
    assert result["generator"]["cpu_us_per_request"] > 0
    assert "loadtest" in result["command"]
    return result


def test_open_loop_report(cluster, tmp_path):
    out = tmp_path / "open"
    r = loadtest("ranking_mlp", "--url", cluster.grpc_url, "--rate", "100", "--duration", "3",
                 "--warmup", "0.5", "--connections", "2", "--balancer", cluster.balancer_url,
                 "--output", str(out))
    assert "\r" not in r.stderr, "no progress line when stderr is not a terminal"
    result = check_report(out, ["latency.svg", "throughput.svg", "latency-vs-load.svg", "pool.svg"])
    assert result["mode"] == "open"
    assert result["errors"] == 0, result["errors_by_code"]
    assert result["dropped"] == 0
    # 100/s for 2.5 measured seconds: evenly spaced arrivals, all answered.
    assert result["requests"] == 250
    assert sum(s["offered"] for s in result["time_series"]) == 300
    for part in ("frontend", "network", "queue", "compute"):
        assert result["breakdown_us"][part]["count"] == result["ok"], part
    assert result["pool"] and all(p["workers"] == 1 for p in result["pool"])


def test_closed_loop_report(cluster, tmp_path):
    out = tmp_path / "closed"
    loadtest("ranking_mlp", "--url", cluster.grpc_url, "--concurrency", "4", "--duration", "2",
             "--warmup", "0.5", "--batch", "4", "--output", str(out))
    result = check_report(out, ["latency.svg", "throughput.svg"])
    assert result["mode"] == "closed" and result["concurrency"] == 4 and result["batch"] == 4
    assert result["ok"] > 0 and result["errors"] == 0
    assert not (out / "latency-vs-load.svg").exists()


def test_unknown_model_fails_with_a_clear_message(cluster, tmp_path):
    r = run_cli("loadtest", "no_such_model", "--url", cluster.grpc_url, "--rate", "10",
                "--duration", "1", "--warmup", "0", "--output", str(tmp_path / "x"),
                timeout=LOADTEST_TIMEOUT)
    assert r.returncode == 1
    assert "no_such_model" in r.stderr and "metadata" in r.stderr


def test_bad_options_are_refused(cluster, tmp_path):
    r = run_cli("loadtest", "ranking_mlp", "--url", cluster.grpc_url, "--rate", "10",
                "--concurrency", "2", "--output", str(tmp_path / "x"))
    assert r.returncode != 0 and "exactly one of" in r.stderr
    r = run_cli("loadtest", "ranking_mlp", "--url", cluster.grpc_url, "--schedule", "100@0",
                "--output", str(tmp_path / "x"))
    assert r.returncode != 0 and "SECONDS > 0" in r.stderr


def test_requests_from_a_perf_analyzer_input_file(cluster, tmp_path):
    """`--input-data` takes perf_analyzer's JSON: the requests sent are those of the file (the
    worker's statistics count the samples), and a file that does not fit the model is refused
    before anything is sent, naming the entry and input."""
    data = tmp_path / "inputs.json"
    data.write_text(json.dumps({"data": [
        {"INPUT0": list(range(16)), "INPUT1": {"content": [1] * 16, "shape": [16]}},
        {"INPUT0": [7] * 16, "INPUT1": [2] * 16},
    ]}))
    out = tmp_path / "file"
    loadtest("simple", "--url", cluster.grpc_url, "--concurrency", "2", "--duration", "2", "--warmup", "0",
             "--batch", "3", "--input-data", str(data), "--output", str(out))
    result = json.loads((out / "result.json").read_text())
    assert result["ok"] > 0 and result["errors"] == 0, result["errors_by_code"]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": [{"INPUT0": [1, 2, 3], "INPUT1": [1] * 16}]}))
    r = run_cli("loadtest", "simple", "--url", cluster.grpc_url, "--rate", "10", "--duration", "2",
                "--input-data", str(bad), "--output", str(tmp_path / "bad"), timeout=LOADTEST_TIMEOUT)
    assert r.returncode != 0
    assert "entry 0, input 'INPUT0': 3 values, but shape [16] needs 16" in r.stderr, r.stderr
