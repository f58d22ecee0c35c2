# Sourced by loadtests/crosscheck and loadtests/peers/compare: finds the Fulcrum binaries and
# starts or stops a local cluster with `fulcrum up` on free loopback ports.
#
#   fulcrum_bin_dir ROOT            -> sets BIN_DIR ($FULCRUM_BIN_DIR, else .build/release, else .build/debug)
#   fulcrum_cluster_start WORK N [ARG...] -> sets CLUSTER_PID, FULCRUM_GRPC, FULCRUM_BALANCER (N workers; ARGs: more `fulcrum up` flags)
#   fulcrum_cluster_stop            -> SIGTERM, then SIGKILL after 20 s

fulcrum_bin_dir() {
    local root="$1"
    if [[ -n "${FULCRUM_BIN_DIR:-}" ]]; then
        BIN_DIR="$FULCRUM_BIN_DIR"
    elif [[ -x "$root/.build/release/fulcrum" ]]; then
        BIN_DIR="$root/.build/release"
    else
        BIN_DIR="$root/.build/debug"
    fi
    [[ "$BIN_DIR" = /* ]] || BIN_DIR="$root/$BIN_DIR"
    if [[ ! -x "$BIN_DIR/fulcrum" ]]; then
        echo "$BIN_DIR/fulcrum is missing: build first (swift build -c release) or set FULCRUM_BIN_DIR" >&2
        return 1
    fi
}

fulcrum_cluster_start() {
    local work="$1" workers="$2" root
    shift 2
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    "$BIN_DIR/fulcrum" up --model-repository "$root/examples/models" --workers "$workers" \
        --grpc-port 0 --http-port 0 --balancer-port 0 --log-level warning \
        --endpoints-file "$work/endpoints.json" "$@" >"$work/up.out" 2>"$work/up.err" &
    CLUSTER_PID=$!
    for _ in $(seq 1 1800); do
        [[ -s "$work/endpoints.json" ]] && break
        if ! kill -0 "$CLUSTER_PID" 2>/dev/null; then
            echo "fulcrum up exited before it was ready:" >&2; tail -30 "$work/up.err" >&2; return 1
        fi
        sleep 0.1
    done
    [[ -s "$work/endpoints.json" ]] || { echo "the cluster was not ready after 180 s" >&2; tail -30 "$work/up.err" >&2; return 1; }
    FULCRUM_GRPC="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$work/endpoints.json")"
    FULCRUM_BALANCER="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["balancer"])' "$work/endpoints.json")"
}

fulcrum_cluster_stop() {
    if [[ -n "${CLUSTER_PID:-}" ]] && kill -0 "$CLUSTER_PID" 2>/dev/null; then
        kill -TERM "$CLUSTER_PID" 2>/dev/null || true
        for _ in $(seq 1 200); do kill -0 "$CLUSTER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$CLUSTER_PID" 2>/dev/null || true
    fi
    CLUSTER_PID=""
}
