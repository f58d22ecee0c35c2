"""The emulated backend, a rehearsal tool: `fulcrum up --backend emulated --profile FILE` runs workers
whose batches take the profile's s(b) and return zeros, where FILE is the capacity profile that
`fulcrum plan MODEL --profile-out` saves (measured on a real device) or FIXED_MS+PER_SAMPLE_MS."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np

from conftest import EXAMPLES, RPC_TIMEOUT, binary, cli_env, running_cluster, tensor, wait_until


def test_a_saved_profile_replays_on_emulated_workers(tmp_path_factory, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "ranking_mlp", repo / "ranking_mlp")
    profile = tmp_path / "measured.json"
    # What `fulcrum plan --profile-out` writes (protobuf JSON names), as if measured on a device.
    profile.write_text(json.dumps({"name": "ranking_mlp", "fixedSeconds": 0.03, "perSampleSeconds": 0.01,
                                   "maxBatchSize": 64, "latencyTargetMs": 200, "curveSamples": 40}))
    with running_cluster(tmp_path_factory, "emulated", model_repository=repo, workers=1,
                         extra_args=("--backend", "emulated", "--profile", str(profile))) as cluster:
        worker = cluster.status()["workers"][0]
        assert worker["backend"] == "emulated"
        x = np.ones((4, 256), np.float32)
        result = cluster.client().infer("ranking_mlp", [tensor("features", x)], client_timeout=RPC_TIMEOUT)
        assert np.all(result.as_numpy("score") == 0)  # emulated: zeros of the declared shape
        compute_ms = result.get_response().parameters["fulcrum.compute_us"].int64_param / 1000
        assert 30 + 4 * 10 <= compute_ms < 30 + 4 * 10 + 60, compute_ms
        # The balancer fits the emulated curve back from the worker's batch reports.
        for _ in range(12):
            cluster.client().infer("ranking_mlp", [tensor("features", np.ones((1, 256), np.float32))],
                                   client_timeout=RPC_TIMEOUT)
        saved = tmp_path / "fitted.json"

        def fitted() -> bool:
            r = cluster.cli("plan", "ranking_mlp", "--balancer", cluster.balancer_url, "--rate", "10",
                            "--profile-out", str(saved))
            return r.returncode == 0 and saved.exists() and json.loads(saved.read_text()).get("curveSamples", 0) > 0
        assert wait_until(fitted, timeout=10), "no fitted profile"
        # The frontend's measured network time (round trip minus the worker's time) reaches the plan.
        def measured() -> bool:
            models = {m["name"]: m for m in cluster.status()["models"]}
            return models.get("ranking_mlp", {}).get("network_ms", 0) > 0
        for _ in range(10):
            cluster.client().infer("ranking_mlp", [tensor("features", np.ones((1, 256), np.float32))],
                                   client_timeout=RPC_TIMEOUT)
        assert wait_until(measured, timeout=10), cluster.status()["models"]
        fit = json.loads(saved.read_text())
        assert abs(fit["fixedSeconds"] + fit["perSampleSeconds"] - 0.04) < 0.02, fit


def test_bad_profiles_are_refused_with_the_reason(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "ranking_mlp", repo / "ranking_mlp")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not a profile")
    cases = [
        (["--backend", "emulated"], "needs exactly one of --profile"),
        (["--backend", "emulated", "--profile", str(garbage)], "neither a capacity profile"),
        (["--backend", "emulated", "--profile", str(tmp_path / "missing.json")], "cannot read"),
        (["--profile", str(garbage)], "--profile is for --backend emulated"),
    ]
    for extra, message in cases:
        proc = subprocess.run([binary("fulcrum-worker"), "--model-repository", str(repo), "--port", "0", *extra],
                              capture_output=True, text=True, timeout=30, env=cli_env(), stdin=subprocess.DEVNULL)
        assert proc.returncode != 0 and message in proc.stderr, (extra, proc.stderr)
