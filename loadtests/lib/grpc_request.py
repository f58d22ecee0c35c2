"""Pre-encodes one open inference protocol ModelInfer request as a gRPC message (the 5-byte
length prefix + the protobuf), for h2load's --data, and checks it against the server.

    python grpc_request.py encode --address HOST:PORT --model ranking_mlp --batch 1 --out request.grpc
    python grpc_request.py check  --address HOST:PORT --file request.grpc
    python grpc_request.py wait   --address HOST:PORT --model ranking_mlp --timeout 120

`encode` reads the model's metadata over gRPC (as `fulcrum loadtest` does) and makes one request
like the generator's: every input as raw little-endian contents, a leading -1 dimension = batch,
values random in [0, 1) for floats and [0, 100) for integers (numpy, seeded). `check` sends the
encoded bytes unchanged (a gRPC call with no serializer) and fails unless the server answers
OK with outputs: h2load sees only the HTTP status, not grpc-status, so this is the check that
its requests succeed. `wait` polls ModelReady until the model is ready and its metadata answers
(a server's readiness). Needs grpcio and tritonclient (the project's .venv).
"""

import argparse
import struct
import sys

import grpc
import numpy as np
from tritonclient.grpc import service_pb2 as pb

METHOD = "/inference.GRPCInferenceService/ModelInfer"
NUMPY = {
    "FP32": np.float32, "FP64": np.float64, "FP16": np.float16,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "BOOL": np.bool_,
}


def encode(args):
    channel = grpc.insecure_channel(args.address)
    metadata_call = channel.unary_unary(
        "/inference.GRPCInferenceService/ModelMetadata",
        request_serializer=pb.ModelMetadataRequest.SerializeToString,
        response_deserializer=pb.ModelMetadataResponse.FromString,
    )
    metadata = metadata_call(pb.ModelMetadataRequest(name=args.model), timeout=10)
    rng = np.random.default_rng(args.seed)
    request = pb.ModelInferRequest(model_name=args.model)
    for tensor in metadata.inputs:
        shape = [args.batch if (d < 0 and i == 0) else d for i, d in enumerate(tensor.shape)]
        if any(d < 0 for d in shape):
            sys.exit(f"grpc_request: input {tensor.name} has a variable non-batch dimension {list(tensor.shape)}")
        dtype = NUMPY.get(tensor.datatype)
        if dtype is None:
            sys.exit(f"grpc_request: datatype {tensor.datatype} of {tensor.name} not supported here")
        if np.issubdtype(dtype, np.floating):
            values = rng.random(shape).astype(dtype)
        elif dtype is np.bool_:
            values = rng.integers(0, 2, shape).astype(dtype)
        else:
            values = rng.integers(0, 100, shape).astype(dtype)
        request.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=shape)
        request.raw_input_contents.append(values.astype(values.dtype.newbyteorder("<")).tobytes())
    body = request.SerializeToString()
    with open(args.out, "wb") as f:
        f.write(struct.pack(">BI", 0, len(body)) + body)
    print(f"grpc_request: {args.out}: ModelInfer {args.model}, {len(metadata.inputs)} input(s), "
          f"{len(body)} bytes of protobuf + 5-byte gRPC prefix")


def check(args):
    data = open(args.file, "rb").read()
    flag, length = struct.unpack(">BI", data[:5])
    if flag != 0 or length != len(data) - 5:
        sys.exit(f"grpc_request: {args.file} is not one uncompressed gRPC message")
    channel = grpc.insecure_channel(args.address)
    call = channel.unary_unary(METHOD)  # bytes in, bytes out: the exact body h2load sends
    try:
        reply = call(data[5:], timeout=10)
    except grpc.RpcError as error:
        sys.exit(f"grpc_request: the pre-encoded request failed at {args.address}: {error.code()}: {error.details()}")
    response = pb.ModelInferResponse.FromString(reply)
    if not response.outputs:
        sys.exit("grpc_request: the response has no outputs")
    print(f"grpc_request: {args.address} answered OK: outputs "
          + ", ".join(f"{o.name} {o.datatype} {list(o.shape)}" for o in response.outputs))


def wait(args):
    import time
    deadline = time.monotonic() + args.timeout
    last = None
    while time.monotonic() < deadline:
        channel = grpc.insecure_channel(args.address)
        ready = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelReady",
            request_serializer=pb.ModelReadyRequest.SerializeToString,
            response_deserializer=pb.ModelReadyResponse.FromString,
        )
        metadata = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelMetadata",
            request_serializer=pb.ModelMetadataRequest.SerializeToString,
            response_deserializer=pb.ModelMetadataResponse.FromString,
        )
        try:
            if ready(pb.ModelReadyRequest(name=args.model), timeout=2).ready:
                metadata(pb.ModelMetadataRequest(name=args.model), timeout=2)
                channel.close()
                return
            last = "ModelReady: not ready"
        except grpc.RpcError as error:
            last = f"{error.code()}: {error.details()}"
        channel.close()
        time.sleep(0.5)
    sys.exit(f"grpc_request: {args.address} did not report {args.model} ready within {args.timeout:g} s ({last})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("encode")
    e.add_argument("--address", required=True)
    e.add_argument("--model", required=True)
    e.add_argument("--batch", type=int, default=1)
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--out", required=True)
    c = sub.add_parser("check")
    c.add_argument("--address", required=True)
    c.add_argument("--file", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--address", required=True)
    w.add_argument("--model", required=True)
    w.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    {"encode": encode, "check": check, "wait": wait}[args.command](args)


if __name__ == "__main__":
    main()
