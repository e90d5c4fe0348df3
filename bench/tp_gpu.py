"""Tensor parallelism on a machine with two or more GPUs (NCCL): TP=2 against TP=1's greedy tokens, and the
all-reduce table that `engine calibrate` adds to a profile on such a machine (20 back to back per timed
sample), beside the same measured one at a time after a barrier (which also times the ranks' launch skew).

    python bench/tp_gpu.py --out bench/results/tp_h200x2.json        # on the device, about a minute
    python bench/tp_gpu.py --compare bench/results/tp_h200x2.json    # here: the table against the planner's link model

Tokens: the tiny test model in float64 (no argmax near-ties) and the 1B in float32, random weights, the same
prompts at TP=1 (GPU 0) and TP=2 (GPUs 0 and 1). All-reduce: `engine.parallel.allreduce_table`, bf16 messages
of 4 KiB to 256 MiB, median of 10 per size, CUDA events on rank 0.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

PROMPTS = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [5, 6, 7], list(range(30, 80)), list(range(200, 456))]
CASES = [("tiny", torch.float64, 16), ("llama-3.2-1b", torch.float32, 24)]


def generate(name: str, dtype, max_tokens: int, rank: int = 0, tp: int = 1) -> list[list[int]]:
    from contract.catalog import MODELS
    from engine.config import tiny
    from engine.llm import LLM, EngineConfig
    from engine.sequence import SamplingParams
    from engine.weights import build_model
    spec = tiny() if name == "tiny" else MODELS[name]
    m = build_model(spec, seed=3, dtype=dtype, device="cuda", rank=rank, tp=tp)
    cfg = EngineConfig(model=name, num_blocks=512, block_size=16, max_num_batched_tokens=1024, cuda_graphs=False,
                       piecewise_graphs=False)
    llm = LLM(cfg, model=m)
    return [s.output for s in llm.generate(PROMPTS, SamplingParams(max_tokens=max_tokens))]


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.cuda.set_device(rank)
    from engine import parallel
    parallel.init(rank, world, backend="nccl", timeout_s=120)
    res = {name: generate(name, dtype, n, rank, world) for name, dtype, n in CASES}
    if rank == 0:
        Path(out).write_text(json.dumps(res))
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def compare(path: Path) -> None:
    """The measured all-reduce table against the roofline's link model for the same GPU (what a profile without
    a table, such as the product H100 profile, charges for TP)."""
    from contract.catalog import GPUS, MODELS
    from planner.cost import RooflineCostModel
    d = json.loads(path.read_text())
    gpu = "H200" if "H200" in d["device"] else "H100-SXM"
    print(f"{d['device']} x{d['gpus']}, NCCL {d['nccl']}: TP=2 vs TP=1 greedy tokens "
          + ", ".join(f"{k} {v['equal_sequences']}/{v['prompts']} sequences equal" for k, v in d["tokens"].items()))
    print("\n| bytes | measured (20 back to back) | one alone after a barrier | link model | measured / model |")
    print("|---|---|---|---|---|")
    for r, r1 in zip(d["allreduce"], d["allreduce_one_alone"]):
        rm = RooflineCostModel(MODELS["llama-3.1-8b"], GPUS[gpu], tp=r["tp"])
        model = rm.ar_lat + 2 * (r["tp"] - 1) / r["tp"] * r["bytes"] / rm.link
        print(f"| {r['bytes']:,} | {r['seconds'] * 1e6:.1f} us | {r1['seconds'] * 1e6:.1f} us | {model * 1e6:.1f} us | "
              f"{r['seconds'] / model:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", type=Path, help="a committed result: print it against the planner's link model")
    a = ap.parse_args()
    if a.compare:
        return compare(a.compare)
    if a.out is None:
        raise SystemExit("--out FILE (on a machine with two GPUs) or --compare FILE")
    if torch.cuda.device_count() < 2:
        raise SystemExit(f"needs two GPUs, {torch.cuda.device_count()} present")
    t0 = time.time()
    ref = {name: generate(name, dtype, n) for name, dtype, n in CASES}
    torch.cuda.empty_cache()
    from engine.parallel import allreduce_table, free_port
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(worker, args=(2, free_port(), f"{d}/tp2.json"), nprocs=2, join=True)
        tp2 = json.loads(Path(f"{d}/tp2.json").read_text())
    tokens = {name: {"prompts": len(PROMPTS), "tokens_per_prompt": n,
                     "equal_sequences": sum(x == y for x, y in zip(ref[name], tp2[name])),
                     "equal_tokens": sum(p == q for x, y in zip(ref[name], tp2[name]) for p, q in zip(x, y)),
                     "first_divergence": [next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), None)
                                          for x, y in zip(ref[name], tp2[name])]}
              for name, _, n in CASES}
    for name, r in tokens.items():
        print(f"TP=2 vs TP=1 {name}: {r['equal_sequences']}/{r['prompts']} sequences equal, "
              f"first divergence {r['first_divergence']}", flush=True)
    ar = allreduce_table()  # 20 back to back per sample, as calibrate measures it
    alone = allreduce_table(inner=1)  # one after a barrier: launch skew included
    for r, r1 in zip(ar, alone):
        print(f"all-reduce TP={r['tp']} {r['bytes']:>10} B: {r['seconds'] * 1e6:9.1f} us "
              f"(one alone after a barrier: {r1['seconds'] * 1e6:.1f} us)", flush=True)
    a.out.write_text(json.dumps({"device": torch.cuda.get_device_name(), "gpus": torch.cuda.device_count(),
                                 "torch": torch.__version__, "nccl": ".".join(map(str, torch.cuda.nccl.version())),
                                 "tokens": tokens, "allreduce": ar, "allreduce_one_alone": alone, "seconds": time.time() - t0}, indent=1))
    print(f"wrote {a.out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
