"""FP8 KV cache against a bf16 one in the engine's decode, measured in the same run on one GPU, beside the
planner's prediction for the same steps (H100 product profile).

    python bench/kv_fp8_decode.py --out kv_fp8.json        # on a GPU, about 2 minutes
    python bench/kv_fp8_decode.py --compare bench/results/kv_fp8_decode_h100.json   # here: the planner's side again

Llama-3.1-8B shape (random bf16 weights), kernels and CUDA graphs on: 64 sequences of 2000-token prompts
decode 48 tokens each, so decode steps read about 130k tokens of KV per layer -- the part of the step an FP8
cache halves. Per cache format: the median decode step at batch 64, and which attention path served it (a
fallback to the PyTorch gather path is what made FP8 KV 4.8x slower per step before the kernel read FP8).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

BATCH, PROMPT, NEW = 64, 2000, 48
MODEL = "llama-3.1-8b"


def measure(kv: str) -> dict:
    import torch

    from engine.config import EngineConfig
    from engine.llm import LLM, release_gpu_memory
    from engine.sequence import SamplingParams
    llm = LLM(EngineConfig(model=MODEL, kernels=True, kv_cache_dtype=kv, max_num_seqs=BATCH,
                           max_num_batched_tokens=8192, max_model_len=4096))
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, 128000, (PROMPT,), generator=g).tolist() for _ in range(BATCH)]
    llm.generate(prompts[:4], SamplingParams(max_tokens=8))  # shapes warm
    dec, _ = llm.timed_decode_steps(prompts, NEW)
    ctx = PROMPT + NEW // 2
    r = {"kv_cache_dtype": kv, "decode_b64_step_s": statistics.median(dec), "steps": len(dec),
         "context_per_seq": ctx, "kernel_fallbacks": llm.kernel_fallbacks, "num_blocks": llm.num_blocks}
    print(f"engine, KV {kv}: decode b{BATCH} at ~{ctx} tokens of context {r['decode_b64_step_s'] * 1e3:.2f} ms/step "
          f"({len(dec)} steps); fallbacks: {r['kernel_fallbacks'] or 'none'}", flush=True)
    llm.shutdown()
    del llm
    release_gpu_memory()
    return r


def predicted(kv: str, profile: Path) -> float:
    """The planner's decode step for the same batch and context (calibrated model, H100 product profile)."""
    from contract.catalog import GPUS, MODELS
    from planner.cost.calibrated import CalibratedCostModel
    m = CalibratedCostModel.from_profile(profile, MODELS[MODEL], GPUS["H100-SXM"], kv_cache_dtype=kv)
    return m.decode_time(BATCH, BATCH * (PROMPT + NEW // 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("--profile", type=Path, default=Path("planner/data/profiles/h100.json.gz"))
    ap.add_argument("--compare", type=Path, help="a committed measurement: recompute the planner's side only")
    a = ap.parse_args()
    if a.compare:
        res = json.loads(a.compare.read_text())
        rows = res["rows"]
    else:
        import torch
        rows = [measure(kv) for kv in ("auto", "fp8")]
    for r in rows:
        r["planner_decode_step_s"] = predicted(r["kv_cache_dtype"], a.profile)
        r["planner_error"] = r["planner_decode_step_s"] / r["decode_b64_step_s"] - 1
    b, f = rows
    if not a.compare:
        res = {"device": torch.cuda.get_device_name(), "model": MODEL, "batch": BATCH, "prompt": PROMPT, "new": NEW}
    res.update(rows=rows, fp8_speedup=b["decode_b64_step_s"] / f["decode_b64_step_s"],
               planner_fp8_speedup=b["planner_decode_step_s"] / f["planner_decode_step_s"])
    for r in rows:
        print(f"KV {r['kv_cache_dtype']:4}: measured {r['decode_b64_step_s'] * 1e3:.2f} ms, planner "
              f"{r['planner_decode_step_s'] * 1e3:.2f} ms ({r['planner_error']:+.1%})")
    print(f"FP8 KV vs bf16 KV, decode step at batch {BATCH}: measured {res['fp8_speedup']:.2f}x, "
          f"planner {res['planner_fp8_speedup']:.2f}x")
    if a.out and not a.compare:
        a.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
