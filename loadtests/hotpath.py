#!/usr/bin/env python3
"""The two-tier prediction path's cost, per process and per request, for several builds or
settings side by side in one run (docs/performance.md).

    flock /tmp/fulcrum-bench.lock .venv/bin/python loadtests/hotpath.py \\
        --variant before=/path/to/old/.build/release --variant after=.build/release \\
        [--variant pool=.build/release:FULCRUM_EXECUTOR=pool] [--variant plain=.build/release:--insecure] \\
        [--points "1:1 8:1 32:4"] [--duration 10] [--warmup 2] [--rounds 1] [--workers 2] \\
        [--model ranking_mlp] [--perf] [--output DIR]
    .venv/bin/python loadtests/hotpath.py --model simple --points "1:1 8:8 32:32" \
        --variant grpc=.build/release --variant json=.build/release:protocol=json \
        --variant binary=.build/release:protocol=binary

For each variant (a label, a directory with the Fulcrum binaries, and optional NAME=VALUE
environment settings for every process, e.g. `FULCRUM_EXECUTOR=pool`, or `--flag` arguments for
`fulcrum up`, e.g. `--insecure`, or `protocol=json|binary` to send the request over HTTP/REST
instead of gRPC: KServe v2 JSON, or the binary tensor extension with binary outputs), it starts `fulcrum up
--workers W --metrics` on free loopback ports (Prometheus metrics on in every process, tracing at
its default: propagated, not recorded), encodes one ModelInfer request (loadtests/lib/grpc_request.py,
checked to answer OK), drives it with h2load (`-c N -m C/N -t 1`) at each point, and reads the
CPU time of the frontend, each worker and the balancer from /proc before and after each point.
Variants alternate point by point within a round (`--rounds` repeats the whole set), so they share
the machine's drift. With `--perf` it also records `perf record -g` of the frontend and one
worker for each variant at the last point and keeps the top symbols.

Writes OUTPUT/summary.md (a table per point: req/s, p50/p99 from h2load's log, µs of CPU per
request in the frontend, the workers, the balancer and all together), OUTPUT/result.json and the
command. Never asserts anything: it is a benchmark.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid):
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                text = f.read()
            ppid = int(text[text.rindex(")") + 2:].split()[1])
            if ppid == pid:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                found.append((int(name), os.path.basename(argv[0].decode())))
        except (OSError, ValueError, IndexError):
            pass
    return found


def roles(up_pid):
    """Maps each Fulcrum process under `fulcrum up` (and the workers the balancer started) to a role."""
    result = {}
    todo = [up_pid]
    while todo:
        pid = todo.pop()
        for child, name in children(pid):
            if name.startswith("fulcrum-"):
                role = name[len("fulcrum-"):]
                result[child] = role
            todo.append(child)
    return result


class Cluster:
    def __init__(self, label, bin_dir, env, workers, model, work):
        self.label, self.bin_dir, self.model = label, bin_dir, model
        self.protocol = env.get("__protocol__", "grpc")
        self.work = os.path.join(work, label)
        os.makedirs(self.work, exist_ok=True)
        environment = dict(os.environ)
        environment.update({k: v for k, v in env.items() if not k.startswith("__")})
        endpoints = os.path.join(self.work, "endpoints.json")
        if os.path.exists(endpoints):
            os.remove(endpoints)
        self.command = [os.path.join(bin_dir, "fulcrum"), "up", "--model-repository", os.path.join(ROOT, "examples/models"),
                        "--workers", str(workers), "--grpc-port", "0", "--http-port", "0", "--balancer-port", "0",
                        "--log-level", "warning", "--endpoints-file", endpoints, "--metrics"] + env.get("__args__", [])
        self.process = subprocess.Popen(self.command, env=environment, stdout=open(os.path.join(self.work, "up.out"), "w"),
                                        stderr=open(os.path.join(self.work, "up.err"), "w"))
        deadline = time.monotonic() + 180
        while not (os.path.exists(endpoints) and os.path.getsize(endpoints) > 0):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"hotpath: {label}: fulcrum up did not start; see {self.work}/up.err")
            time.sleep(0.1)
        described = json.load(open(endpoints))
        self.grpc = described["grpc"]
        self.http = described["http"]
        self.metrics = described["metrics"]["frontend"]
        try:
            self._prepare(workers, model)
        except BaseException:
            self.stop()
            raise

    def _prepare(self, workers, model):
        py = sys.executable
        subprocess.run([py, os.path.join(HERE, "lib/grpc_request.py"), "wait", "--address", self.grpc, "--model", model,
                        "--timeout", "120"], check=True, stdout=subprocess.DEVNULL)
        # The pool may still be growing to its size: wait until every worker has a process.
        for _ in range(300):
            if sum(1 for r in roles(self.process.pid).values() if r == "worker") >= workers:
                break
            time.sleep(0.1)
        if self.protocol != "grpc":
            self._prepare_http(model)
            return
        self.request = os.path.join(self.work, "request.grpc")
        subprocess.run([py, os.path.join(HERE, "lib/grpc_request.py"), "encode", "--address", self.grpc, "--model", model,
                        "--out", self.request], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([py, os.path.join(HERE, "lib/grpc_request.py"), "check", "--address", self.grpc, "--file", self.request],
                       check=True, stdout=subprocess.DEVNULL)

    def _prepare_http(self, model):
        """One /v2/models/MODEL/infer body for every input of the model's metadata (batch 1): JSON,
        or the binary tensor extension (JSON header, raw little-endian tensors, binary outputs);
        checked to answer 200 before it is driven."""
        import struct
        import urllib.request
        metadata = json.load(urllib.request.urlopen(f"http://{self.http}/v2/models/{model}", timeout=30))
        formats = {"FP32": ("f", float), "INT32": ("i", int), "INT64": ("q", int)}
        inputs, raw = [], b""
        for tensor in metadata["inputs"]:
            shape = [1 if d < 0 else d for d in tensor["shape"]]
            count = 1
            for d in shape:
                count *= d
            code, cast = formats[tensor["datatype"]]
            values = [cast((i % 7) - 3) for i in range(count)]
            entry = {"name": tensor["name"], "shape": shape, "datatype": tensor["datatype"]}
            if self.protocol == "json":
                entry["data"] = values
            else:
                data = struct.pack(f"<{count}{code}", *values)
                entry["parameters"] = {"binary_data_size": len(data)}
                raw += data
            inputs.append(entry)
        document = {"inputs": inputs}
        self.headers = ["content-type: application/json"]
        if self.protocol == "binary":
            document["outputs"] = [{"name": t["name"], "parameters": {"binary_data": True}} for t in metadata["outputs"]]
            header = json.dumps(document).encode()
            body = header + raw
            self.headers = ["content-type: application/octet-stream", f"inference-header-content-length: {len(header)}"]
        else:
            body = json.dumps(document).encode()
        self.request = os.path.join(self.work, f"request.{self.protocol}")
        with open(self.request, "wb") as f:
            f.write(body)
        self.url = f"http://{self.http}/v2/models/{model}/infer"
        check = urllib.request.Request(self.url, data=body, method="POST",
                                       headers=dict(h.split(": ", 1) for h in self.headers))
        with urllib.request.urlopen(check, timeout=30) as answer:
            if answer.status != 200:
                sys.exit(f"hotpath: {self.label}: {self.url} answered {answer.status}")

    def answered(self):
        """(OK, other) answers of the frontend for the model, from its Prometheus counter
        fulcrum_frontend_requests_total{model,code}: h2load sees only HTTP statuses, and a gRPC
        error is HTTP 200 too."""
        import urllib.request
        text = urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=10).read().decode()
        ok = other = 0
        for line in text.splitlines():
            if line.startswith("fulcrum_frontend_requests_total{") and f'model="{self.model}"' in line:
                value = int(float(line.rsplit(" ", 1)[1]))
                if 'code="OK"' in line:
                    ok += value
                else:
                    other += value
        return ok, other

    def cpu(self):
        totals = {}
        for pid, role in roles(self.process.pid).items():
            try:
                totals[role] = totals.get(role, 0.0) + cpu_seconds(pid)
            except OSError:
                pass
        return totals

    def pids(self, role):
        return [pid for pid, r in roles(self.process.pid).items() if r == role]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def h2load(cluster, c, n, duration, warmup, log):
    common = ["-c", str(n), "-m", str(max(1, c // n)), "-t", "1", "-D", f"{duration:g}", "--warm-up-time", f"{warmup:g}",
              "-d", cluster.request, "--log-file", log]
    if cluster.protocol == "grpc":
        command = ["h2load"] + common + ["-H", "content-type: application/grpc", "-H", "te: trailers",
                                         f"http://{cluster.grpc}/inference.GRPCInferenceService/ModelInfer"]
    else:
        # HTTP/1.1 (the REST port); -m above 1 would pipeline, so give one connection per call in flight.
        headers = [item for header in cluster.headers for item in ("-H", header)]
        command = ["h2load", "--h1"] + common + headers + [cluster.url]
    # h2load appends to an existing log file: each run gets a fresh one.
    if os.path.exists(log):
        os.remove(log)
    answered_before = cluster.answered()
    before = cluster.cpu()
    out = subprocess.run(command, capture_output=True, text=True)
    after = cluster.cpu()
    answered_after = cluster.answered()
    if not os.path.exists(log):
        sys.exit(f"hotpath: h2load wrote no log ({out.returncode}): {out.stdout[-400:]} {out.stderr[-400:]}")
    latencies, failed = [], 0
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                if parts[1].startswith("2"):
                    latencies.append(int(parts[2]))
                else:
                    failed += 1
    latencies.sort()
    count = len(latencies)

    def pct(p):
        return latencies[min(count - 1, int(p * count))] / 1000 if count else float("nan")

    cpu = {role: after.get(role, 0.0) - before.get(role, 0.0) for role in after}
    # Requests the frontend answered OK and with an error over the whole h2load run (warm-up included).
    ok = answered_after[0] - answered_before[0]
    worker_failed = answered_after[1] - answered_before[1]
    return {"command": " ".join(command), "requests": count, "failed": failed, "rps": count / duration,
            "worker_ok": ok, "worker_failed": worker_failed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "cpu_s": cpu, "h2load_tail": out.stdout[-600:]}


def perf_profile(cluster, c, n, seconds, out_dir):
    """perf record -g of the frontend and the first worker while h2load drives the point."""
    import threading
    tops = {}
    targets = {"frontend": cluster.pids("frontend")[:1], "worker": cluster.pids("worker")[:1]}
    records = {}
    for role, pids in targets.items():
        if not pids:
            continue
        data = os.path.join(out_dir, f"{cluster.label}-{role}.perf.data")
        records[role] = (data, subprocess.Popen(["perf", "record", "-g", "-F", "999", "-o", data, "-p", str(pids[0]), "--",
                                                  "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    load = threading.Thread(target=h2load, args=(cluster, c, n, seconds + 1, 0, os.path.join(out_dir, f"perf-h2load-{cluster.label}.log")))
    load.start()
    for role, (data, proc) in records.items():
        proc.wait()
    load.join()
    for role, (data, _) in records.items():
        report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--percent-limit", "1.5", "--stdio",
                                 "--sort", "symbol", "-g", "none"], capture_output=True, text=True).stdout
        lines = [line for line in report.splitlines() if line.strip() and not line.startswith("#")]
        tops[role] = [line.rstrip(" \t-") for line in lines[:25]]
        with open(os.path.join(out_dir, f"{cluster.label}-{role}.perf.txt"), "w") as f:
            f.write(report)
        if not os.environ.get("FULCRUM_KEEP_PERF"):  # keep perf.data for `perf report --children`
            os.remove(data)
    return tops


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", required=True, help="LABEL=BIN_DIR[:NAME=VALUE,...]")
    parser.add_argument("--points", default="1:1 8:1 32:4")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="ranking_mlp")
    parser.add_argument("--perf", action="store_true")
    parser.add_argument("--output", default=os.path.join(ROOT, "loadtests/results", time.strftime("%Y-%m-%d") + "-hotpath"))
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        sys.exit("hotpath: h2load is missing: apt-get install nghttp2-client")

    variants = []
    for spec in args.variant:
        label, _, rest = spec.partition("=")
        bin_dir, _, env_text = rest.partition(":")
        items = [item for item in env_text.split(",") if item]
        env = dict(item.split("=", 1) for item in items if not item.startswith("--"))
        env["__args__"] = [item for item in items if item.startswith("--")]
        protocol = env.pop("protocol", "grpc")
        if protocol not in ("grpc", "json", "binary"):
            sys.exit(f"hotpath: protocol={protocol}: not grpc, json or binary")
        env["__protocol__"] = protocol
        variants.append((label, os.path.abspath(bin_dir), env))
    points = [tuple(int(x) for x in p.split(":")) for p in args.points.split()]
    os.makedirs(args.output, exist_ok=True)
    work = tempfile.mkdtemp(prefix="hotpath-")
    results = []  # (round, label, c, n, result)
    profiles = {}
    try:
        for round_index in range(args.rounds):
            # One variant's cluster at a time: the point's measurement sees no other load.
            for c, n in points:
                for label, bin_dir, env in variants:
                    try:
                        cluster = Cluster(label, bin_dir, env, args.workers, args.model, work)
                    except (subprocess.CalledProcessError, SystemExit) as error:
                        # Keep its logs and go on: one failed start must not lose the run.
                        kept = os.path.join(args.output, f"failed-{label}-c{c}")
                        subprocess.run(["cp", "-r", os.path.join(work, label), kept])
                        print(f"hotpath: {label} C={c}: the cluster did not start ({error}); logs in {kept}", file=sys.stderr)
                        continue
                    try:
                        result = h2load(cluster, c, n, args.duration, args.warmup, os.path.join(work, f"h2load-{label}-c{c}-r{round_index}.log"))
                        results.append({"round": round_index, "variant": label, "c": c, "n": n, **result})
                        print(f"hotpath: round {round_index + 1} {label} C={c}: {result['rps']:.0f} req/s, "
                              f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
                              f"CPU/req {1e6 * sum(result['cpu_s'].values()) / max(1, result['requests']):.0f} µs",
                              file=sys.stderr)
                        if args.perf and round_index == args.rounds - 1 and (c, n) == points[-1]:
                            profiles[label] = perf_profile(cluster, c, n, min(8, args.duration), args.output)
                    finally:
                        cluster.stop()
    finally:
        subprocess.run(["rm", "-rf", work])

    command = "loadtests/hotpath.py " + " ".join(sys.argv[1:])
    json.dump({"command": command, "results": results, "profiles": profiles}, open(os.path.join(args.output, "result.json"), "w"),
              indent=2)
    lines = [f"# Two-tier hot path, side by side", "", f"Command: `{command}`", "",
             f"Machine: {os.cpu_count()} cores, {cpu_model()}; h2load and the cluster share these cores. "
             f"Model {args.model}, batch 1, `fulcrum up --workers {args.workers} --metrics`, otherwise its defaults. CPU from /proc "
             "(user + system) of each process over the measured point, divided by the requests answered.", "",
             "`failed`: non-2xx HTTP answers in h2load's log; `answers OK / error`: the frontend's "
             "fulcrum_frontend_requests_total by code over the whole h2load run, warm-up included, so a gRPC error "
             "(HTTP 200 with a non-zero grpc-status) cannot pass for an answer. The few errors at C>1 are CANCELLED: "
             "h2load resets the streams still in flight when its warm-up ends and when it stops (checked by code on "
             "2026-12-06: 39 cancelled of 154,149 over two such runs, no other code).", "",
             "| variant | C | N | req/s | p50 ms | p99 ms | failed | answers OK / error | frontend µs/req | workers µs/req | balancer µs/req | total µs/req |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        count = max(1, r["requests"])
        cpu = r["cpu_s"]
        lines.append(f"| {r['variant']} | {r['c']} | {r['n']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['failed']} | {r['worker_ok']} / {r['worker_failed']} | "
                     f"{1e6 * cpu.get('frontend', 0) / count:.0f} | {1e6 * cpu.get('worker', 0) / count:.0f} | "
                     f"{1e6 * cpu.get('balancer', 0) / count:.0f} | {1e6 * sum(cpu.values()) / count:.0f} |")
    for label, tops in profiles.items():
        for role, top in tops.items():
            lines += ["", f"perf top symbols, {label}, {role} (self time, `perf report --no-children --sort symbol`):", "```"] + top + ["```"]
    with open(os.path.join(args.output, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
