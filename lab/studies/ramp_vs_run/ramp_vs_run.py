"""The engine's step GPU times in the calibration ramp and in a validation run, on one machine, one process.

The 1B's decode iterations in the H100 validation runs took 4-5% longer than the calibration ramp's at the same
batch and context, with the same code and knobs. This replays the ramp (engine.calibrate.ramp_trace) and a
committed validation trace back to back on one model and writes both step logs (with each step's CUDA-event
GPU time), so the comparison can be made per batch on the CPU:

    python -m lab.studies.ramp_vs_run.ramp_vs_run --model llama-3.2-1b --trace data/validation/llama-3.2-1b_H100-SXM_poisson-0.4 \
        --dec64 0.00212 --out $OUT
    python -m lab.studies.ramp_vs_run.ramp_vs_run --summarise OUT/*.steps.csv   # the summary alone
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch
from host_gap import decode_iterations


def summarise(path: Path) -> str:
    """Mean iteration (schedule to next schedule) and GPU time of the decode-only steps per batch range."""
    its = decode_iterations(path)  # (batch, iteration, GPU time, scheduling) per decode-only step
    out = [f"{path.name}: {len(its)} decode iterations"]
    for lo, hi in [(1, 2), (2, 4), (4, 8), (8, 12), (12, 16), (16, 24), (24, 32), (32, 48), (48, 65)]:
        s = (its[:, 0] >= lo) & (its[:, 0] < hi)
        if s.sum() >= 30:
            out.append(f"  batch [{lo:2d},{hi:2d}) n={s.sum():5d} iteration {its[s, 1].mean() * 1e3:.3f} ms, "
                       f"GPU {its[s, 2].mean() * 1e3:.3f} ms, outside the GPU {np.mean(its[s, 1] - its[s, 2]) * 1e3:.3f} ms")
    return "\n".join(out)


def main():
    from contract.catalog import MODELS
    from contract.records import write_records
    from engine.calibrate import ramp_trace
    from engine.llm import LLM, EngineConfig, records, release_gpu_memory
    from engine.sequence import SamplingParams
    from engine.weights import build_model
    from lab.validation_runs import KNOBS, LENGTHS, write_steps
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--trace", help="validation run stem (its .trace.csv and .meta.json)")
    ap.add_argument("--dec64", type=float, default=0.00212, help="batch-64 decode step seconds (the ramp's rate scale)")
    ap.add_argument("--order", default="ramp,run,ramp")
    ap.add_argument("--out", default="out")
    ap.add_argument("--summarise", nargs="*", help="only print the per-batch summary of these step logs")
    a = ap.parse_args()
    if a.summarise is not None:
        print("\n".join(summarise(Path(p)) for p in a.summarise))
        return
    if not a.trace:
        ap.error("--trace (a validation run stem) is needed to replay")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = json.loads(Path(a.trace + ".meta.json").read_text())
    rows = list(csv.DictReader(open(a.trace + ".trace.csv")))
    run_tr = {"t": np.array([float(r["TIMESTAMP"]) for r in rows]),
              "in": np.array([int(r["ContextTokens"]) for r in rows]),
              "out": np.array([int(r["GeneratedTokens"]) for r in rows])}
    rate = KNOBS["max_num_seqs"] / (sum(LENGTHS["output"]) / 2 * a.dec64)
    model = build_model(MODELS[a.model], seed=0, dtype=torch.bfloat16, device="cuda")
    for i, what in enumerate(a.order.split(",")):
        tr = ramp_trace(rate) if what == "ramp" else run_tr
        llm = LLM(EngineConfig(model=a.model, kernels=True, num_blocks=meta["num_blocks"], **KNOBS), model=model)
        llm.generate([[1] * 64] * 2, SamplingParams(max_tokens=4))
        llm.log_steps = True
        seqs = llm.replay(tr["t"], tr["in"], tr["out"], seed=11 if what == "ramp" else 0)
        write_steps(out / f"{i}_{what}.steps.csv", llm.step_log)
        if what == "run":  # the request records too: metrics of repeated replays of one trace
            write_records(out / f"{i}_{what}.records.csv", records(seqs))
        g = [r[11] for r in llm.step_log if r[4]]
        print(f"{i} {what}: {len(llm.step_log)} steps, decode GPU median {np.median(g) * 1e3:.3f} ms", flush=True)
        print(summarise(out / f"{i}_{what}.steps.csv"), flush=True)
        del llm
        release_gpu_memory()


if __name__ == "__main__":
    main()
