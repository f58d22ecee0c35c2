#!/usr/bin/env python3
"""The fault suite (issue 13, docs/security.md): what a cluster under load does when its parts
fail or are attacked, each with its figure.

    .venv/bin/python loadtests/faults.py [--bin-dir .build/release] [--workers 3] [--output DIR]
        [--only overload] [--cluster-cpus 0 --generator-cpus 1]
    loadtests/run faults [same options]

`--cluster-cpus` and `--generator-cpus` pin the cluster (every process `fulcrum up` starts) and
the load generator to disjoint CPUs (sched_setaffinity), so that an overload starves the cluster,
not the generator that measures it; `--only overload` runs the capacity, unloaded and 3x
overload steps alone.

Starts `fulcrum up --workers W --metrics` on free loopback ports, measures the capacity of
ranking_mlp batch 1 (closed loop, 32 in flight), then, each against that cluster:

- worker / balancer / frontend `kill -9` during an open-loop `fulcrum loadtest` at 70 % of
  capacity: failed / total (`fulcrum up` restarts the balancer and the frontend; the loadtest
  reconnects);
- the overflow request (shape [1, 2^62]) at the frontend and at a worker: the status, and
  whether every process is still alive;
- an unauthenticated unload at the frontend: the status;
- 3x overload (open loop, 200 ms client deadline): refusals and their p99, the admitted
  requests' p99 against the unloaded p99;
- a burst of 20,000 requests in flight (closed loop over 5 connections): frontend RSS before,
  at its peak and 10 s after;
- 200 slowloris connections (a frame that never finishes): how long until the frontend closed
  them all.

Writes OUTPUT/summary.md and OUTPUT/result.json; each load step keeps its `fulcrum loadtest`
report under OUTPUT/<step>/. Never asserts: it is a measurement.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PAGE = os.sysconf("SC_PAGE_SIZE")
# CPUs for the load generator and for the cluster (None: wherever the kernel puts them).
PINS = {"generator": None, "cluster": None}


def pinned(role):
    """A preexec_fn that pins the child (and everything it starts) to ROLE's CPUs."""
    cpus = PINS[role]
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / (1 << 20)
    except OSError:
        return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
        return text[text.rindex(")") + 2] not in "ZX"
    except OSError:
        return False


class Cluster:
    def __init__(self, bin_dir, workers, workdir, extra=()):
        self.bin_dir = bin_dir
        self.workdir = workdir
        repo = os.path.join(workdir, "models")
        for model in ("ranking_mlp", "simple", "transformer_encoder"):
            shutil.copytree(os.path.join(ROOT, "examples", "models", model), os.path.join(repo, model))
        self.endpoints_file = os.path.join(workdir, "endpoints.json")
        self.log = open(os.path.join(workdir, "fulcrum-up.log"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(bin_dir, "fulcrum"), "up", "--model-repository", repo, "--workers", str(workers),
             "--grpc-port", "0", "--http-port", "0", "--balancer-port", "0", "--metrics",
             "--endpoints-file", self.endpoints_file, *extra],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=pinned("cluster"))
        deadline = time.time() + 180
        while not os.path.exists(self.endpoints_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"fulcrum up did not start; see {self.log.name}")
            time.sleep(0.2)

    @property
    def endpoints(self):
        return json.load(open(self.endpoints_file))

    def pids(self):
        e = self.endpoints
        return [e["balancer_pid"], e["frontend_pid"]] + [w["pid"] for w in self.workers()]

    def workers(self):
        out = subprocess.run([os.path.join(self.bin_dir, "fulcrum"), "status", "--balancer", self.endpoints["balancer"], "--json"],
                             capture_output=True, text=True, timeout=30)
        return json.loads(out.stdout)["workers"] if out.returncode == 0 else []

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def loadtest(cluster, output, *args):
    """Runs `fulcrum loadtest ranking_mlp ARGS` against the frontend; its result.json."""
    command = [os.path.join(cluster.bin_dir, "fulcrum"), "loadtest", "ranking_mlp", "--url", cluster.endpoints["grpc"],
               "--output", output, *map(str, args)]
    subprocess.run(command, capture_output=True, text=True, timeout=600, preexec_fn=pinned("generator"))
    with open(os.path.join(output, "result.json")) as f:
        return json.load(f)


def kill_under_load(cluster, output, rate, victim, seconds=12, kill_at=4):
    """Open loop at `rate` for `seconds`; `victim()` gives the pid to SIGKILL at `kill_at`."""
    result = {}

    def run():
        result["r"] = loadtest(cluster, output, "--rate", rate, "--duration", seconds, "--warmup", 1, "--connections", 2,
                               "--timeout-ms", 5000, "--max-in-flight", 20000)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(kill_at)
    pid = victim()
    os.kill(pid, signal.SIGKILL)
    thread.join()
    r = result["r"]
    return {"killed_pid": pid, "requests": r["requests"], "ok": r["ok"], "failed": r["errors"], "dropped": r["dropped"],
            "errors_by_code": r["errors_by_code"], "p99_ms": r["latency_us"]["p99"] / 1000}


def overflow(cluster):
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import grpc
    import numpy as np
    from tritonclient.grpc import service_pb2, service_pb2_grpc
    from conftest import member_credentials
    request = service_pb2.ModelInferRequest(model_name="transformer_encoder")
    for name in ("input_ids", "attention_mask"):
        t = request.inputs.add()
        t.name, t.datatype = name, "INT64"
        t.shape.extend([1, 4611686018427387904])
        request.raw_input_contents.append(np.arange(4, dtype=np.int64).tobytes())
    answers = {}
    targets = {"frontend": cluster.endpoints["grpc"], "worker": cluster.workers()[0]["address"]}
    tls = cluster.endpoints.get("tls_dir")
    for where, address in targets.items():
        # A worker's port takes only the cluster's certificates: present the admin one.
        secure = where == "worker" and tls
        with (grpc.secure_channel(address, member_credentials(tls, "admin")) if secure else grpc.insecure_channel(address)) as channel:
            try:
                service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
                answers[where] = "OK"
            except grpc.RpcError as e:
                answers[where] = e.code().name
    time.sleep(1)
    return {"answers": answers, "all_alive": all(alive(p) for p in cluster.pids())}


def unauthenticated_unload(cluster):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException
    client = grpcclient.InferenceServerClient(cluster.endpoints["grpc"])
    try:
        client.unload_model("ranking_mlp")
        return {"status": "OK (unloaded!)"}
    except InferenceServerException as e:
        return {"status": e.status(), "message": e.message()}
    finally:
        client.close()


def strangers(cluster):
    """Control-plane calls from outside the cluster and from the wrong role: each must be refused."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import grpc
    from conftest import member_credentials
    balancer = cluster.endpoints["balancer"]
    tls = cluster.endpoints.get("tls_dir")

    def call(channel, method):
        stub = channel.unary_unary(f"/fulcrum.control.v1.Balancer/{method}", request_serializer=lambda x: x,
                                   response_deserializer=lambda x: x)
        try:
            stub(b"", timeout=10)
            return "OK"
        except grpc.RpcError as e:
            return e.code().name

    answers = {"plaintext Join": call(grpc.insecure_channel(balancer), "Join"),
               "plaintext Report": call(grpc.insecure_channel(balancer), "Report")}
    if tls:
        ca = open(os.path.join(tls, "ca.pem"), "rb").read()
        answers["TLS without a client certificate, Join"] = call(
            grpc.secure_channel(balancer, grpc.ssl_channel_credentials(root_certificates=ca)), "Join")
        frontend = grpc.secure_channel(balancer, member_credentials(tls, "frontend"))
        answers["frontend certificate, Join"] = call(frontend, "Join")
        answers["frontend certificate, Status"] = call(frontend, "Status")
    return {"answers": answers, "all_refused": all(a != "OK" for a in answers.values())}


def slowloris(cluster, count=200):
    host, port = cluster.endpoints["grpc"].rsplit(":", 1)
    sockets = []
    for _ in range(count):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\x00\x00\x40\x01\x04\x00\x00\x00\x01\x82")
        s.setblocking(False)
        sockets.append(s)
    began = time.time()
    open_ = set(range(count))
    while open_ and time.time() - began < 120:
        for i in list(open_):
            try:
                if sockets[i].recv(65536) == b"":
                    open_.discard(i)
            except BlockingIOError:
                pass
            except ConnectionResetError:
                open_.discard(i)
        time.sleep(0.1)
    for s in sockets:
        s.close()
    return {"connections": count, "all_closed_after_s": round(time.time() - began, 1) if not open_ else None, "still_open": len(open_)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--output", default=os.path.join(ROOT, "loadtests", "results", time.strftime("%Y-%m-%d") + "-faults"))
    parser.add_argument("--only", choices=["all", "overload"], default="all")
    parser.add_argument("--cluster-cpus", help="comma-separated CPU numbers for the cluster")
    parser.add_argument("--generator-cpus", help="comma-separated CPU numbers for the load generator")
    parser.add_argument("--capacity", type=int, help="the capacity in req/s to take instead of measuring it")
    parser.add_argument("--up-arg", action="append", default=[],
                        help="one more `fulcrum up` argument (repeat), e.g. --up-arg=--frontend-arg=--admission=adaptive")
    args = parser.parse_args()
    for role, cpus in (("cluster", args.cluster_cpus), ("generator", args.generator_cpus)):
        PINS[role] = {int(c) for c in cpus.split(",")} if cpus else None
    bin_dir = os.path.abspath(args.bin_dir)
    os.makedirs(args.output, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="fulcrum-faults-")
    cluster = Cluster(bin_dir, args.workers, workdir, args.up_arg)
    results = {"command": " ".join(sys.argv), "bin_dir": bin_dir, "workers": args.workers,
               "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
               "cores": os.cpu_count(), "cluster_cpus": args.cluster_cpus, "generator_cpus": args.generator_cpus,
               "up_args": args.up_arg}
    try:
        out = lambda name: os.path.join(args.output, name)  # noqa: E731
        results["tls"] = bool(cluster.endpoints.get("tls_dir"))
        if args.capacity:
            # Given, e.g. from a run with the default admission: a closed loop of 32 meets refusals
            # under --admission adaptive, which would understate it.
            rate = args.capacity
        else:
            capacity = loadtest(cluster, out("capacity"), "--concurrency", 32, "--duration", 6, "--warmup", 1, "--connections", 2)
            rate = round(capacity["achieved_rate"])
        results["capacity_rps"] = rate
        load = round(0.7 * rate)
        results["load_rps"] = load
        print(f"faults: capacity {rate} req/s; load {load} req/s", file=sys.stderr)
        if args.only == "overload":
            results["overload_3x"] = overload(cluster, out, rate)
            print(f"faults: overload {results['overload_3x']}", file=sys.stderr)
            return
        results["worker_kill"] = kill_under_load(cluster, out("worker-kill"), load, lambda: cluster.workers()[0]["pid"])
        print(f"faults: worker kill {results['worker_kill']}", file=sys.stderr)
        results["balancer_kill"] = kill_under_load(cluster, out("balancer-kill"), load, lambda: cluster.endpoints["balancer_pid"])
        print(f"faults: balancer kill {results['balancer_kill']}", file=sys.stderr)
        time.sleep(3)
        results["frontend_kill"] = kill_under_load(cluster, out("frontend-kill"), load, lambda: cluster.endpoints["frontend_pid"])
        print(f"faults: frontend kill {results['frontend_kill']}", file=sys.stderr)
        time.sleep(3)
        results["overflow"] = overflow(cluster)
        results["unauthenticated_unload"] = unauthenticated_unload(cluster)
        results["strangers"] = strangers(cluster)
        results["overload_3x"] = overload(cluster, out, rate)
        print(f"faults: overload {results['overload_3x']}", file=sys.stderr)
        frontend = cluster.endpoints["frontend_pid"]
        before = rss_mb(frontend)
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                value = rss_mb(frontend)
                if value:
                    peak.append(value)
                time.sleep(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        burst = loadtest(cluster, out("burst-20000"), "--concurrency", 20000, "--duration", 5, "--warmup", 1,
                         "--connections", 5, "--timeout-ms", 5000)
        stop.set()
        sampler.join()
        time.sleep(10)
        results["burst_20000"] = {"rss_mb_before": round(before, 1), "rss_mb_peak": round(max(peak), 1),
                                  "rss_mb_10s_after": round(rss_mb(frontend), 1), "requests": burst["requests"],
                                  "ok": burst["ok"], "errors_by_code": burst["errors_by_code"]}
        print(f"faults: burst {results['burst_20000']}", file=sys.stderr)
        results["slowloris"] = slowloris(cluster)
        results["all_alive_at_end"] = all(alive(p) for p in cluster.pids())
    finally:
        cluster.stop()
        finish(args, workdir, results)


def overload(cluster, out, rate):
    """30 % of capacity, then 3x capacity, open loop with a 200 ms deadline."""
    unloaded = loadtest(cluster, out("unloaded"), "--rate", max(1, round(0.3 * rate)), "--duration", 6, "--warmup", 1,
                        "--connections", 2, "--timeout-ms", 200)
    over = loadtest(cluster, out("overload-3x"), "--rate", 3 * rate, "--duration", 10, "--warmup", 2, "--connections", 4,
                    "--timeout-ms", 200, "--max-in-flight", 50000)
    return {
        "offered_rps": 3 * rate, "requests": over["requests"], "ok": over["ok"], "errors_by_code": over["errors_by_code"],
        "dropped_by_generator": over["dropped"], "achieved_rps": over.get("achieved_rate"),
        "admitted_p50_ms": over["latency_us"]["p50"] / 1000, "admitted_p99_ms": over["latency_us"]["p99"] / 1000,
        "unloaded_p99_ms": unloaded["latency_us"]["p99"] / 1000,
        "refusal_p50_ms": (over.get("error_latency_us") or {}).get("p50", 0) / 1000,
        "refusal_p99_ms": (over.get("error_latency_us") or {}).get("p99", 0) / 1000}


def finish(args, workdir, results):
    # The cluster's log without the per-call retry warnings (counted instead): a fault run
    # makes hundreds of thousands of them.
    retries = 0
    with open(os.path.join(workdir, "fulcrum-up.log"), errors="replace") as source, \
            open(os.path.join(args.output, "fulcrum-up.log"), "w") as kept:
        for line in source:
            if "failed a call" in line:
                retries += 1
            else:
                kept.write(line)
        kept.write(f"[faults.py: {retries} 'worker failed a call' warnings left out]\n")
    with open(os.path.join(args.output, "result.json"), "w") as f:
        json.dump(results, f, indent=2)
    if "worker_kill" in results:
        write_summary(args.output, results)
    elif "overload_3x" in results:
        write_overload_summary(args.output, results)
    else:
        return
    print(open(os.path.join(args.output, "summary.md")).read())


def write_summary(output, r):
    def kill_row(name, k):
        codes = ", ".join(f"{c} {n}" for c, n in sorted(k["errors_by_code"].items())) or "none"
        return f"| {name} `kill -9` | {k['failed']} / {k['requests']} ({codes}) | p99 {k['p99_ms']:.1f} ms |"

    o = r["overload_3x"]
    b = r["burst_20000"]
    lines = [
        "# Fault suite",
        "",
        f"Command: `{r['command']}`",
        "",
        f"Binaries: `{r['bin_dir']}`. Machine: {r['cores']} cores, {r['cpu']}; the load generator and the cluster "
        f"share them. `fulcrum up --workers {r['workers']} --metrics{''.join(' ' + a for a in r.get('up_args', []))}`, ranking_mlp batch 1. Capacity (closed loop, 32 in "
        f"flight): {r['capacity_rps']} req/s; the kills run at 70 % of it, {r['load_rps']} req/s open loop, 5 s deadline. "
        f"Between the tiers: {'mutual TLS (the default)' if r.get('tls') else 'plaintext'}.",
        "",
        "| fault | failed / total | note |",
        "|---|---|---|",
        kill_row("worker", r["worker_kill"]),
        kill_row("balancer", r["balancer_kill"]),
        kill_row("frontend", r["frontend_kill"]),
        f"| overflow request `[1, 2^62]` | frontend {r['overflow']['answers']['frontend']}, worker {r['overflow']['answers']['worker']} | every process alive: {r['overflow']['all_alive']} |",
        f"| unauthenticated unload | {r['unauthenticated_unload']['status']} | |",
        f"| control plane from strangers and wrong roles | all refused: {r['strangers']['all_refused']} | "
        + "; ".join(f"{k}: {v}" for k, v in r['strangers']['answers'].items()) + " |",
        f"| 3x overload ({o['offered_rps']} req/s, 200 ms deadline) | {o['requests'] - o['ok']} / {o['requests']} not OK ({', '.join(f'{c} {n}' for c, n in sorted(o['errors_by_code'].items()))}) | refusal p99 {o['refusal_p99_ms']:.1f} ms; admitted p99 {o['admitted_p99_ms']:.1f} ms against {o['unloaded_p99_ms']:.1f} ms unloaded |",
        f"| 20,000 in flight (5 connections, 5 s) | {b['requests'] - b['ok']} / {b['requests']} not OK | frontend RSS {b['rss_mb_before']} MB before, {b['rss_mb_peak']} MB peak, {b['rss_mb_10s_after']} MB 10 s after |",
        f"| 200 slowloris connections | still open: {r['slowloris']['still_open']} | all closed after {r['slowloris']['all_closed_after_s']} s |",
        "",
        f"Every process alive at the end: {r['all_alive_at_end']}.",
        "",
    ]
    with open(os.path.join(output, "summary.md"), "w") as f:
        f.write("\n".join(lines))


def write_overload_summary(output, r):
    o = r["overload_3x"]
    placement = (f"the cluster pinned to CPU {r['cluster_cpus']}, the generator to CPU {r['generator_cpus']}"
                 if r.get("cluster_cpus") else "the load generator and the cluster share them")
    lines = [
        "# 3x overload",
        "",
        f"Command: `{r['command']}`",
        "",
        f"Binaries: `{r['bin_dir']}`. Machine: {r['cores']} cores, {r['cpu']}; {placement}. "
        f"`fulcrum up --workers {r['workers']} --metrics{''.join(' ' + a for a in r.get('up_args', []))}`, ranking_mlp batch 1, "
        f"{'mutual TLS' if r.get('tls') else 'plaintext'} between the tiers. Capacity "
        f"({'given with --capacity' if '--capacity' in r['command'] else 'closed loop, 32 in flight'}): {r['capacity_rps']} req/s. Unloaded: 30 % of it, open loop, 200 ms deadline. Overload: 3x, open loop, "
        f"200 ms deadline, latencies counted from each request's intended send time.",
        "",
        "| offered req/s | requests | OK | not OK by code | dropped by the generator | admitted p50 / p99 ms | unloaded p99 ms | refusal p50 / p99 ms |",
        "|---:|---:|---:|---|---:|---|---:|---|",
        f"| {o['offered_rps']} | {o['requests']} | {o['ok']} | {', '.join(f'{c} {n}' for c, n in sorted(o['errors_by_code'].items())) or 'none'} "
        f"| {o['dropped_by_generator']} | {o['admitted_p50_ms']:.1f} / {o['admitted_p99_ms']:.1f} | {o['unloaded_p99_ms']:.1f} "
        f"| {o['refusal_p50_ms']:.1f} / {o['refusal_p99_ms']:.1f} |",
        "",
    ]
    with open(os.path.join(output, "summary.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
