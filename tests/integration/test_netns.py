"""Multi-host rehearsal (issue 8): `deploy/netns/rehearse up` builds hosts out of network
namespaces on this machine (ctl: balancer + frontend; w1, w2: one worker each; client) and starts
the services there with the settings of the systemd environment files. From inside the client
namespace this test sends predictions across the hosts, kills every process of worker host w1,
sees all traffic move to w2, and checks that the client cannot reach the workers directly.

Needs root and `ip netns` (skipped otherwise). Every namespace and process is removed at the end
(`rehearse down` in the fixture's finalizer), also when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

from conftest import BIN_DIR, BINARIES, REPO_ROOT, START_TIMEOUT, binary, make_repository, wait_until

REHEARSE = REPO_ROOT / "deploy" / "netns" / "rehearse"
CLIENT = REPO_ROOT / "deploy" / "netns" / "client.py"
PREFIX = f"fulcrum-t{os.getpid()}"
LEFTOVER = re.compile(r"^(fulcrum-t(\d+))-(ctl|w1|w2|client|net)$")

STREAM_THREADS = 3
BOTH_WORKERS_TIMEOUT = 30.0   # both worker hosts have served a request within this
KILL_AFTER_SECONDS = 2.0      # at least this long of steady traffic before the kill
FAILOVER_WINDOW = 3.0         # seconds after the kill in which a request may still fail
STEADY_AFTER_WINDOW = 5.0     # seconds of traffic after the window, all on w2, none failing
MEMBERSHIP_TIMEOUT = 3.0      # the balancer drops the dead worker within this (lease is 2 s)
REQUEST_TIMEOUT = 10.0


def _ip_netns_unavailable() -> str | None:
    """Why this machine cannot run the rehearsal, or None."""
    if os.geteuid() != 0:
        return "the netns rehearsal needs root (ip netns, veth pairs, firewall rules); run as root"
    if shutil.which("ip") is None:
        return "the netns rehearsal needs `ip` (iproute2) and it is not installed"
    probe = f"{PREFIX}-probe"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"`ip netns add` does not work here: {r.stderr.strip() or r.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _rehearse(*args: str, env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([str(REHEARSE), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _our_namespaces(prefix: str) -> list[str]:
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in r.stdout.splitlines()
            if line.split() and line.split()[0].startswith(prefix + "-")]


def _clean_leftovers(env: dict) -> None:
    """Namespaces of earlier runs of this test whose pytest process is gone."""
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    stale = set()
    for line in r.stdout.splitlines():
        m = LEFTOVER.match(line.split()[0]) if line.split() else None
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            stale.add(m.group(1))
    for prefix in sorted(stale):
        stale_env = {k: v for k, v in env.items() if k != "FULCRUM_NETNS_RUN_DIR"}
        _rehearse("down", env={**stale_env, "FULCRUM_NETNS_PREFIX": prefix}, timeout=60)


class Rehearsal:
    def __init__(self, endpoints: dict, env: dict, run_dir: Path):
        self.endpoints = endpoints
        self.env = env
        self.run_dir = run_dir

    def ns(self, host: str) -> str:
        return self.endpoints["namespaces"][host]

    def python_in(self, host: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns(host), sys.executable, str(CLIENT), *args],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def probe(self, host: str, *targets: str) -> dict:
        r = self.python_in(host, "probe", "--timeout", "2", *targets)
        assert r.returncode == 0, f"probe from {host} failed:\n{r.stdout}\n{r.stderr}"
        return json.loads(r.stdout)

    def pool(self) -> list[dict]:
        tls = ["--tls-dir", self.endpoints["tls_dir"]] if self.endpoints.get("tls_dir") else []
        r = subprocess.run(["ip", "netns", "exec", self.ns("ctl"), binary("fulcrum"), "status",
                            "--balancer", self.endpoints["balancer"], "--json", *tls],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"fulcrum status failed:\n{r.stdout}\n{r.stderr}"
        return json.loads(r.stdout)["workers"]

    def pids(self, host: str) -> list[int]:
        r = subprocess.run(["ip", "netns", "pids", self.ns(host)], capture_output=True, text=True)
        return [int(p) for p in r.stdout.split()]

    def logs(self) -> str:
        parts = []
        for path in sorted(self.run_dir.glob("*/*.log")):
            lines = path.read_text(errors="replace").splitlines()[-30:]
            parts.append(f"--- {path}\n" + "\n".join(lines))
        return "\n".join(parts)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    reason = _ip_netns_unavailable()
    if reason:
        pytest.skip(reason)
    for b in BINARIES:
        binary(b)
    run_dir = tmp_path_factory.mktemp("netns")
    repo = make_repository(tmp_path_factory.mktemp("netns-repo"))
    env = dict(os.environ, FULCRUM_BIN_DIR=str(BIN_DIR), FULCRUM_NETNS_PREFIX=PREFIX,
               FULCRUM_NETNS_RUN_DIR=str(run_dir), FULCRUM_NETNS_MODEL_REPOSITORY=str(repo),
               FULCRUM_NETNS_START_TIMEOUT=str(int(START_TIMEOUT)),
               FULCRUM_NETNS_PYTHON=sys.executable)
    _clean_leftovers(env)
    try:
        up = _rehearse("up", env=env, timeout=START_TIMEOUT + 120)
        if up.returncode != 0:
            pytest.fail(f"`rehearse up` failed ({up.returncode}):\n{up.stdout}\n{up.stderr}", pytrace=False)
        endpoints = json.loads((run_dir / "endpoints.json").read_text())
        yield Rehearsal(endpoints, env, run_dir)
    finally:
        down = _rehearse("down", env=env, timeout=120)
        left = _our_namespaces(PREFIX)
        assert down.returncode == 0 and not left, (
            f"`rehearse down` ({down.returncode}) left namespaces {left}:\n{down.stdout}\n{down.stderr}")


def test_hosts_and_firewall(rehearsal):
    e = rehearsal.endpoints
    status = _rehearse("status", env=rehearsal.env, timeout=60)
    assert status.returncode == 0, f"rehearse status:\n{status.stdout}\n{status.stderr}"

    # Every service got its settings from an environment file plus the per-host overrides.
    worker_env = (rehearsal.run_dir / "w1" / "worker.env").read_text()
    assert f"FULCRUM_ADVERTISE={e['workers']['w1']['address']}" in worker_env, worker_env
    assert f"FULCRUM_BALANCER={e['balancer']}" in worker_env, worker_env

    # The pool: both workers joined from their own hosts, with the addresses they advertise.
    pool = {w["address"]: w for w in rehearsal.pool()}
    for host in ("w1", "w2"):
        w = pool.get(e["workers"][host]["address"])
        assert w is not None and w["state"] == "READY", (host, pool)

    frontend = [e["frontend_grpc"]] + ([e["frontend_http"]] if e.get("frontend_http") else [])
    workers = [e["workers"][h]["address"] for h in ("w1", "w2")]
    seen = rehearsal.probe("client", *frontend, *workers, e["balancer"])
    for target in frontend:
        assert seen[target] == "open", f"the client cannot reach the frontend at {target}: {seen}"
    for target in workers + [e["balancer"]]:
        assert seen[target] in ("refused", "timeout"), (
            f"the client reaches {target} directly ({seen[target]}); only the ctl host may: {seen}")
    # The ctl host (where the frontend runs) does reach both workers.
    seen_ctl = rehearsal.probe("ctl", *workers)
    assert all(v == "open" for v in seen_ctl.values()), f"ctl cannot reach the workers: {seen_ctl}"


def test_predictions_across_hosts_and_failover(rehearsal):
    e = rehearsal.endpoints
    w1_id, w2_id = e["workers"]["w1"]["id"], e["workers"]["w2"]["id"]
    assert w1_id and w2_id and w1_id != w2_id, e["workers"]

    client = subprocess.Popen(
        ["ip", "netns", "exec", rehearsal.ns("client"), sys.executable, str(CLIENT), "stream",
         e["frontend_grpc"], "--seconds", "120", "--threads", str(STREAM_THREADS),
         "--request-timeout", str(REQUEST_TIMEOUT)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    records: list[dict] = []
    lock = threading.Lock()

    def read() -> None:
        assert client.stdout is not None
        for line in client.stdout:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            with lock:
                records.append(record)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def served_by() -> set:
        with lock:
            return {r["worker"] for r in records if r["ok"]}

    t0 = time.time()
    killed_at = None
    try:
        both = wait_until(lambda: {w1_id, w2_id} <= served_by() and time.time() - t0 >= KILL_AFTER_SECONDS,
                          timeout=BOTH_WORKERS_TIMEOUT, interval=0.1)
        with lock:
            sample = records[-5:]
        assert both, (f"after {BOTH_WORKERS_TIMEOUT} s only {served_by()} served requests "
                      f"(client alive: {client.poll() is None}); last: {sample}\n{rehearsal.logs()}")

        # Worker host w1 dies: every process in its namespace gets SIGKILL.
        victims = rehearsal.pids("w1")
        assert e["workers"]["w1"]["pid"] in victims, (victims, e["workers"]["w1"])
        kill = _rehearse("kill", "w1", "KILL", env=rehearsal.env, timeout=30)
        killed_at = time.time()
        assert kill.returncode == 0, f"rehearse kill w1:\n{kill.stdout}\n{kill.stderr}"
        assert rehearsal.pids("w1") == [], f"w1 still has processes: {rehearsal.pids('w1')}"

        # The balancer drops it (its report stream broke) and keeps w2.
        seen = []

        def only_w2() -> bool:
            seen.append([(w["id"], w["state"]) for w in rehearsal.pool()])
            return [w["id"] for w in rehearsal.pool()] == [w2_id]

        assert wait_until(only_w2, timeout=MEMBERSHIP_TIMEOUT, interval=0.1), (
            f"{MEMBERSHIP_TIMEOUT} s after the kill the pool is {seen[-1]}")

        time.sleep(max(0.0, killed_at + FAILOVER_WINDOW + STEADY_AFTER_WINDOW - time.time()))
    finally:
        if client.poll() is None:
            client.send_signal(signal.SIGTERM)
        try:
            client.wait(REQUEST_TIMEOUT + 15)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait(10)
        reader.join(10)
    stderr = client.stderr.read() if client.stderr else ""
    assert client.returncode == 0, f"the client exited with {client.returncode}:\n{stderr[-3000:]}"

    with lock:
        done = list(records)
    before = [r for r in done if r["end"] < killed_at]
    around = [r for r in done if r["start"] < killed_at + FAILOVER_WINDOW and r["end"] >= killed_at]
    after = [r for r in done if r["start"] >= killed_at + FAILOVER_WINDOW]

    failed_before = [r for r in before if not r["ok"]]
    assert not failed_before, f"{len(failed_before)} of {len(before)} requests failed before the kill: {failed_before[:5]}"
    assert {r["worker"] for r in before} == {w1_id, w2_id}, {r["worker"] for r in before}

    failed_around = [r for r in around if not r["ok"]]
    print(f"netns rehearsal ({e['settings']} settings): {len(before)} requests before the kill, "
          f"{len(around)} around it ({len(failed_around)} failed), {len(after)} after the window")
    if failed_around:  # allowed by the rehearsal's contract; worth seeing
        warnings.warn(f"{len(failed_around)} of {len(around)} requests failed within "
                      f"{FAILOVER_WINDOW} s of the kill: {failed_around[:3]}")
    # A request that succeeded after the kill can only have been served by w2 (the frontend
    # retries on another worker when the dead one's connection fails).
    wrong = [r for r in done if r["ok"] and r["start"] > killed_at and r["worker"] != w2_id]
    assert not wrong, f"requests started after the kill were served by {set(r['worker'] for r in wrong)}"

    assert len(after) >= 20, f"only {len(after)} requests after the failover window"
    failed_after = [r for r in after if not r["ok"]]
    assert not failed_after, (f"{len(failed_after)} of {len(after)} requests failed after the "
                              f"failover window: {failed_after[:5]}")
    assert {r["worker"] for r in after} == {w2_id}

    # And still: the client reaches the frontend but not the surviving worker.
    seen = rehearsal.probe("client", e["frontend_grpc"], e["workers"]["w2"]["address"])
    assert seen[e["frontend_grpc"]] == "open", seen
    assert seen[e["workers"]["w2"]["address"]] in ("refused", "timeout"), seen
