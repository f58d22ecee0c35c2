"""The sentence-embedding service as one Python process: KServe's model server with a custom
`kserve.Model` that tokenizes (the `tokenizers` package), runs paraphrase-MiniLM-L3-v2 in
onnxruntime (1 intra-op thread) and mean-pools with NumPy — the same work Fulcrum's `embed`
pipeline splits between its frontend and its compute pool, on the same files.

    loadtests/peers/.venv/kserve/bin/python kserve_embed_server.py --repository DIR \
        --grpc-port 9101 --http-port 9100

DIR is a model repository holding minilm/1/model.onnx and sentence_tokenizer/1/tokenizer.json
(scripts/fetch-embedding-model DIR). The model is named `embed`: input `text` BYTES [-1, 1],
output `embedding` FP32 [-1, 384], as Fulcrum's.
"""

import argparse
import logging
import os
import sys

import numpy as np
import onnxruntime as ort


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", required=True)
    parser.add_argument("--grpc-port", type=int, default=9101)
    parser.add_argument("--http-port", type=int, default=9100)
    parser.add_argument("--max-length", type=int, default=128)
    args, _ = parser.parse_known_args()
    return args


def main():
    args = parse_args()
    sys.argv = [sys.argv[0], "--enable_latency_logging", "false"]
    import kserve
    from kserve import InferOutput, InferRequest, InferResponse
    from tokenizers import Tokenizer

    class EmbedModel(kserve.Model):
        def __init__(self):
            super().__init__("embed")
            self.ready = False

        def load(self):
            self.tokenizer = Tokenizer.from_file(os.path.join(args.repository, "sentence_tokenizer", "1", "tokenizer.json"))
            self.tokenizer.enable_truncation(args.max_length)
            self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self.session = ort.InferenceSession(os.path.join(args.repository, "minilm", "1", "model.onnx"), options,
                                                providers=["CPUExecutionProvider"])
            self.ready = True
            return True

        def get_input_types(self):
            return [{"name": "text", "datatype": "BYTES", "shape": [-1, 1]}]

        def get_output_types(self):
            return [{"name": "embedding", "datatype": "FP32", "shape": [-1, 384]}]

        def predict(self, payload: InferRequest, headers=None, response_headers=None):
            texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in payload.inputs[0].as_numpy().reshape(-1)]
            encodings = self.tokenizer.encode_batch(texts)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            (tokens,) = self.session.run(["onnx::Shape_422"], {"input_ids": ids, "attention_mask": mask})
            weights = mask[:, :, None].astype(np.float32)
            pooled = (tokens * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
            output = InferOutput(name="embedding", shape=list(pooled.shape), datatype="FP32")
            output.set_data_from_numpy(np.ascontiguousarray(pooled, dtype=np.float32), binary_data=True)
            return InferResponse(response_id=payload.id, model_name=self.name, infer_outputs=[output], use_binary_outputs=True)

    model = EmbedModel()
    model.load()
    server = kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, enable_grpc=True, workers=1,
                                enable_latency_logging=False)
    for name in ("", "kserve", "kserve.trace", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)
    server.start([model])


if __name__ == "__main__":
    main()
