"""Where the host time of a step with a prompt chunk goes (piecewise graphs + eager attention).

    python -m lab.studies.host_breakdown.host_breakdown --model llama-3.2-1b [--decode-batch 14] [--prompt 600] [--general] [--out f.json]

Eager steps of a small model can be host-bound (the step log's issue time equal to its GPU time), and then
what the host pays per call decides the step time. --general runs attention through the per-layer path
(Attention.attend) instead of the one set up once per step: the baseline, in the same script. Prints (and writes) two things, both measured with
perf_counter and no synchronisation inside the timed region, so a call costs what it costs the host:
  1. per-call host microseconds (median over repeats) of each call a mixed step makes per layer;
  2. whole mixed steps taken apart the same way: scheduling, packing, issuing the forward, sampling (which
     waits for the GPU), bookkeeping;
and the step's wall time and GPU time (CUDA events) for reference.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from bench.profile_step import steady_decodes

from engine.llm import LLM, EngineConfig, quiet_gc
from engine.model import packed_prefill_attention
from engine.sequence import SamplingParams
from lab.validation_runs import KNOBS


def host_us(fn, reps: int = 200, sync_every: int = 20) -> float:
    """Median host time of one call, in microseconds; the queue is drained every few calls (untimed) so
    no call waits on a full launch queue."""
    ts = []
    for i in range(reps):
        if i % sync_every == 0:
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    torch.cuda.synchronize()
    return statistics.median(ts) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.2-1b")
    ap.add_argument("--decode-batch", type=int, default=14)
    ap.add_argument("--context", type=int, default=350)
    ap.add_argument("--prompt", type=int, default=600)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", default=None)
    ap.add_argument("--general", action="store_true",
                    help="attention through the general per-layer path (the baseline of the planned one)")
    a = ap.parse_args()
    llm = LLM(EngineConfig(model=a.model, kernels=True, num_blocks=8192, **KNOBS))
    runner, pw, m = llm.runner, llm.runner.piecewise, llm.model
    if a.general:
        pw.kv_flat = None  # _attention then declines: every layer calls Attention.attend
    res: dict = {"model": a.model, "path": "general" if a.general else "planned", "device": torch.cuda.get_device_name(), "decode_batch": a.decode_batch,
                 "prompt": a.prompt, "per_call_us": {}, "step_us": {}}

    with quiet_gc():
        prompt = steady_decodes(llm, a.decode_batch, a.context)
        # one mixed batch, packed once, for the per-call costs
        llm.add(prompt(a.prompt), SamplingParams(max_tokens=1))
        batch = llm.sched.schedule()
        T = pw.bucket(sum(n for _, n in batch))
        ids, pos, meta, rows, samplers = runner.prepare(batch, pad_to=T)
        pw.run(ids, pos, meta, rows)  # fills the static buffers
        layer = m.layers[0]
        kc, vc = runner.kv[0]
        q, out = pw.st["q"][:T], pw.st["attn"][:T]
        nd, pre = meta.n_decode, meta.prefill
        small = torch.zeros(1, device="cuda")
        calls = {
            "tiny torch op (x.add_)": lambda: small.add_(1),
            "graph piece replay": lambda: pw.graphs[T][1](),
            "paged decode (CuPy)": lambda: m.backend.paged_decode(q[:nd], kc, vc, meta.block_tables,
                                                                  meta.context_lens, layer.attn.scale, out=out[:nd]),
            "index_select K": lambda: kc.view(-1, kc.shape[2], kc.shape[3]).index_select(0, pre.kv_slots),
            "packed prefill attention (gather K,V + flash)": lambda: packed_prefill_attention(
                q[nd:nd + pre.tokens], kc, vc, pre, layer.attn.scale),
            "attend (decode + prefill + copy)": lambda: layer.attn.attend(q, kc, vc, meta, m.backend, None, out=out),
            "lm_head on sampled rows": lambda: m.lm_head(pw.st["hidden"][:T][rows]).float(),
            "attention set-up once per step (planned path)": lambda: pw._attention(meta, q, out),
        }
        planned = pw._attention(meta, q, out)
        if planned is not None:
            calls["attention per layer (planned path)"] = lambda: planned(0)
        for k, fn in calls.items():
            res["per_call_us"][k] = host_us(fn)
        # prepare() alone, on the same batch (host only: it reads nothing back)
        res["per_call_us"]["prepare (pack + H2D)"] = host_us(lambda: runner.prepare(batch, pad_to=T), reps=100)
        # finish the pending chunk the normal way
        llm._advance(batch)
        llm._take_tokens(samplers, [0] * len(samplers), llm.clock())

        # 2. whole mixed steps, taken apart: a fresh prompt each step, decodes keep running
        from engine.model_runner import sample
        parts: dict[str, list[float]] = {k: [] for k in ("schedule", "prepare", "forward issue", "sample+sync",
                                                          "bookkeeping", "wall", "gpu")}
        for i in range(a.steps + 3):
            llm.add(prompt(a.prompt), SamplingParams(max_tokens=1))
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            batch = llm.sched.schedule()
            t1 = time.perf_counter()
            T = pw.bucket(sum(n for _, n in batch))
            ids, pos, meta, rows, samplers = runner.prepare(batch, pad_to=T)
            t2 = time.perf_counter()
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            logits = pw.run(ids, pos, meta, rows)
            e1.record()
            t3 = time.perf_counter()
            toks = sample(logits, samplers, llm.generators)
            t4 = time.perf_counter()
            llm._advance(batch)
            llm._take_tokens(samplers, toks, llm.clock())
            t5 = time.perf_counter()
            if i < 3:
                continue
            for k, v in (("schedule", t1 - t0), ("prepare", t2 - t1), ("forward issue", t3 - t2),
                         ("sample+sync", t4 - t3), ("bookkeeping", t5 - t4), ("wall", t5 - t0),
                         ("gpu", e0.elapsed_time(e1) / 1e3)):
                parts[k].append(v)
        res["planned_runs"] = pw.planned_runs
        res["step_us"] = {k: statistics.median(v) * 1e6 for k, v in parts.items()}
        res["layers"] = len(m.layers)
        res["bucket"] = T
    print(f"{a.model} on {res['device']} ({res['path']} attention): mixed step, {a.decode_batch} decodes + {a.prompt}-token chunk "
          f"(bucket {res['bucket']}), {res['layers']} layers")
    print("host us per call (median):")
    for k, v in res["per_call_us"].items():
        print(f"  {k:48s} {v:8.1f}")
    print("one step, host us per part (median of steps):")
    for k, v in res["step_us"].items():
        print(f"  {k:48s} {v:8.1f}")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
