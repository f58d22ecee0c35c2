"""Planner accuracy for one real CPU worker (issue 6): `fulcrum up` with one worker running
ranking_mlp on the CPU backend (dynamic batching), open-loop Poisson load at three steady rates;
for each, the planner's predicted p99 for a pool of 1 (`fulcrum plan --workers 1`, from the
service-time curve the worker reported and the network time the frontend measured) against the
measured p99 — end to end, and of the part the planner models (queue + compute + network, from
the response breakdown).

    .venv/bin/python loadtests/planner_accuracy.py [--rates 200,600,1200] [--seconds 20] [--output DIR]

Environment: FULCRUM_BIN_DIR (default .build/release). Writes data.json and summary.md."""

import argparse
import datetime
import json
import shutil
import sys
import tempfile
from pathlib import Path

from autoscaling import ROOT, bin_dir, fulcrum
import signal
import subprocess
import time

CONFIG = """name: "ranking_mlp"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "features" data_type: TYPE_FP32 dims: [ 256 ] } ]
output [ { name: "score" data_type: TYPE_FP32 dims: [ 1 ] } ]
dynamic_batching { max_queue_delay_microseconds: 500 }
parameters { key: "fulcrum.latency_target_ms" value: { string_value: "50" } }
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="200,600,1200")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--output", type=Path, default=ROOT / "loadtests" / "results" / f"{datetime.date.today()}-planner-accuracy")
    options = parser.parse_args()
    out = options.output
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fulcrum-accuracy-"))
    repo = work / "repo"
    shutil.copytree(ROOT / "examples" / "models" / "ranking_mlp", repo / "ranking_mlp")
    (repo / "ranking_mlp" / "config.pbtxt").write_text(CONFIG)
    endpoints = work / "endpoints.json"
    log = open(out / "up.log", "w")
    up = subprocess.Popen([str(bin_dir() / "fulcrum"), "up", "--model-repository", str(repo), "--workers", "1",
                           "--threads-per-worker", "1", "--grpc-port", "0", "--http-port", "0", "--balancer-port", "0",
                           "--endpoints-file", str(endpoints), "--log-level", "notice"], stdout=log, stderr=subprocess.STDOUT)
    rows = []
    try:
        deadline = time.time() + 60
        while not endpoints.exists() or endpoints.stat().st_size == 0:
            if up.poll() is not None or time.time() > deadline:
                raise SystemExit("fulcrum up failed: see up.log")
            time.sleep(0.1)
        time.sleep(0.3)
        e = json.loads(endpoints.read_text())
        for rate in [int(r) for r in options.rates.split(",")]:
            name = f"steady-{rate}"
            fulcrum("loadtest", "ranking_mlp", "--url", e["grpc"], "--rate", rate, "--duration", options.seconds,
                    "--warmup", 5, "--poisson", "--connections", 4, "--output", out / name, timeout=options.seconds + 120)
            result = json.loads((out / name / "result.json").read_text())
            plan = fulcrum("plan", "ranking_mlp", "--balancer", e["balancer"], "--rate", rate, "--workers", 1,
                           "--profile-out", out / f"profile-{rate}.json").stdout
            (out / f"plan-{rate}.txt").write_text(plan)
            row = next(line.split() for line in plan.splitlines() if line.split()[:1] == [str(rate)])
            b = result["breakdown_us"]
            modelled = (b["queue"]["p99"] + b["compute"]["p99"] + b["network"]["p99"]) / 1000
            rows.append({"rate": rate, "achieved": result["achieved_rate"], "errors": result["errors"],
                         "measured_p99_ms": result["latency_us"]["p99"] / 1000,
                         "measured_modelled_p99_ms": modelled,
                         "breakdown_p99_ms": {k: v["p99"] / 1000 for k, v in b.items()},
                         "predicted_p99_ms": float(row[4]) if row[4] != "cannot" else None,
                         "plan_header": plan.splitlines()[0]})
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    data = {"command": " ".join([sys.argv[0]] + sys.argv[1:]), "rows": rows}
    (out / "data.json").write_text(json.dumps(data, indent=2))
    lines = [f"# Planner accuracy: one real CPU worker serving ranking_mlp ({datetime.date.today()})", "",
             f"Command: `.venv/bin/python loadtests/planner_accuracy.py {' '.join(sys.argv[1:])}` (binaries: `{bin_dir()}`).",
             "`fulcrum up --workers 1 --threads-per-worker 1`, CPU backend, dynamic batching (max batch 64, 0.5 ms queue "
             "delay), open-loop Poisson load from `fulcrum loadtest` on the same 2 cores.", "",
             "\"modelled\" is the p99 of what the planner models (worker queue + compute + frontend-measured network, each "
             "taken at its own p99 from the response breakdown, so an upper bound); \"end to end\" adds the client, "
             "the client-to-frontend hop and the frontend.", "",
             "| rate/s | achieved/s | predicted p99 ms | modelled p99 ms | error | end-to-end p99 ms | error |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = r["predicted_p99_ms"]
        def err(m):
            return f"{(p - m) / m * 100:+.0f}%" if p else "-"
        lines.append(f"| {r['rate']} | {r['achieved']:.0f} | {p if p else '-'} | {r['measured_modelled_p99_ms']:.2f} | "
                     f"{err(r['measured_modelled_p99_ms'])} | {r['measured_p99_ms']:.2f} | {err(r['measured_p99_ms'])} |")
    lines += ["", "Plan header at each rate:", ""] + [f"- {r['rate']}/s: `{r['plan_header']}`" for r in rows]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
