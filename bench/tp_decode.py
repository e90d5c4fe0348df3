"""Decode step of Llama-3.1-8B at TP 1, 2 (and 4 where four GPUs are present), batches 1/16/64/256, measured on
GPUs, beside the planner's prediction for the same step.

    python bench/tp_decode.py --measure --out tp_decode.json          # on a machine with 2+ GPUs (~2 min)
    python bench/tp_decode.py --compare bench/results/tp_decode_h100x4.json \\
        [--profile planner/data/profiles/h100.json.gz]                # here: the table against the planner

A decode step is timed as the calibrated model defines one: from one iteration's scheduling to the next's
(the forward, sampling and the host's bookkeeping), median over the steps of a batch whose sequences all
decode, prompts of 512 tokens.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

BATCHES = (1, 16, 64, 256)
PROMPT, NEW = 512, 48


def measure(tps, kernels: bool, out: Path | None = None) -> list[dict]:
    import torch

    from engine.config import EngineConfig
    from engine.llm import LLM, release_gpu_memory
    from engine.sequence import SamplingParams
    rows = []
    for tp in tps:
        llm = None
        for k, graphs in ((kernels, True), (False, True), (False, False)):
            try:
                llm = LLM(EngineConfig(model="llama-3.1-8b", tensor_parallel_size=tp, kernels=k, cuda_graphs=graphs,
                                       max_num_seqs=256, max_num_batched_tokens=8192, max_model_len=2048))
                break
            except Exception as e:  # a failed start is a result too: say it, try the next setup
                print(f"TP={tp} kernels={k} graphs={graphs}: engine did not start: {e!r}", flush=True)
                release_gpu_memory()
        if llm is None:
            continue
        g = torch.Generator().manual_seed(tp)
        for b in BATCHES:
            prompts = [torch.randint(0, 128000, (PROMPT,), generator=g).tolist() for _ in range(b)]
            llm.generate(prompts[:2], SamplingParams(max_tokens=4))  # warm the shapes
            its, lg = llm.timed_decode_steps(prompts, NEW)  # b decodes, the next step one too
            ctx = [cur[6] / b for cur in lg if cur[4] and cur[3] == b]
            row = {"tp": tp, "batch": b, "steps": len(its), "step_s": statistics.median(its),
                   "mean_context": statistics.mean(ctx), "kernels": llm.kernels_active,
                   "cuda_graphs": llm.runner.use_graphs,
                   "device": torch.cuda.get_device_name()}
            rows.append(row)
            print(f"TP={tp} batch {b:3d}: {row['step_s'] * 1e3:7.2f} ms ({len(its)} steps, context "
                  f"{row['mean_context']:.0f})", flush=True)
        if out:  # written after each TP degree: a later one that fails or hangs loses only itself
            out.write_text(json.dumps({"rows": rows}, indent=1))
        llm.shutdown()
        del llm
        release_gpu_memory()
        time.sleep(1)
    return rows


def compare(path: Path, profile: str) -> str:
    from contract.catalog import GPUS, MODELS
    from planner.cost import CalibratedCostModel
    data = json.loads(path.read_text())
    gpu = GPUS["H100-SXM" if "H100" in data["rows"][0]["device"] else "H200"]
    lines = [f"Decode step of llama-3.1-8b, measured ({path.name}, {data['rows'][0]['device']}) against the "
             f"calibrated planner ({Path(profile).name}):", "",
             "| TP | batch | measured ms | planner ms | error | planner breakdown (ms) |", "|---|---|---|---|---|---|"]
    worst = 0.0
    for r in data["rows"]:
        m = CalibratedCostModel.from_profile(profile, MODELS["llama-3.1-8b"], gpu, tp=r["tp"],
                                             max_num_batched_tokens=8192)
        ctx = int(r["mean_context"] * r["batch"])
        pred = m.decode_time(r["batch"], ctx)
        bd = m.breakdown(r["batch"], r["batch"], ctx)
        err = pred / r["step_s"] - 1
        worst = max(worst, abs(err))
        parts = ", ".join(f"{k} {v * 1e3:.2f}" for k, v in bd.as_dict().items() if v and k != "total")
        lines.append(f"| {r['tp']} | {r['batch']} | {r['step_s'] * 1e3:.2f} | {pred * 1e3:.2f} | {err:+.1%} "
                     f"| {parts} |")
    tp1 = {r["batch"]: r["step_s"] for r in data["rows"] if r["tp"] == 1}
    lines += ["", "Speed-up of TP over TP=1 per step (measured): " + "; ".join(
        f"TP={r['tp']} b={r['batch']} {tp1[r['batch']] / r['step_s']:.2f}x" for r in data["rows"]
        if r["tp"] > 1 and r["batch"] in tp1), "", f"Largest prediction error: {worst:.1%}"]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--tps", default="1,2,4")
    ap.add_argument("--no-kernels", action="store_true")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", type=Path)
    ap.add_argument("--profile", default="planner/data/profiles/h100.json.gz")
    a = ap.parse_args()
    if a.measure:
        import torch
        tps = [t for t in map(int, a.tps.split(",")) if t <= torch.cuda.device_count()]
        measure(tps, not a.no_kernels, a.out)
        sys.stdout.flush()
        # a process that served under NCCL ends here: its communicators' teardown (graphs hold collectives)
        # can wait forever, and everything worth keeping is written
        os._exit(0)
    elif a.compare:
        sys.stdout.write(compare(a.compare, a.profile))
    else:
        ap.error("--measure (GPU) or --compare FILE")


if __name__ == "__main__":
    main()
