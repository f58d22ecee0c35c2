"""Mutual TLS between the tiers (docs/security.md).

`fulcrum up` makes a throwaway CA and a certificate per role; the balancer, the frontend and the
workers then talk mutual TLS only. A peer without a certificate from the cluster's CA is refused
at the handshake; the balancer lets only workers join and report, only frontends watch the pool
and only admins read its status. The public edge can serve TLS with its own certificate.
`--insecure` runs the tiers in plaintext; a service refuses plaintext off loopback without it.
"""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from conftest import (RPC_TIMEOUT, binary, check_simple, cli_env, infer_simple, make_repository,
                      member_credentials, run_cli, running_cluster, simple_data, wait_until)

CONTROL = "/fulcrum.control.v1.Balancer/"


def control_call(channel: grpc.Channel, method: str) -> str:
    """Calls a control-plane method with an empty message; 'OK' or the status code's name."""
    call = channel.unary_unary(CONTROL + method, request_serializer=lambda x: x, response_deserializer=lambda x: x)
    try:
        call(b"", timeout=10)
        return "OK"
    except grpc.RpcError as e:
        return f"{e.code().name}: {e.details()}"


@pytest.fixture(scope="module")
def edge_certs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("edge") / "certs"
    r = run_cli("certs", "--out", str(folder), "--host", "127.0.0.1", "--host", "localhost")
    assert r.returncode == 0, r.stderr
    return folder


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, edge_certs):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "tls", model_repository=repo, workers=1,
                         extra_args=("--edge-tls-cert", str(edge_certs / "frontend.pem"),
                                     "--edge-tls-key", str(edge_certs / "frontend-key.pem"))) as c:
        yield c


def test_certs_makes_a_ca_and_a_certificate_per_role(edge_certs):
    names = sorted(p.name for p in edge_certs.iterdir())
    assert names == ["admin-key.pem", "admin.pem", "balancer-key.pem", "balancer.pem", "ca.pem",
                     "frontend-key.pem", "frontend.pem", "worker-key.pem", "worker.pem"], names
    assert (edge_certs / "worker-key.pem").stat().st_mode & 0o077 == 0
    again = run_cli("certs", "--out", str(edge_certs))
    assert again.returncode != 0 and "exists already" in again.stderr, again.stderr


def test_the_control_plane_admits_only_the_cluster_and_each_role_its_calls(cluster):
    tls = cluster.tls_dir
    assert tls, cluster.endpoints
    balancer = cluster.balancer_url
    # No certificate at all: refused at the handshake, plaintext or TLS.
    assert control_call(grpc.insecure_channel(balancer), "Join").startswith("UNAVAILABLE")
    ca_only = grpc.ssl_channel_credentials(root_certificates=(Path(tls) / "ca.pem").read_bytes())
    assert control_call(grpc.secure_channel(balancer, ca_only), "Report").startswith("UNAVAILABLE")
    # Members, each limited to its role's calls.
    frontend = grpc.secure_channel(balancer, member_credentials(tls, "frontend"))
    for method in ("Join", "Report", "Status"):
        answer = control_call(frontend, method)
        assert answer.startswith("PERMISSION_DENIED") and "a frontend certificate" in answer, (method, answer)
    worker = grpc.secure_channel(balancer, member_credentials(tls, "worker"))
    answer = control_call(worker, "Status")
    assert answer.startswith("PERMISSION_DENIED") and "needs an admin certificate" in answer, answer
    assert control_call(worker, "WatchPool").startswith("PERMISSION_DENIED")
    admin = grpc.secure_channel(balancer, member_credentials(tls, "admin"))
    assert control_call(admin, "Status") == "OK"
    assert control_call(admin, "Join").startswith("PERMISSION_DENIED")
    # The CLI finds the cluster's admin certificate by itself.
    assert [w["state"] for w in cluster.status()["workers"]] == ["READY"]


def test_a_worker_port_needs_a_certificate_from_the_cluster_ca(cluster, edge_certs, reference):
    tls = cluster.tls_dir
    worker = cluster.endpoints["workers"][0]["address"]
    plain = grpcclient.InferenceServerClient(worker)
    with pytest.raises(Exception):
        plain.is_server_ready()
    # A certificate of another CA (the edge's) is refused as well.
    stranger = grpcclient.InferenceServerClient(
        worker, ssl=True, root_certificates=str(Path(tls) / "ca.pem"),
        private_key=str(edge_certs / "admin-key.pem"), certificate_chain=str(edge_certs / "admin.pem"))
    with pytest.raises(Exception):
        stranger.is_server_ready()
    member = grpcclient.InferenceServerClient(
        worker, ssl=True, root_certificates=str(Path(tls) / "ca.pem"),
        private_key=str(Path(tls) / "admin-key.pem"), certificate_chain=str(Path(tls) / "admin.pem"))
    assert member.is_server_ready()
    a, b = simple_data(np.random.default_rng(5), 2)
    check_simple(infer_simple(member, a, b), a, b, reference)
    # Repository control on a worker: only a frontend's or the balancer's certificate may ask
    # (model control is off here, so a permitted caller meets FAILED_PRECONDITION instead).
    for role in ("admin", "worker"):
        with grpc.secure_channel(worker, member_credentials(tls, role)) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                unload(channel, "simple")
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, (role, refused.value)
        assert "needs a balancer or frontend certificate" in refused.value.details(), refused.value.details()
        assert f"presented an {role}" in refused.value.details() or f"presented a {role}" in refused.value.details()
    with grpc.secure_channel(worker, member_credentials(tls, "frontend")) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            unload(channel, "simple")
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value
    assert member.is_model_ready("simple")


def unload(channel: grpc.Channel, model: str) -> None:
    from tritonclient.grpc import service_pb2, service_pb2_grpc
    service_pb2_grpc.GRPCInferenceServiceStub(channel).RepositoryModelUnload(
        service_pb2.RepositoryModelUnloadRequest(model_name=model), timeout=RPC_TIMEOUT)


def test_the_public_edge_serves_tls_to_unmodified_clients(cluster, edge_certs, reference):
    client = grpcclient.InferenceServerClient(cluster.grpc_url, ssl=True, root_certificates=str(edge_certs / "ca.pem"))
    a, b = simple_data(np.random.default_rng(6), 3)
    check_simple(infer_simple(client, a, b), a, b, reference)
    with pytest.raises(Exception):
        grpcclient.InferenceServerClient(cluster.grpc_url).is_server_ready()
    values = ",".join(["1"] * 16)
    r = run_cli("infer", "simple", "--url", cluster.grpc_url, "--tls-ca", str(edge_certs / "ca.pem"),
                "--input", f"INPUT0={values}", "--input", f"INPUT1={values}")
    assert r.returncode == 0 and "OUTPUT0 INT32 [1,16]: 2, 2" in r.stdout, (r.stdout, r.stderr)
    context = ssl.create_default_context(cafile=str(edge_certs / "ca.pem"))
    with urllib.request.urlopen(f"https://{cluster.endpoints['http']}/v2/health/ready", context=context,
                                timeout=RPC_TIMEOUT) as r:
        assert r.status == 200


def test_insecure_runs_the_tiers_in_plaintext(tmp_path_factory, reference):
    repo = make_repository(tmp_path_factory.mktemp("repo"))
    with running_cluster(tmp_path_factory, "insecure", model_repository=repo, workers=1,
                         extra_args=("--insecure",)) as c:
        assert c.endpoints["tls_dir"] is None
        worker = c.endpoints["workers"][0]["address"]
        assert grpcclient.InferenceServerClient(worker).is_server_ready()
        a, b = simple_data(np.random.default_rng(7), 1)
        check_simple(infer_simple(c.client(), a, b), a, b, reference)


@pytest.mark.parametrize("service", ["fulcrum-balancer", "fulcrum-worker"])
def test_plaintext_off_loopback_needs_insecure(service, tmp_path):
    args = [binary(service), "--host", "0.0.0.0", "--port", "0"]
    if service == "fulcrum-worker":
        args += ["--model-repository", str(make_repository(tmp_path / "repo"))]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30, env=cli_env(), stdin=subprocess.DEVNULL)
    assert r.returncode != 0, r.stdout
    assert "needs the cluster's certificates" in r.stderr and "--insecure" in r.stderr, r.stderr


def presented_certificate(address: str, tls: Path) -> bytes:
    """The DER certificate a cluster member's port presents to a new connection (made with the
    admin certificate of TLS)."""
    import socket
    host, port = address.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(str(tls / "ca.pem"))
    context.load_cert_chain(str(tls / "admin.pem"), str(tls / "admin-key.pem"))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=RPC_TIMEOUT) as raw:
        with context.wrap_socket(raw) as sock:
            return sock.getpeercert(binary_form=True)


def der(pem_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem_file.read_text())


def stop(*processes: subprocess.Popen | None) -> None:
    """Terminates the services a test started by hand (those that got as far as starting)."""
    for process in processes:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


def test_certificates_rotate_on_sighup_without_a_restart(tmp_path):
    """`fulcrum certs --ca-dir` issues a new set from the same CA; a service given SIGHUP presents
    its new certificate to new connections, keeps serving, and keeps the pair in force when the
    new files do not check out."""
    first, second, live = tmp_path / "first", tmp_path / "second", tmp_path / "live"
    assert run_cli("certs", "--out", str(first), "--keep-ca-key").returncode == 0
    r = run_cli("certs", "--out", str(second), "--ca-dir", str(first))
    assert r.returncode == 0, r.stderr
    assert (second / "ca.pem").read_text() == (first / "ca.pem").read_text()
    assert not (second / "ca-key.pem").exists()
    live.mkdir(mode=0o700)
    for name in ("ca.pem", "balancer.pem", "balancer-key.pem", "worker.pem", "worker-key.pem"):
        (live / name).write_bytes((first / name).read_bytes())
    address_file = tmp_path / "balancer.json"
    log = open(tmp_path / "balancer.log", "wb")
    balancer = subprocess.Popen(
        [binary("fulcrum-balancer"), "--port", "0", "--scaler", "static", "--address-file", str(address_file),
         "--tls-cert", str(live / "balancer.pem"), "--tls-key", str(live / "balancer-key.pem"), "--tls-ca", str(live / "ca.pem")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    worker = None
    try:
        assert wait_until(lambda: address_file.exists() and address_file.stat().st_size > 0, 30), "the balancer did not start"
        address = json.loads(address_file.read_text())["grpc"]
        assert presented_certificate(address, first) == der(first / "balancer.pem")
        # A worker too: its port is served by swift-nio-http2 with its own TLS context.
        worker_file = tmp_path / "worker.json"
        worker = subprocess.Popen(
            [binary("fulcrum-worker"), "--model-repository", str(make_repository(tmp_path / "repo")), "--port", "0",
             "--balancer", address, "--address-file", str(worker_file), "--threads", "1",
             "--tls-cert", str(live / "worker.pem"), "--tls-key", str(live / "worker-key.pem"), "--tls-ca", str(live / "ca.pem")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert wait_until(lambda: worker_file.exists() and worker_file.stat().st_size > 0, 60), "the worker did not start"
        worker_address = json.loads(worker_file.read_text())["grpc"]
        assert presented_certificate(worker_address, first) == der(first / "worker.pem")

        for name in ("balancer.pem", "balancer-key.pem", "worker.pem", "worker-key.pem"):
            (live / name).write_bytes((second / name).read_bytes())
        balancer.send_signal(signal.SIGHUP)
        worker.send_signal(signal.SIGHUP)
        assert wait_until(lambda: presented_certificate(address, first) == der(second / "balancer.pem"), 10), \
            "the balancer kept presenting its old certificate after SIGHUP"
        assert wait_until(lambda: presented_certificate(worker_address, first) == der(second / "worker.pem"), 10), \
            "the worker kept presenting its old certificate after SIGHUP"
        # The admin certificate of the first set still gets in: the CA is the same.
        r = run_cli("status", "--balancer", address, "--tls-dir", str(first), "--json")
        assert r.returncode == 0, r.stderr

        # A key that is not the certificate's: refused, logged, the pair in force stays.
        (live / "balancer-key.pem").write_bytes((first / "balancer-key.pem").read_bytes())
        balancer.send_signal(signal.SIGHUP)
        assert wait_until(lambda: b"kept the cluster certificate" in (tmp_path / "balancer.log").read_bytes(), 10)
        assert balancer.poll() is None, "the balancer stopped on a bad certificate"
        assert presented_certificate(address, first) == der(second / "balancer.pem")
        # The worker, still joined (its report stream predates the rotation), serves.
        assert worker.poll() is None
    finally:
        stop(worker, balancer)
        log.close()


def test_a_revoked_member_certificate_is_refused_and_the_list_reloads_on_sighup(tmp_path):
    """`--tls-revoked`: a leaked certificate appended to the list is refused by the balancer
    (every call, UNAUTHENTICATED) and by a worker's port (the connection closes after the
    handshake), while the rest of the same CA's certificates keep working; the list is read
    again on SIGHUP. A frontend whose list names a worker's certificate will not talk to it."""
    leaked, kept = tmp_path / "leaked", tmp_path / "kept"
    assert run_cli("certs", "--out", str(leaked), "--keep-ca-key").returncode == 0
    r = run_cli("certs", "--out", str(kept), "--ca-dir", str(leaked))
    assert r.returncode == 0, r.stderr
    revoked = tmp_path / "revoked.pem"
    revoked.write_bytes((leaked / "frontend.pem").read_bytes())
    log = open(tmp_path / "services.log", "wb")
    address_file, worker_file = tmp_path / "balancer.json", tmp_path / "worker.json"

    def flags(role: str) -> list[str]:
        return ["--tls-cert", str(kept / f"{role}.pem"), "--tls-key", str(kept / f"{role}-key.pem"),
                "--tls-ca", str(kept / "ca.pem"), "--tls-revoked", str(revoked)]

    balancer = subprocess.Popen(
        [binary("fulcrum-balancer"), "--port", "0", "--scaler", "static", "--address-file", str(address_file)] + flags("balancer"),
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    worker = None
    try:
        assert wait_until(lambda: address_file.exists() and address_file.stat().st_size > 0, 30), "the balancer did not start"
        address = json.loads(address_file.read_text())["grpc"]
        worker = subprocess.Popen(
            [binary("fulcrum-worker"), "--model-repository", str(make_repository(tmp_path / "repo")), "--port", "0",
             "--balancer", address, "--address-file", str(worker_file), "--threads", "1"] + flags("worker"),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert wait_until(lambda: worker_file.exists() and worker_file.stat().st_size > 0, 60), "the worker did not start"
        worker_address = json.loads(worker_file.read_text())["grpc"]

        def ready_with(folder: Path, role: str) -> bool:
            client = grpcclient.InferenceServerClient(
                worker_address, ssl=True, root_certificates=str(kept / "ca.pem"),
                private_key=str(folder / f"{role}-key.pem"), certificate_chain=str(folder / f"{role}.pem"))
            try:
                return client.is_server_ready()
            except Exception:  # noqa: BLE001 - a closed connection is the refusal
                return False
            finally:
                client.close()

        # The worker's port: the leaked frontend certificate is closed out, the kept one served.
        assert wait_until(lambda: ready_with(kept, "frontend"), 30), "the worker never served the kept certificate"
        assert not ready_with(leaked, "frontend")
        assert ready_with(leaked, "admin"), "a certificate the list does not name was refused"
        assert b"is revoked" in (tmp_path / "services.log").read_bytes()

        # The balancer: the leaked admin certificate reads the status until it is listed and the
        # balancer is given SIGHUP; then every call of it is UNAUTHENTICATED.
        r = run_cli("status", "--balancer", address, "--tls-dir", str(leaked), "--json")
        assert r.returncode == 0, r.stderr
        revoked.write_bytes((leaked / "frontend.pem").read_bytes() + (leaked / "admin.pem").read_bytes())
        balancer.send_signal(signal.SIGHUP)

        def status_refused() -> bool:
            return run_cli("status", "--balancer", address, "--tls-dir", str(leaked), "--json").returncode != 0

        assert wait_until(status_refused, 10), "the balancer kept serving a revoked admin certificate after SIGHUP"
        r = run_cli("status", "--balancer", address, "--tls-dir", str(leaked), "--json")
        assert "revoked" in r.stderr + r.stdout, r.stderr + r.stdout
        with grpc.secure_channel(address, member_credentials(str(leaked), "admin")) as channel:
            assert control_call(channel, "Status").startswith("UNAUTHENTICATED"), control_call(channel, "Status")
        r = run_cli("status", "--balancer", address, "--tls-dir", str(kept), "--json")
        assert r.returncode == 0, r.stderr
        # The worker joined with its own (kept) certificate and is still a member.
        assert any(w["state"] == "READY" for w in json.loads(r.stdout)["workers"]), r.stdout

        # A frontend whose list names that worker's certificate closes its connections to it
        # after the handshake: the worker is in the pool, and the frontend will not use it.
        frontend_revoked = tmp_path / "frontend-revoked.pem"
        frontend_revoked.write_bytes((kept / "worker.pem").read_bytes())
        frontend_file = tmp_path / "frontend.json"
        frontend = subprocess.Popen(
            [binary("fulcrum-frontend"), "--balancer", address, "--grpc-port", "0", "--http-port", "0",
             "--address-file", str(frontend_file), "--tls-cert", str(kept / "frontend.pem"),
             "--tls-key", str(kept / "frontend-key.pem"), "--tls-ca", str(kept / "ca.pem"),
             "--tls-revoked", str(frontend_revoked)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            assert wait_until(lambda: frontend_file.exists() and frontend_file.stat().st_size > 0, 30), "the frontend did not start"
            client = grpcclient.InferenceServerClient(json.loads(frontend_file.read_text())["grpc"])
            assert wait_until(client.is_server_ready, 30), "the frontend never saw the pool"
            a, b = simple_data(np.random.default_rng(3), 1)
            with pytest.raises(Exception):
                infer_simple(client, a, b)
            client.close()
            assert b"closed the connection with" in (tmp_path / "services.log").read_bytes()
        finally:
            stop(frontend)
    finally:
        stop(worker, balancer)
        log.close()
