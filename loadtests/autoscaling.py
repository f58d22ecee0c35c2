"""The autoscaling benchmark (issue 6): a step in open-loop load against `fulcrum up` with the
process scaler and emulated workers; the pool size, offered load and p99 over time; and the
planner's predicted p99 against the measured one at steady rates.

    .venv/bin/python loadtests/autoscaling.py [--profile 20+4] [--low 50] [--high 500] [--output DIR]

Environment: FULCRUM_BIN_DIR (default .build/release)."""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """name: "ranking_mlp"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ {{ name: "features" data_type: TYPE_FP32 dims: [ 256 ] }} ]
output [ {{ name: "score" data_type: TYPE_FP32 dims: [ 1 ] }} ]
dynamic_batching {{ max_queue_delay_microseconds: 1000 }}
parameters {{ key: "fulcrum.latency_target_ms" value: {{ string_value: "{target}" }} }}
"""


def bin_dir() -> Path:
    path = Path(os.environ.get("FULCRUM_BIN_DIR", ROOT / ".build" / "release"))
    return path if path.is_absolute() else ROOT / path


def fulcrum(*args, **kwargs):
    return subprocess.run([str(bin_dir() / "fulcrum"), *map(str, args)], check=True, capture_output=True, text=True, **kwargs)


class Cluster:
    def __init__(self, repo: Path, work: Path, workers: int, max_workers: int, profile: str, stabilisation: int):
        self.endpoints_file = work / f"endpoints-{workers}-{max_workers}.json"
        self.log = open(work / f"up-{workers}-{max_workers}.log", "w")
        self.process = subprocess.Popen(
            [str(bin_dir() / "fulcrum"), "up", "--model-repository", str(repo), "--workers", str(workers),
             "--max-workers", str(max_workers), "--emulate", profile, "--grpc-port", "0", "--http-port", "0",
             "--balancer-port", "0", "--endpoints-file", str(self.endpoints_file), "--log-level", "notice",
             f"--balancer-arg=--scale-down-stabilisation-s={stabilisation}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while not self.endpoints_file.exists() or self.endpoints_file.stat().st_size == 0:
            if self.process.poll() is not None or time.time() > deadline:
                raise SystemExit(f"fulcrum up failed: see {self.log.name}")
            time.sleep(0.1)
        time.sleep(0.2)
        self.endpoints = json.loads(self.endpoints_file.read_text())

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="20+4", help="emulated service time FIXED_MS+PER_SAMPLE_MS")
    parser.add_argument("--target-ms", type=int, default=50)
    parser.add_argument("--low", type=int, default=50)
    parser.add_argument("--high", type=int, default=500)
    parser.add_argument("--output", type=Path, default=ROOT / "loadtests" / "results" / f"{datetime.date.today()}-autoscaling")
    options = parser.parse_args()
    out = options.output
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fulcrum-autoscaling-"))
    repo = work / "repo"
    shutil.copytree(ROOT / "examples" / "models" / "ranking_mlp", repo / "ranking_mlp")
    (repo / "ranking_mlp" / "config.pbtxt").write_text(CONFIG.format(target=options.target_ms))
    data = {"command": " ".join([sys.argv[0]] + sys.argv[1:]), "profile": options.profile, "target_ms": options.target_ms}

    # 1. The step, with the process scaler between 1 and 10 workers.
    cluster = Cluster(repo, work, 1, 10, options.profile, stabilisation=15)
    try:
        schedule = f"{options.low}@20,{options.high}@60,{options.low}@40"
        fulcrum("loadtest", "ranking_mlp", "--url", cluster.endpoints["grpc"], "--balancer", cluster.endpoints["balancer"],
                "--schedule", schedule, "--warmup", 5, "--poisson", "--connections", 4, "--timeout-ms", 10000,
                "--output", out / "step", timeout=300)
        plan = fulcrum("plan", "ranking_mlp", "--balancer", cluster.endpoints["balancer"],
                       "--rate", f"{options.low},{options.high}", "--save-profile", out / "profile.json").stdout
        status = json.loads(fulcrum("status", "--balancer", cluster.endpoints["balancer"], "--json").stdout)
    finally:
        cluster.stop()
    step = json.loads((out / "step" / "result.json").read_text())
    (out / "plan.txt").write_text(plan)
    planned_high = next(int(line.split()[1]) for line in plan.splitlines() if line.split()[:1] == [str(options.high)])
    pool = step["pool"]
    reached = next((p["t"] for p in pool if p["t"] >= 20 and p["ready"] >= planned_high), None)
    after = [s for s in step["time_series"] if 30 <= s["t"] < 80 and s["ok"]]
    data["step"] = {
        "schedule": schedule, "planned_workers_at_high": planned_high,
        "pool_reached_plan_s_after_step": None if reached is None else round(reached - 20, 1),
        "max_pool": max(p["workers"] for p in pool), "final_pool": pool[-1]["workers"],
        "errors": step["errors"], "errors_by_code": step["errors_by_code"], "dropped": step["dropped"],
        "p99_us_after_first_10s_of_step": max((s["p99_us"] for s in after), default=None),
        "scaling_changes": status["scaling"]["changes"],
    }

    # 2. Planner accuracy: a fixed pool of 3 at three steady rates.
    accuracy = []
    cluster = Cluster(repo, work, 3, 3, options.profile, stabilisation=15)
    try:
        for rate in (round(options.high * 0.2), round(options.high * 0.5), round(options.high * 0.8)):
            name = f"steady-{rate}"
            fulcrum("loadtest", "ranking_mlp", "--url", cluster.endpoints["grpc"], "--rate", rate, "--duration", 25,
                    "--warmup", 5, "--poisson", "--connections", 4, "--output", out / name, timeout=120)
            result = json.loads((out / name / "result.json").read_text())
            predicted = fulcrum("plan", "ranking_mlp", "--balancer", cluster.endpoints["balancer"], "--rate", rate,
                                "--workers", 3).stdout
            row = next(line.split() for line in predicted.splitlines() if line.split()[:1] == [str(rate)])
            accuracy.append({"rate": rate, "measured_p99_ms": result["latency_us"]["p99"] / 1000,
                             "predicted_p99_ms": float(row[4]) if row[4] != "cannot" else None,
                             "achieved": result["achieved_rate"], "errors": result["errors"]})
    finally:
        cluster.stop()
    data["accuracy_3_workers"] = accuracy
    (out / "data.json").write_text(json.dumps(data, indent=2))
    write_summary(out, data, options)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in data.items() if k != "step"}, indent=2))
    print(json.dumps({k: v for k, v in data["step"].items() if k != "scaling_changes"}, indent=2))


def write_summary(out: Path, data: dict, options):
    s = data["step"]
    lines = [f"# Autoscaling: a step in load with emulated workers ({datetime.date.today()})", "",
             f"Command: `.venv/bin/python loadtests/autoscaling.py {' '.join(sys.argv[1:])}` (binaries: `{bin_dir()}`).",
             f"`fulcrum up` with the process scaler (1 to 10 workers, scale-down stabilisation 15 s), emulated workers of "
             f"{data['profile']} ms (fixed + per sample), max batch 8, latency target {data['target_ms']} ms. "
             "Everything (generator, frontend, balancer, workers) shares the machine's 2 cores.", "",
             "## The step", "",
             f"Open loop, Poisson, `{s['schedule']}` (requests/s @ seconds). Plots: `step/pool.svg` (pool size), "
             "`step/throughput.svg` (offered and achieved), `step/latency.svg` (p50/p99 per second).", "",
             f"- planner's size at {options.high}/s: **{s['planned_workers_at_high']}** workers (`plan.txt`);",
             f"- READY pool reached it **{s['pool_reached_plan_s_after_step']} s** after the step (target: within 5 s);",
             f"- worst per-second p99 from 10 s after the step to its end: **{(s['p99_us_after_first_10s_of_step'] or 0) / 1000:.1f} ms** "
             f"(target: within {data['target_ms']} ms);",
             f"- pool max {s['max_pool']}, at the end {s['final_pool']}; requests failed: **{s['errors']}** "
             f"({s['errors_by_code']}), dropped by the generator: {s['dropped']}.", "",
             "Scaling decisions (from `fulcrum status --json`):", ""]
    for change in s["scaling_changes"]:
        lines.append(f"- {change['reason']}")
    lines += ["", "## Planner accuracy (3 workers, steady rates)", "",
              "| rate/s | achieved/s | measured p99 ms | predicted p99 ms | error |", "|---:|---:|---:|---:|---:|"]
    for a in data["accuracy_3_workers"]:
        predicted = a["predicted_p99_ms"]
        error = f"{(predicted - a['measured_p99_ms']) / a['measured_p99_ms'] * 100:+.0f}%" if predicted else "-"
        lines.append(f"| {a['rate']} | {a['achieved']:.0f} | {a['measured_p99_ms']:.1f} | {predicted if predicted else '-'} | {error} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
