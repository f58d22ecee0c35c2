#!/usr/bin/env python3
"""Times a model in onnxruntime, in process, for fulcrum-bench (same inputs rule, same threads).

    .venv/bin/python loadtests/runtime_bench.py MODEL.onnx --batch 1,8,64 --threads 1 [--seq 128] [--seconds 2]

Prints one JSON object per batch size: {"batch", "threads", "samples_per_s", "ms_per_batch", "runs"}.
Inputs: FP32 standard normal; INT64 inputs whose name contains "mask" are 1, other INT64 values
are in 0..99; -1 (symbolic) dimensions after the batch take --seq.
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--batch", default="1,8,64")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for batch in [int(b) for b in args.batch.split(",")]:
        feeds = {}
        for i in session.get_inputs():
            shape = [batch] + [d if isinstance(d, int) and d > 0 else args.seq for d in i.shape[1:]]
            if i.type == "tensor(float)":
                feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
            elif "mask" in i.name:
                feeds[i.name] = np.ones(shape, dtype=np.int64)
            else:
                feeds[i.name] = rng.integers(0, 100, shape).astype(np.int64)
        for _ in range(10):
            session.run(None, feeds)
        runs, start = 0, time.perf_counter()
        while True:
            session.run(None, feeds)
            runs += 1
            elapsed = time.perf_counter() - start
            if elapsed >= args.seconds and runs >= 5:
                break
        print(json.dumps({"batch": batch, "threads": args.threads, "samples_per_s": runs * batch / elapsed,
                          "ms_per_batch": elapsed / runs * 1000, "runs": runs}), flush=True)


if __name__ == "__main__":
    main()
