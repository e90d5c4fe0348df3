"""Batch-1 bf16 GEMV kernel vs cuBLAS (F.linear) on the 1B / 8B layer shapes, on the GPU.

    python bench/gemv.py --out bench/results/gemv_h100.json

Each timing is a CUDA graph of 24 calls cycling through weight copies larger than L2 (so every call reads
its weights from HBM), median of 7 replays; TB/s = weight bytes / time, against the copy bandwidth measured
in the same run.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

from contract.catalog import MODELS
from engine.calibrate import copy_bandwidth
from kernels import gemv

SHAPES = {}
for name in ("llama-3.2-1b", "llama-3.1-8b"):
    m = MODELS[name]
    H, I, hd = m.hidden_size, m.intermediate_size, m.hd
    SHAPES.update({f"{name} qkv": ((m.num_attention_heads + 2 * m.num_key_value_heads) * hd, H),
                   f"{name} o": (H, m.num_attention_heads * hd), f"{name} gate_up": (2 * I, H),
                   f"{name} down": (H, I)})


def timed(fn_for, copies: int) -> float:
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        for i in range(copies):
            fn_for(i)
    torch.cuda.synchronize()
    with torch.cuda.graph(g):
        for i in range(24):
            fn_for(i % copies)
    ts = []
    for _ in range(7):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / 1e3 / 24)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    bw = copy_bandwidth()
    print(f"{torch.cuda.get_device_name()}: copy bandwidth {bw / 1e12:.2f} TB/s")
    rows = []
    print(f"{'layer':24} {'N x K':>13} {'cuBLAS us':>10} {'gemv us':>8} {'config':>7} {'gemv TB/s':>10} {'x cuBLAS':>9}")
    for label, (N, K) in SHAPES.items():
        nbytes = N * K * 2
        copies = max(2, -(-(200 << 20) // nbytes))
        ws = [torch.randn(N, K, device="cuda").bfloat16() * 0.02 for _ in range(copies)]
        x = torch.randn(1, K, device="cuda").bfloat16()
        ys = torch.empty(1, N, device="cuda", dtype=torch.bfloat16)
        cub = timed(lambda i: F.linear(x, ws[i]), copies)
        best = min(((timed(lambda i: gemv.gemv(x, ws[i], out=ys, config=c), copies), c)
                    for c in gemv.SWEEP), key=lambda t: t[0])
        dflt = timed(lambda i: gemv.gemv(x, ws[i], out=ys), copies)
        rows.append({"layer": label, "n": N, "k": K, "cublas_s": cub, "gemv_s": dflt, "gemv_best_s": best[0],
                     "best_config": list(best[1]), "gemv_tb_s": nbytes / dflt / 1e12,
                     "cublas_tb_s": nbytes / cub / 1e12, "used_by_engine": N * K <= gemv.MAX_WEIGHT and K <= gemv.MAX_K})
        print(f"{label:24} {N:6d}x{K:<6d} {cub * 1e6:10.1f} {dflt * 1e6:8.1f} {str(gemv.CONFIG):>7} "
              f"{nbytes / dflt / 1e12:10.2f} {cub / dflt:8.2f}x   (best {best[1]}: {best[0] * 1e6:.1f} us)")
        del ws
    # the norm in front of the QKV and gate/up projections: separate add_rmsnorm launch + cuBLAS (the engine
    # before), + our GEMV, and the fused norm-GEMV (kernels/cuda/gemv.cu norm_gemv_bf16)
    from kernels import fused
    fused_rows = []
    print(f"\n{'norm + projection':24} {'N x K':>13} {'norm+cuBLAS':>11} {'norm+gemv':>10} {'fused':>8} "
          f"{'x norm+cuBLAS':>14}")
    for label, (N, K) in SHAPES.items():
        if not label.endswith(("qkv", "gate_up")):
            continue
        nbytes = N * K * 2
        copies = max(2, -(-(200 << 20) // nbytes))
        ws = [torch.randn(N, K, device="cuda").bfloat16() * 0.02 for _ in range(copies)]
        x, res = torch.randn(1, K, device="cuda").bfloat16(), torch.randn(1, K, device="cuda").bfloat16()
        nw = torch.ones(K, device="cuda", dtype=torch.bfloat16)
        ys = torch.empty(1, N, device="cuda", dtype=torch.bfloat16)
        two_cub = timed(lambda i: F.linear(fused.add_rmsnorm(x, res, nw, 1e-5)[0], ws[i]), copies)
        two_gemv = timed(lambda i: gemv.gemv(fused.add_rmsnorm(x, res, nw, 1e-5)[0], ws[i], out=ys), copies)
        one = timed(lambda i: gemv.norm_gemv(x, res, nw, 1e-5, ws[i]), copies)
        fused_rows.append({"layer": label, "n": N, "k": K, "norm_cublas_s": two_cub, "norm_gemv_s": two_gemv,
                           "fused_s": one, "fused_tb_s": nbytes / one / 1e12})
        print(f"{label:24} {N:6d}x{K:<6d} {two_cub * 1e6:11.1f} {two_gemv * 1e6:10.1f} {one * 1e6:8.1f} "
              f"{two_cub / one:13.2f}x")
        del ws
    if a.out:
        Path(a.out).write_text(json.dumps({"gpu": torch.cuda.get_device_name(), "copy_bandwidth_tb_s": bw / 1e12,
                                           "rows": rows, "norm_rows": fused_rows}, indent=1))


if __name__ == "__main__":
    main()
