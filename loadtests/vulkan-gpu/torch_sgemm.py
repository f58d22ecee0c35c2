#!/usr/bin/env python3
"""cuBLAS FP32 sgemm through PyTorch, for the Vulkan backend's GPU benchmark (loadtests/vulkan-gpu).

TF32 is switched off so the comparison is FP32 against FP32. Each shape: 3 warm-up products, then
`iterations` products timed with CUDA events; prints one JSON line per shape like
`fulcrum-bench vulkan-sgemm` does, plus the card's FP32 peak from nvidia-smi's max SM clock.
Usage: torch_sgemm.py --shapes 4096x4096x4096,... [--iterations 20]
"""
import argparse
import json
import subprocess

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", required=True)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    props = torch.cuda.get_device_properties(0)
    try:
        mhz = float(subprocess.check_output(
            ["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"], text=True).split()[0])
    except Exception:
        mhz = 0.0
    # Hopper and Ampere data-centre parts: 128 FP32 lanes per SM, 2 flops per FMA.
    peak = props.multi_processor_count * 128 * 2 * mhz * 1e6 / 1e9
    print(json.dumps({"device": props.name, "sms": props.multi_processor_count, "max_sm_mhz": mhz,
                      "fp32_peak_gflops": round(peak), "torch": torch.__version__}))
    for shape in args.shapes.split(","):
        m, n, k = (int(x) for x in shape.split("x"))
        a = torch.randn(m, k, device="cuda", dtype=torch.float32)
        b = torch.randn(k, n, device="cuda", dtype=torch.float32)
        for _ in range(3):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(args.iterations):
            torch.matmul(a, b)
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / args.iterations
        print(json.dumps({"m": m, "n": n, "k": k, "variant": "cublas", "gflops": round(2 * m * n * k / ms / 1e6, 1),
                          "ms_per_gemm": round(ms, 4), "device": props.name}))


if __name__ == "__main__":
    main()
