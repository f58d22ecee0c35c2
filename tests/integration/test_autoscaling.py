"""The balancer's autoscaler and process scaler through `fulcrum up`, with emulated workers of a
known service curve (40 ms + 20 ms per sample, max batch 8: one worker's best is 40 samples/s).

An open-loop load of 75 requests/s needs 3 workers at the planner's 80 % line (a low rate, so
that a debug build on two cores is nowhere near its own limits; the 300 ms latency target is set
so that utilisation, not the target, decides: 3 workers predict a p99 of 80 + 160 = 240 ms,
docs/capacity.md); the pool must
grow from 1 while the load runs, shrink back (drained, one at a time) when it drops, and no
request may fail on the way. `fulcrum plan` and `fulcrum status` must explain the sizing."""

from __future__ import annotations

import json

import pytest

from conftest import make_repository, run_cli, running_cluster, wait_until

EMULATED_CONFIG = """
name: "ranking_mlp"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "features" data_type: TYPE_FP32 dims: [ 256 ] } ]
output [ { name: "score" data_type: TYPE_FP32 dims: [ 1 ] } ]
dynamic_batching { max_queue_delay_microseconds: 1000 }
parameters { key: "fulcrum.latency_target_ms" value: { string_value: "300" } }
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    (repo / "ranking_mlp" / "config.pbtxt").write_text(EMULATED_CONFIG)
    extra = ("--max-workers", "4", "--emulate", "40+20",
             "--balancer-arg=--scale-down-stabilisation-s=4", "--balancer-arg=--scale-up-settle-s=2")
    with running_cluster(tmp_path_factory, "autoscaling", model_repository=repo, workers=1,
                         extra_args=extra) as c:
        yield c


def test_pool_grows_and_shrinks_under_load_without_failures(cluster, tmp_path):
    status = cluster.status()
    assert [w["backend"] for w in status["workers"]] == ["emulated"], status["workers"]
    assert status["scaling"]["scaler"] == "process", status["scaling"]
    out = tmp_path / "load"
    # 4 s gentle, 16 s at 75/s (about 2.3 workers of work), 22 s gentle again.
    r = run_cli("loadtest", "ranking_mlp", "--url", cluster.grpc_url, "--balancer", cluster.balancer_url,
                "--schedule", "5@4,75@16,5@22", "--warmup", "0", "--poisson", "--connections", "2",
                "--timeout-ms", "20000", "--output", str(out), timeout=120)
    assert r.returncode == 0, f"fulcrum loadtest failed:\n{r.stdout}\n{r.stderr}"
    result = json.loads((out / "result.json").read_text())
    assert result["errors"] == 0 and result["dropped"] == 0, (result["errors_by_code"], result["dropped"])
    pool = result["pool"]
    sizes = [p["workers"] for p in pool]
    assert max(sizes) >= 3, f"the pool never grew to the planner's size: {sizes}"
    grown_at = next(p["t"] for p in pool if p["workers"] >= 3)
    assert 4 <= grown_at <= 4 + 8, f"grew at {grown_at} s (load stepped up at 4 s): {sizes}"
    assert sizes[-1] < max(sizes), f"the pool did not shrink after the load dropped: {sizes}"

    # Back to the minimum after the stabilisation windows; every change has a reason.
    assert wait_until(lambda: len(cluster.status()["workers"]) == 1, timeout=40, interval=0.5), (
        cluster.status()["scaling"])
    scaling = cluster.status()["scaling"]
    reasons = [c["reason"] for c in scaling["changes"]]
    assert any(r.startswith("scale up") for r in reasons), reasons
    assert any(r.startswith("scale down") for r in reasons), reasons


def test_plan_and_status_explain_the_sizing(cluster, tmp_path):
    status = cluster.status()
    model = next(m for m in status["models"] if m["name"] == "ranking_mlp")
    # The fitted curve is the emulated one (40 ms + 20 ms per sample), within scheduling noise.
    assert model["curve_samples"] > 0
    assert 45 <= model["fixed_ms"] + model["per_sample_ms"] <= 100, model
    assert model["max_batch_size"] == 8 and model["latency_target_ms"] == 300

    profile = tmp_path / "ranking.json"
    r = run_cli("plan", "ranking_mlp", "--balancer", cluster.balancer_url, "--rate", "5,75,500",
                "--save-profile", str(profile))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line[:1].isdigit()}
    assert set(rows) == {"5", "75", "500"}, r.stdout
    assert rows["5"][1] == "1", r.stdout
    assert 2 <= int(rows["75"][1]) <= 4, r.stdout

    # The same table from the saved profile, without the cluster.
    again = run_cli("plan", "ranking_mlp", "--profile", str(profile), "--rate", "5,75,500")
    assert again.returncode == 0, again.stderr
    assert [l for l in again.stdout.splitlines() if l[:1].isdigit()] == [l for l in lines if l[:1].isdigit()]

    unknown = run_cli("plan", "nope", "--balancer", cluster.balancer_url)
    assert unknown.returncode != 0 and "no capacity data for 'nope'" in unknown.stderr, unknown.stderr
