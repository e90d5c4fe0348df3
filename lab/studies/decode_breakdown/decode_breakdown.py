"""Where a batch-1 decode step's GPU time goes, kernel by kernel, inside the CUDA graph.

    python -m lab.studies.decode_breakdown.decode_breakdown --model llama-3.1-8b [--no-kernels] [--batch 1]
        [--quantization fp8|int8] [--out x.json]

Serves `batch` sequences (200-token prompts) in steady decode, profiles 20 steps with torch.profiler
(CUPTI reports the kernels a graph replay runs) and prints, per kernel name: launches and microseconds per
step, bytes it must read where that is known (the weights of a GEMM), and the idle gaps between kernels.
The roofline step is weight + KV bytes over the copy bandwidth measured in the same run.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from contract.catalog import MODELS
from engine.calibrate import copy_bandwidth
from engine.llm import LLM, EngineConfig, quiet_gc
from engine.sequence import SamplingParams
from planner.memory import kv_bytes_per_token


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.1-8b")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--no-kernels", action="store_true")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--quantization", default=None, choices=("fp8", "int8"), help="8-bit weights (default bf16)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    spec = MODELS[a.model]
    bw = copy_bandwidth()
    quant = {"quantization": a.quantization} if a.quantization else {}
    llm = LLM(EngineConfig(model=a.model, kernels=not a.no_kernels, **quant, async_decode=True, num_blocks=4096,
                           max_num_seqs=max(a.batch, 1), max_num_batched_tokens=4096, piecewise_graphs=False))
    g = torch.Generator().manual_seed(0)
    with quiet_gc():
        for _ in range(a.batch):
            llm.add(torch.randint(0, spec.vocab_size, (200,), generator=g).tolist(), SamplingParams(max_tokens=400))
        for _ in range(40):
            llm.step()
        torch.cuda.synchronize()
        ctx = sum(s.num_computed for s in llm.sched.running) / a.batch
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(a.steps):
                llm.step()
            torch.cuda.synchronize()
    ev = sorted(((e.time_range.start, e.time_range.end, e.name) for e in prof.events()
                 if e.device_type == torch.autograd.DeviceType.CUDA), key=lambda x: x[0])
    per = defaultdict(lambda: [0, 0.0])
    gaps, busy, prev_end = [], 0.0, None
    for s, e, n in ev:
        per[n][0] += 1
        per[n][1] += e - s
        if prev_end is not None and s > prev_end:
            gaps.append(s - prev_end)
        busy += max(0.0, e - max(s, prev_end or s))
        prev_end = e if prev_end is None else max(prev_end, e)
    n = a.steps
    span = (ev[-1][1] - ev[0][0]) / n
    small_gaps = sum(x for x in gaps if x < 50) / n  # between kernels of one graph (not host stalls)
    wbytes = 1 if a.quantization else 2  # decoder projections; embeddings and LM head stay bf16
    roof = (wbytes * spec.num_layers * spec.linear_params_per_layer + 2 * spec.vocab_size * spec.hidden_size
            + a.batch * ctx * kv_bytes_per_token(spec)) / bw * 1e6
    rows = sorted(((v[1] / n, v[0] / n, k) for k, v in per.items()), reverse=True)
    print(f"{a.model} {a.quantization or 'bf16'} batch {a.batch}, context ~{ctx:.0f}, kernels={not a.no_kernels}: "
          f"copy {bw / 1e12:.2f} TB/s, "
          f"roofline {roof:.0f} us/step")
    print(f"per step: span {span:.0f} us, kernels busy {busy / n:.0f} us, gaps <50us between kernels "
          f"{small_gaps:.0f} us, larger gaps {(sum(gaps) / n - small_gaps):.0f} us, launches {len(ev) / n:.0f}")
    print(f"{'us/step':>8} {'launches':>8} {'us each':>8}  kernel")
    for t, c, k in rows:
        print(f"{t:8.1f} {c:8.1f} {t / c:8.2f}  {k[:110]}")
    if a.out:
        Path(a.out).write_text(json.dumps({"model": a.model, "quantization": a.quantization or "bf16",
                                           "batch": a.batch, "context": ctx, "gpu":
                                           torch.cuda.get_device_name(), "copy_tb_s": bw / 1e12,
                                           "roofline_us": roof, "span_us": span, "busy_us": busy / n,
                                           "small_gaps_us": small_gaps, "launches": len(ev) / n,
                                           "kernels": [{"name": k, "us_per_step": t, "launches_per_step": c}
                                                       for t, c, k in rows]}, indent=2))


if __name__ == "__main__":
    main()
