"""The dynamic-batching benchmark (issue 5); see loadtests/batching for what it measures."""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "models"


def bin_dir() -> Path:
    path = Path(os.environ.get("FULCRUM_BIN_DIR", ROOT / ".build" / "release"))
    return path if path.is_absolute() else ROOT / path


def make_repository(base: Path, model: str, batching: str, extra: str = "", tag: str = "") -> Path:
    """A one-model repository whose config has dynamic batching removed ("off"), as shipped
    ("on", with `dynamic_batching {}` added when the example has none) or `extra` appended."""
    repo = base / f"{model}-{batching}{tag}"
    shutil.copytree(EXAMPLES / model, repo / model)
    config_path = repo / model / "config.pbtxt"
    config = config_path.read_text()
    config = re.sub(r"dynamic_batching\s*\{[^}]*\}\s*", "", config)
    if batching == "on":
        delay = "max_queue_delay_microseconds: 2000" if model == "wide_mlp" else ""
        config += f"dynamic_batching {{\n  {delay}\n{extra}}}\n"
    elif batching == "adaptive":
        config += extra
    config_path.write_text(config)
    return repo


class Cluster:
    """`fulcrum up` with one worker on free ports; stops with SIGTERM."""

    def __init__(self, repository: Path, work: Path, threads: int = 1, emulate: str | None = None):
        address_file = work / f"cluster-{repository.name}.json"
        self.log = open(work / f"cluster-{repository.name}.log", "w")
        self.process = subprocess.Popen(
            [str(bin_dir() / "fulcrum"), "up", "--model-repository", str(repository), "--workers", "1",
             "--threads-per-worker", str(threads), "--grpc-port", "0", "--http-port", "0", "--balancer-port", "0",
             "--endpoints-file", str(address_file), "--log-level", "warning"]
            + (["--emulate", emulate] if emulate else []),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while not address_file.exists() or address_file.stat().st_size == 0:
            if self.process.poll() is not None or time.time() > deadline:
                raise SystemExit(f"fulcrum up failed; see {self.log.name}")
            time.sleep(0.1)
        time.sleep(0.2)
        self.endpoints = json.loads(address_file.read_text())
        self.worker_pid = self.endpoints["workers"][0]["pid"]

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def loadtest(cluster: Cluster, model: str, output: Path, args: list) -> dict:
    command = [str(bin_dir() / "fulcrum"), "loadtest", model, "--url", cluster.endpoints["grpc"],
               "--connections", "2", "--output", str(output)] + [str(a) for a in args]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads((output / "result.json").read_text())


class Sampler(threading.Thread):
    """Every second: the worker's RSS and, from ModelStatistics, the executions and samples
    since the previous second (so the mean batch size the batcher formed)."""

    def __init__(self, cluster: Cluster, model: str):
        super().__init__(daemon=True)
        import tritonclient.grpc as grpcclient
        self.client = grpcclient.InferenceServerClient(cluster.endpoints["grpc"])
        self.cluster, self.model = cluster, model
        self.samples, self.stopped = [], threading.Event()

    def counts(self):
        stats = self.client.get_inference_statistics(self.model, as_json=True)["model_stats"]
        return (sum(int(s.get("execution_count", 0)) for s in stats),
                sum(int(s.get("inference_count", 0)) for s in stats))

    def run(self):
        start = time.time()
        previous = self.counts()
        while not self.stopped.wait(1.0):
            executions, inferences = self.counts()
            d_exec, d_inf = executions - previous[0], inferences - previous[1]
            previous = (executions, inferences)
            self.samples.append({"t": round(time.time() - start, 1), "rss_mib": round(rss_mib(self.cluster.worker_pid), 1),
                                 "executions": d_exec, "samples": d_inf,
                                 "mean_batch": round(d_inf / d_exec, 2) if d_exec else 0})

    def stop(self):
        self.stopped.set()
        self.join()
        self.client.close()


def ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds of each run (after 5 s warm-up)")
    parser.add_argument("--output", type=Path, default=ROOT / "loadtests" / "results" / f"{datetime.date.today()}-batching")
    options = parser.parse_args()
    if not (bin_dir() / "fulcrum").exists():
        raise SystemExit(f"{bin_dir()}/fulcrum is missing: swift build -c release (or set FULCRUM_BIN_DIR)")
    out = options.output
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fulcrum-batching-"))
    duration = options.seconds + 5
    data = {"command": " ".join([sys.argv[0]] + sys.argv[1:]), "bin_dir": str(bin_dir()), "runs": {}}

    # 1. Off vs on, 64 in flight.
    for model in ("wide_mlp", "ranking_mlp"):
        for batching in ("off", "on"):
            repo = make_repository(work, model, batching)
            cluster = Cluster(repo, work)
            try:
                sampler = Sampler(cluster, model)
                sampler.start()
                result = loadtest(cluster, model, out / f"{model}-{batching}",
                                  ["--concurrency", 64, "--duration", duration, "--warmup", 5])
                sampler.stop()
            finally:
                cluster.stop()
            measured = [s for s in sampler.samples if s["t"] > 5]
            data["runs"][f"{model}-{batching}"] = {
                "throughput": result["achieved_rate"], "p50_us": result["latency_us"]["p50"],
                "p99_us": result["latency_us"]["p99"], "errors": result["errors"],
                "mean_batch": round(sum(s["samples"] for s in measured) / max(1, sum(s["executions"] for s in measured)), 2),
            }
            print(f"{model} batching {batching}: {data['runs'][f'{model}-{batching}']}", flush=True)

    # 2. Overload at 3x the sustained rate, with a latency target and a bounded queue. The worker
    # must be the bottleneck, not the RPC path: on this 2-core machine the frontend and the
    # generator saturate near 1k requests/s, so wide_mlp's 3x would overload them, not the
    # worker's queue. An emulated device (20 ms + 5 ms per sample, max batch 8: at best 133
    # samples/s) puts 3x its rate well under that ceiling.
    target_ms, delay_us, profile = 100, 2000, "20+5"
    queue = 8
    config = (f'name: "ranking_mlp"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
              f'input [ {{ name: "features" data_type: TYPE_FP32 dims: [ 256 ] }} ]\n'
              f'output [ {{ name: "score" data_type: TYPE_FP32 dims: [ 1 ] }} ]\n'
              f'dynamic_batching {{ max_queue_delay_microseconds: {delay_us} default_queue_policy {{ max_queue_size: {queue} }} }}\n'
              f'parameters {{ key: "fulcrum.batching" value: {{ string_value: "adaptive" }} }}\n'
              f'parameters {{ key: "fulcrum.latency_target_ms" value: {{ string_value: "{target_ms}" }} }}\n')
    repo = make_repository(work, "ranking_mlp", "off", tag="-overload")
    (repo / "ranking_mlp" / "config.pbtxt").write_text(config)
    cluster = Cluster(repo, work, emulate=profile)
    try:
        sustain = loadtest(cluster, "ranking_mlp", out / "emulated-sustained", ["--concurrency", 16, "--duration", 15, "--warmup", 5])
        sustained = sustain["achieved_rate"]
        sampler = Sampler(cluster, "ranking_mlp")
        sampler.start()
        overload_rate = round(3 * sustained)
        result = loadtest(cluster, "ranking_mlp", out / "emulated-overload",
                          ["--rate", overload_rate, "--duration", duration + 10, "--warmup", 5, "--poisson",
                           "--max-in-flight", 4096])
        sampler.stop()
    finally:
        cluster.stop()
    rss = [s["rss_mib"] for s in sampler.samples if s["t"] > 5]
    data["runs"]["overload"] = {
        "profile": profile, "sustained": sustained,
        "offered": overload_rate, "accepted_per_s": result["achieved_rate"], "p99_us": result["latency_us"]["p99"],
        "p50_us": result["latency_us"]["p50"], "errors_by_code": result["errors_by_code"],
        "error_latency_us": result.get("error_latency_us"), "queue": queue, "target_ms": target_ms,
        "rss_mib_first": rss[0] if rss else None, "rss_mib_last": rss[-1] if rss else None,
        "rss_mib_max": max(rss) if rss else None, "samples": sampler.samples,
    }
    print(f"overload: {json.dumps({k: v for k, v in data['runs']['overload'].items() if k != 'samples'})}", flush=True)

    # wide_mlp's own sustained rate sets the adaptive step below.
    sustained = data["runs"]["wide_mlp-on"]["throughput"]
    target_ms = 20
    adaptive = (f'parameters {{ key: "fulcrum.batching" value: {{ string_value: "adaptive" }} }}\n'
                f'parameters {{ key: "fulcrum.latency_target_ms" value: {{ string_value: "{target_ms}" }} }}\n')

    # 3. Adaptive batching after a step: 20 % of the sustained rate, then 70 %.
    repo = make_repository(work, "wide_mlp", "adaptive",
                           f"dynamic_batching {{ max_queue_delay_microseconds: {delay_us} }}\n" + adaptive)
    cluster = Cluster(repo, work)
    low, high = round(0.2 * sustained), round(0.7 * sustained)
    try:
        sampler = Sampler(cluster, "wide_mlp")
        sampler.start()
        result = loadtest(cluster, "wide_mlp", out / "wide_mlp-adaptive-step",
                          ["--schedule", f"{low}@15,{high}@30", "--warmup", 3, "--poisson"])
        sampler.stop()
    finally:
        cluster.stop()
    data["runs"]["wide_mlp-adaptive-step"] = {
        "low": low, "high": high, "target_ms": target_ms, "p99_us": result["latency_us"]["p99"],
        "errors": result["errors"], "samples": sampler.samples,
        "latency_per_second": [{"t": s["t"], "p99_us": s["p99_us"], "ok": s["ok"]} for s in result["time_series"]],
    }
    (out / "data.json").write_text(json.dumps(data, indent=2))
    write_summary(out, data)
    shutil.rmtree(work, ignore_errors=True)
    print(f"report: {out / 'summary.md'}")


def write_summary(out: Path, data: dict):
    runs = data["runs"]
    lines = [f"# Dynamic batching through the cluster ({datetime.date.today()})", "",
             f"Command: `{data['command']}` (binaries: `{data['bin_dir']}`). One `fulcrum up` cluster per run "
             "(balancer, frontend, one worker with 1 compute thread), `fulcrum loadtest` from the same 2-core "
             "machine (generator, frontend and worker share the cores). Batch-1 requests; 5 s warm-up.", "",
             "## Batching off vs on, 64 requests in flight", "",
             "| model | batching | throughput (req/s) | p50 (ms) | p99 (ms) | mean batch | errors |", "|---|---|---:|---:|---:|---:|---:|"]
    for model in ("wide_mlp", "ranking_mlp"):
        for batching in ("off", "on"):
            r = runs[f"{model}-{batching}"]
            lines.append(f"| {model} | {batching} | {r['throughput']:.0f} | {ms(r['p50_us'])} | {ms(r['p99_us'])} | {r['mean_batch']} | {r['errors']} |")
    wide = runs["wide_mlp-on"]["throughput"] / max(runs["wide_mlp-off"]["throughput"], 1e-9)
    ranking = runs["ranking_mlp-on"]["throughput"] / max(runs["ranking_mlp-off"]["throughput"], 1e-9)
    lines += ["", f"wide_mlp gain: **{wide:.2f}×** (target ≥ 4×), p99 with batching {ms(runs['wide_mlp-on']['p99_us'])} ms (target ≤ 25 ms).",
              f"ranking_mlp on/off: **{ranking:.2f}×** (target: not slower, ≥ 1× within noise).", ""]
    o = runs["overload"]
    err = o["error_latency_us"] or {}
    lines += ["## Overload: 3× the sustained rate", "",
              f"An emulated worker ({o['profile']} ms fixed + per sample, max batch 8) serving ranking_mlp with adaptive "
              f"batching (target {o['target_ms']} ms, delay 2 ms) and `max_queue_size: {o['queue']}`: it sustained "
              f"{o['sustained']:.0f} req/s closed-loop (16 in flight); then open-loop Poisson at {o['offered']} req/s (3×). "
              "Emulated because on this 2-core machine wide_mlp's 3× would saturate the frontend and the generator "
              "(about 1k req/s together) before the worker's queue: it would measure the RPC path, not admission control.", "",
              f"- accepted: {o['accepted_per_s']:.0f} req/s, p50 {ms(o['p50_us'])} ms, p99 {ms(o['p99_us'])} ms "
              f"(target + queue delay = {o['target_ms'] + 2} ms);",
              f"- refused: {o['errors_by_code']}; refusals came back in p50 {ms(err.get('p50', 0))} ms, p99 {ms(err.get('p99', 0))} ms, "
              f"max {ms(err.get('max', 0))} ms (from the intended send time, so including the generator's and the frontend's own delay);",
              f"- worker RSS: {o['rss_mib_first']} MiB after warm-up, {o['rss_mib_last']} MiB at the end, max {o['rss_mib_max']} MiB.", ""]
    a = runs["wide_mlp-adaptive-step"]
    lines += ["## Adaptive batching after a step", "",
              f"wide_mlp, adaptive (target {a['target_ms']} ms), open-loop Poisson {a['low']} req/s for 15 s then {a['high']} req/s for 30 s. "
              f"Overall p99 {ms(a['p99_us'])} ms, errors {a['errors']}. Per second (mean batch from ModelStatistics deltas, p99 from the load test):", "",
              "| t (s) | mean batch | p99 (ms) |", "|---:|---:|---:|"]
    p99s = {row["t"]: row["p99_us"] for row in a["latency_per_second"]}
    for s in a["samples"]:
        lines.append(f"| {s['t']:.0f} | {s['mean_batch']} | {ms(p99s.get(int(s['t']), 0))} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
