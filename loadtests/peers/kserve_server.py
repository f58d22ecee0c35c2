"""KServe's Python model server serving one ONNX model with onnxruntime, over the open inference
protocol (v2) on gRPC (and REST, which the comparison does not use).

    .venv/kserve/bin/python kserve_server.py --model-dir ../../examples/models/ranking_mlp \
        --model-name ranking_mlp --grpc-port 9101 --http-port 9100

A custom `kserve.Model`: `load` opens an onnxruntime session, `get_input_types` and
`get_output_types` answer ModelMetadata from the ONNX graph (a leading symbolic dimension
becomes -1, as in Triton's metadata), and `predict` runs the session on the request's tensors.
Per-request latency logging is off (as Fulcrum runs with --log-level warning).
"""

import argparse
import glob
import logging
import os
import sys

import numpy as np
import onnxruntime as ort

# ONNX element type (as onnxruntime spells it) -> open inference protocol datatype.
DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int16)": "INT16",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(bool)": "BOOL",
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="Triton-layout model folder (<dir>/<version>/model.onnx)")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--grpc-port", type=int, default=9101)
    parser.add_argument("--http-port", type=int, default=9100)
    parser.add_argument("--intra-op-threads", type=int, default=1, help="onnxruntime intra-op threads")
    args, _ = parser.parse_known_args()
    return args


def main():
    args = parse_args()
    # kserve parses sys.argv itself at import (parse_known_args); hand it only its own flags.
    sys.argv = [sys.argv[0], "--enable_latency_logging", "false"]
    import kserve
    from kserve import InferOutput, InferRequest, InferResponse

    class OnnxModel(kserve.Model):
        def __init__(self, name, path, threads):
            super().__init__(name)
            self.path = path
            self.threads = threads
            self.session = None
            self.ready = False

        def load(self):
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
            self.ready = True
            return self.ready

        @staticmethod
        def _describe(values):
            return [
                {
                    "name": v.name,
                    "datatype": DATATYPES[v.type],
                    "shape": [d if isinstance(d, int) else -1 for d in v.shape],
                }
                for v in values
            ]

        def get_input_types(self):
            return self._describe(self.session.get_inputs())

        def get_output_types(self):
            return self._describe(self.session.get_outputs())

        def predict(self, payload: InferRequest, headers=None, response_headers=None):
            feeds = {tensor.name: tensor.as_numpy() for tensor in payload.inputs}
            names = [o.name for o in self.session.get_outputs()]
            results = self.session.run(names, feeds)
            outputs = []
            for name, value in zip(names, results):
                output = InferOutput(name=name, shape=list(value.shape), datatype=DATATYPES[f"tensor({_ort_name(value.dtype)})"])
                output.set_data_from_numpy(np.ascontiguousarray(value), binary_data=True)
                outputs.append(output)
            return InferResponse(response_id=payload.id, model_name=self.name, infer_outputs=outputs, use_binary_outputs=True)

    paths = sorted(glob.glob(os.path.join(args.model_dir, "*", "model.onnx")))
    if not paths:
        sys.exit(f"kserve_server: no <version>/model.onnx under {args.model_dir}")
    model = OnnxModel(args.model_name, paths[-1], args.intra_op_threads)
    model.load()
    server = kserve.ModelServer(
        http_port=args.http_port, grpc_port=args.grpc_port, enable_grpc=True, workers=1, enable_latency_logging=False
    )
    # After ModelServer, which configures kserve's logging: warnings only.
    for name in ("", "kserve", "kserve.trace", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)
    server.start([model])


def _ort_name(dtype):
    return {
        np.dtype("float32"): "float",
        np.dtype("float64"): "double",
        np.dtype("float16"): "float16",
        np.dtype("int64"): "int64",
        np.dtype("int32"): "int32",
        np.dtype("int16"): "int16",
        np.dtype("int8"): "int8",
        np.dtype("uint8"): "uint8",
        np.dtype("bool"): "bool",
    }[np.dtype(dtype)]


if __name__ == "__main__":
    main()
