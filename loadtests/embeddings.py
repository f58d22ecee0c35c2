#!/usr/bin/env python3
"""The cost of the split, measured: the sentence-embedding service through Fulcrum's pipeline
(tokenizer and pooling in the frontend, MiniLM in a worker) beside the same work in one Python
process (KServe's model server with tokenizers + onnxruntime + NumPy, loadtests/peers/
kserve_embed_server.py), on the same published files, one after the other on this machine.

    loadtests/peers/setup      # once: KServe's virtualenv (with tokenizers)
    flock /tmp/fulcrum-bench.lock .venv/bin/python loadtests/embeddings.py \\
        [--bin-dir .build/release] [--points 1,8] [--duration 12] [--warmup 3] [--output DIR]

Each server serves `embed` (text BYTES [-1, 1] -> embedding FP32 [-1, 384]); `fulcrum loadtest`
drives it closed loop at each concurrency with the same texts (--input-data: one sentence per
request, 6 to 40 words). CPU per request is the server's whole process tree (user + system, from
/proc: Fulcrum's balancer, frontend and worker; KServe's one process) over the point, divided by
the answers. Fulcrum runs `fulcrum up --workers 1` with its defaults (mutual TLS between the
tiers, tracing at its default, metrics off) and onnxruntime runs with one intra-op thread, as the
Fulcrum worker's one instance does. Writes OUTPUT/summary.md and OUTPUT/raw/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "loadtests" / "lib"))
from proc_cpu import tree_cpu  # noqa: E402

WORDS = ("the model serves predictions on accelerators while the frontend keeps business logic "
         "close to the client and every request crosses the network between the tiers once "
         "tokenizers pooling embeddings latency throughput caches deadlines").split()


def cpu_by_process(root: int) -> dict[str, float]:
    """CPU seconds (user + system) of `root` and its descendants, summed by process name."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, info = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            text = open(f"/proc/{name}/stat").read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        parents[int(name)] = int(fields[1])
        info[int(name)] = (comm, sum(int(x) for x in fields[11:15]) / ticks)
    totals: dict[str, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in info:
            comm, seconds = info[pid]
            totals[comm] = totals.get(comm, 0) + seconds
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return totals


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def texts(n: int = 64) -> list[str]:
    import numpy as np
    rng = np.random.default_rng(7)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(6, 41)))).capitalize() + "." for _ in range(n)]


def wait_ready(address: str, timeout: float = 180) -> None:
    import tritonclient.grpc as grpcclient
    client = grpcclient.InferenceServerClient(address)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.is_model_ready("embed"):
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"embed was not ready on {address} after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", default=str(ROOT / ".build" / "release"))
    parser.add_argument("--points", default="1,8")
    parser.add_argument("--duration", type=float, default=12)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--output", default=str(ROOT / "loadtests" / "results" / f"{datetime.now(timezone.utc):%Y-%m-%d}-embeddings"))
    args = parser.parse_args()
    bin_dir = Path(args.bin_dir).resolve()
    kserve_python = ROOT / "loadtests" / "peers" / ".venv" / "kserve" / "bin" / "python"
    if not kserve_python.exists():
        sys.exit("embeddings: KServe is not installed: run loadtests/peers/setup")
    output = Path(args.output)
    (output / "raw").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fulcrum-embeddings-"))
    repo = work / "models"
    for name in ("embed", "minilm", "sentence_tokenizer", "sentence_pooling"):
        shutil.copytree(ROOT / "examples" / "models" / name, repo / name, ignore=shutil.ignore_patterns("1"))
        (repo / name / "1").mkdir()
    subprocess.run([str(ROOT / "scripts" / "fetch-embedding-model"), str(repo)], check=True, stdout=subprocess.DEVNULL)
    data = work / "texts.json"
    data.write_text(json.dumps({"data": [{"text": [t]} for t in texts()]}))
    points = [int(p) for p in args.points.split(",")]
    rows, commands = [], []

    def measure(server: str, address: str, pid: int) -> None:
        for c in points:
            tag = f"{server}-c{c}"
            cmd = [str(bin_dir / "fulcrum"), "loadtest", "embed", "--url", address, "--concurrency", str(c),
                   "--connections", "1", "--duration", str(args.duration + args.warmup), "--warmup", str(args.warmup),
                   "--input-data", str(data), "--output", str(work / tag)]
            commands.append(" ".join(cmd).replace(str(work), "$WORK").replace(str(ROOT) + "/", ""))
            before, parts_before = tree_cpu(pid), cpu_by_process(pid)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            after, parts_after = tree_cpu(pid), cpu_by_process(pid)
            result = json.loads((work / tag / "result.json").read_text())
            shutil.copy(work / tag / "result.json", output / "raw" / f"{tag}.json")
            shutil.copy(work / tag / "summary.md", output / "raw" / f"{tag}.md")
            sent = result["requests"] + result["warmup"]["completed"]
            rows.append({
                "server": server, "c": c, "rate": result["achieved_rate"], "errors": result["errors"],
                "p50": result["latency_us"]["p50"], "p99": result["latency_us"]["p99"],
                "cpu_us": (after - before) * 1e6 / max(sent, 1),
                "cpu_parts": {name: (parts_after[name] - parts_before.get(name, 0)) * 1e6 / max(sent, 1)
                              for name in parts_after if name != "fulcrum"},
                "steps": result.get("steps_us") or {}, "breakdown": result.get("breakdown_us") or {},
            })
            time.sleep(1)

    # Fulcrum: fulcrum up --workers 1 with its defaults (the worker gets the machine's cores as
    # OpenBLAS threads), and with one thread, as onnxruntime runs in the peer.
    for server, extra in (("fulcrum", []), ("fulcrum-1-thread", ["--threads-per-worker", "1"])):
        endpoints = work / f"{server}-endpoints.json"
        log = open(output / "raw" / f"{server}.log", "wb")
        up = subprocess.Popen([str(bin_dir / "fulcrum"), "up", "--model-repository", str(repo), "--workers", "1",
                               "--grpc-port", "0", "--http-port", "0", "--balancer-port", "0", "--log-level", "warning",
                               "--endpoints-file", str(endpoints), *extra], stdout=log, stderr=log, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while not (endpoints.exists() and endpoints.stat().st_size > 0):
                if up.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fulcrum up did not start; see raw/{server}.log")
                time.sleep(0.2)
            address = json.loads(endpoints.read_text())["grpc"]
            wait_ready(address)
            measure(server, address, up.pid)
        finally:
            stop(up)
            log.close()
        time.sleep(2)

    # KServe: one process.
    grpc_port, http_port = free_port(), free_port()
    log = open(output / "raw" / "kserve.log", "wb")
    kserve = subprocess.Popen([str(kserve_python), str(ROOT / "loadtests" / "peers" / "kserve_embed_server.py"),
                               "--repository", str(repo), "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
                              stdout=log, stderr=log, start_new_session=True, cwd=work)
    try:
        wait_ready(f"127.0.0.1:{grpc_port}")
        measure("kserve", f"127.0.0.1:{grpc_port}", kserve.pid)
    finally:
        stop(kserve)
        log.close()
    versions = subprocess.run([str(kserve_python), "-c", "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in ('kserve', 'onnxruntime', 'tokenizers')))"],
                              capture_output=True, text=True).stdout.strip()
    shutil.rmtree(work, ignore_errors=True)

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "unknown CPU")
    lines = [
        "# The sentence-embedding service: Fulcrum's pipeline beside one Python process", "",
        f"Command: `flock /tmp/fulcrum-bench.lock .venv/bin/python loadtests/embeddings.py {' '.join(sys.argv[1:])}`", "",
        f"Machine: {os.cpu_count()} cores, {cpu}; the servers and `fulcrum loadtest` share these cores. "
        f"Binaries: {bin_dir.relative_to(ROOT) if bin_dir.is_relative_to(ROOT) else bin_dir}, git "
        f"{subprocess.run(['git', '-C', str(ROOT), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}. "
        f"Peer: {versions}.", "",
        "Both serve `embed` on the published paraphrase-MiniLM-L3-v2 ONNX file and its tokenizer.json "
        "(truncation 128, padding to the batch's longest), one sentence of 6–40 words a request, closed loop over one "
        f"gRPC connection, {args.duration:g} s measured after {args.warmup:g} s warm-up. Fulcrum: `fulcrum up --workers 1` "
        "(frontend: tokenizer and mean pooling; worker: MiniLM; mutual TLS between them), with its default of one "
        "OpenBLAS thread per core for the lone worker (`fulcrum`) and with `--threads-per-worker 1` (`fulcrum-1-thread`). KServe: tokenizers + "
        "onnxruntime (1 intra-op thread) + NumPy in one process. CPU: the server's process tree from /proc.", "",
        "| server | C | req/s | p50 ms | p99 ms | errors | server CPU µs/req | of which, by process |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        parts = ", ".join(f"{name} {value:,.0f}" for name, value in sorted(r["cpu_parts"].items()) if value >= 1) if r["server"].startswith("fulcrum") else "one process"
        lines.append(f"| {r['server']} | {r['c']} | {r['rate']:.1f} | {r['p50'] / 1000:.2f} | {r['p99'] / 1000:.2f} | {r['errors']} | {r['cpu_us']:,.0f} | {parts} |")
    lines += ["", "Where Fulcrum's time went (each step's round trip as the frontend saw it, and the response's breakdown; mean / p99 ms):", "",
              "| server | C | " + " | ".join(["tokenizer", "minilm (pool)", "pooling", "frontend", "network", "queue", "compute"]) + " |",
              "|---|---:|" + "---:|" * 7]
    for r in rows:
        if not r["server"].startswith("fulcrum"):
            continue
        def part(d, k):
            v = d.get(k)
            return f"{v['mean'] / 1000:.2f} / {v['p99'] / 1000:.2f}" if v else "–"
        cells = [part(r["steps"], "1.sentence_tokenizer"), part(r["steps"], "2.minilm"), part(r["steps"], "3.sentence_pooling")]
        cells += [part(r["breakdown"], k) for k in ("frontend", "network", "queue", "compute")]
        lines.append(f"| {r['server']} | {r['c']} | " + " | ".join(cells) + " |")
    lines += ["", "Commands (`$WORK` is a temporary folder):", "", "```"] + commands + ["```", ""]
    (output / "summary.md").write_text("\n".join(lines))
    print((output / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
