"""`fulcrum up` process lifecycle: a signal stops every child and exits 0; a child that cannot
start makes it exit non-zero and say which."""

from __future__ import annotations

import signal
import socket
import subprocess

import pytest

from conftest import (START_TIMEOUT, STOP_TIMEOUT, Cluster, ClusterError, group_members,
                      make_repository, process_alive, wait_until)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_every_child(tmp_path, sig):
    cluster = Cluster(f"lifecycle-{sig.name}", tmp_path / "cluster", make_repository(tmp_path / "repo"), workers=2)
    error = None
    try:
        cluster.start()
    except ClusterError as e:
        error = str(e)
    if error is not None:
        pytest.fail(error, pytrace=False)
    try:
        children = cluster.child_pids()
        assert len(children) == 4 and all(process_alive(p) for p in children), cluster.endpoints
        cluster.send_signal(sig)
        try:
            code = cluster.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`fulcrum up` still running {STOP_TIMEOUT} s after {sig.name}\n{cluster.log_tail()}")
        assert code == 0, f"`fulcrum up` exited {code} after {sig.name}\n{cluster.log_tail()}"
        # Every child is gone, not orphaned (bounded: they may take a moment to exit).
        assert wait_until(lambda: not any(process_alive(p) for p in children), timeout=5), (
            f"children still running: {[p for p in children if process_alive(p)]}")
        assert not group_members(cluster.proc.pid), "processes left in the cluster's process group"
    finally:
        cluster.stop()


def test_child_start_failure_is_reported(tmp_path):
    """The balancer's port is taken: `fulcrum up` exits non-zero, names the balancer, leaves
    nothing running and writes no endpoints file."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        cluster = Cluster("bad-balancer-port", tmp_path / "cluster", make_repository(tmp_path / "repo"),
                          workers=1, balancer_port=port)
        cluster.spawn()
        try:
            try:
                code = cluster.proc.wait(min(START_TIMEOUT, 60))
            except subprocess.TimeoutExpired:
                pytest.fail(f"`fulcrum up` kept running with its balancer port taken\n{cluster.log_tail()}")
            output = (cluster.stdout_path.read_text(errors="replace")
                      + cluster.stderr_path.read_text(errors="replace"))
            assert code != 0, f"exit code {code}\n{output}"
            assert "balancer" in output.lower(), f"does not say which child failed:\n{output}"
            assert not cluster.endpoints_file.exists(), "endpoints file written although not ready"
            assert "fulcrum: ready" not in cluster.stdout_path.read_text(errors="replace")
            assert wait_until(lambda: not group_members(cluster.proc.pid), timeout=5), (
                f"processes left behind: {group_members(cluster.proc.pid)}")
        finally:
            cluster.stop()
