"""A client for the multi-host rehearsal, run inside the client namespace:

    ip netns exec fulcrum-client .venv/bin/python deploy/netns/client.py stream 10.77.0.1:8001
    ip netns exec fulcrum-client .venv/bin/python deploy/netns/client.py probe 10.77.0.1:8001 10.77.0.11:9001

`stream` sends predictions of the `simple` model (OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 -
INPUT1) with tritonclient's gRPC client from several threads for --seconds (or until SIGTERM or
SIGINT), checks every answer, and prints one JSON line per request as soon as it finishes:
{"start": unix time, "end": unix time, "ok": bool, "worker": fulcrum.worker, "error": text}.

`probe` tries a TCP connection to each host:port and prints one JSON object:
{"host:port": "open" | "refused" | "timeout" | "error: ..."}.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import socket
import sys
import threading
import time

DIM = 16


def stream(args: argparse.Namespace) -> int:
    import numpy as np
    import tritonclient.grpc as grpcclient

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    out = threading.Lock()

    def emit(record: dict) -> None:
        with out:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()

    def run(seed: int) -> None:
        rng = np.random.default_rng(seed)
        client = grpcclient.InferenceServerClient(args.url)
        try:
            while not stop.is_set():
                batch = int(rng.integers(1, 5))
                a = rng.integers(-100_000, 100_000, size=(batch, DIM), dtype=np.int32)
                b = rng.integers(-100_000, 100_000, size=(batch, DIM), dtype=np.int32)
                inputs = [grpcclient.InferInput("INPUT0", [batch, DIM], "INT32"),
                          grpcclient.InferInput("INPUT1", [batch, DIM], "INT32")]
                inputs[0].set_data_from_numpy(a)
                inputs[1].set_data_from_numpy(b)
                record = {"start": time.time(), "ok": False, "worker": None, "error": None}
                try:
                    result = client.infer("simple", inputs, client_timeout=args.request_timeout)
                    params = result.get_response().parameters
                    if "fulcrum.worker" in params:
                        record["worker"] = params["fulcrum.worker"].string_param
                    if not (np.array_equal(result.as_numpy("OUTPUT0"), a + b)
                            and np.array_equal(result.as_numpy("OUTPUT1"), a - b)):
                        record["error"] = "wrong outputs"
                    else:
                        record["ok"] = True
                except Exception as e:  # noqa: BLE001 - every failure is reported
                    record["error"] = f"{type(e).__name__}: {e}"
                record["end"] = time.time()
                emit(record)
                stop.wait(args.pace)
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(seed,), daemon=True) for seed in range(args.threads)]
    for t in threads:
        t.start()
    stop.wait(args.seconds)
    stop.set()
    for t in threads:
        t.join(args.request_timeout + 5)
    return 0


def probe(args: argparse.Namespace) -> int:
    result = {}
    for target in args.targets:
        host, _, port = target.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=args.timeout):
                result[target] = "open"
        except socket.timeout:
            result[target] = "timeout"
        except ConnectionRefusedError:
            result[target] = "refused"
        except OSError as e:
            result[target] = "timeout" if e.errno in (errno.ETIMEDOUT, errno.EHOSTUNREACH) else f"error: {e}"
    print(json.dumps(result))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("stream", help="send predictions, one JSON line per request")
    s.add_argument("url", help="host:port of a frontend's gRPC endpoint")
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--threads", type=int, default=3)
    s.add_argument("--pace", type=float, default=0.02, help="seconds each thread waits between requests")
    s.add_argument("--request-timeout", type=float, default=10.0)
    p = sub.add_parser("probe", help="try a TCP connection to each host:port")
    p.add_argument("targets", nargs="+")
    p.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    return stream(args) if args.command == "stream" else probe(args)


if __name__ == "__main__":
    sys.exit(main())
