"""Decode throughput of the engine vs HF transformers' generate vs the HBM roofline, on one GPU.

    python bench/engine_decode.py --out bench/results/engine_decode_h100.json

Per model shape (random bf16 weights of a catalog architecture) and batch size: 200-token prompts,
150 generated tokens. Ours: median decode-step time with CUDA graphs (tokens/s = batch / step) and the
whole generate call; a step is one llm.step() call, host work included (with --async-decode the next
step is already queued on the GPU while the host reads this one's tokens, so the host's share hides). HF: `generate` with the same weights (fewer new tokens to save time; tokens/s is
per generated token). Roofline: (weight bytes + KV bytes read per step) / copy bandwidth measured here.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from contract.catalog import MODELS
from engine.llm import LLM, EngineConfig, release_gpu_memory
from engine.sequence import SamplingParams
from engine.weights import build_model, ours_to_hf
from planner.memory import kv_bytes_per_token


def copy_bandwidth() -> float:
    """Bytes read + written per second by a large device-to-device copy (median of 20)."""
    a = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    ts = []
    for _ in range(25):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        b.copy_(a)
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e) / 1e3)
    del a, b
    return 2 * (1 << 30) / statistics.median(ts[5:])


def weight_bytes_read(spec) -> int:
    return (spec.num_layers * spec.linear_params_per_layer + spec.vocab_size * spec.hidden_size) * 2


def hf_generate(model, batch: int, prompt_len: int, new: int) -> float:
    import tempfile

    import transformers

    from engine.config import to_hf_config
    d = tempfile.mkdtemp()
    Path(d, "config.json").write_text(json.dumps(to_hf_config(model.spec)))
    cfg = transformers.LlamaConfig.from_pretrained(d)
    with torch.device("cuda"):
        hf = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    with torch.no_grad():
        own = dict(hf.named_parameters())
        for k, v in ours_to_hf(model).items():
            own[k].copy_(v)
    ids = torch.randint(0, model.spec.vocab_size, (batch, prompt_len), device="cuda")
    kw = dict(attention_mask=torch.ones_like(ids), do_sample=False, min_new_tokens=new, max_new_tokens=new,
              pad_token_id=0)
    hf.generate(ids[:, :16], **(kw | {"attention_mask": torch.ones_like(ids[:, :16]), "max_new_tokens": 4,
                                      "min_new_tokens": 4}))
    torch.cuda.synchronize()
    t = time.perf_counter()
    hf.generate(ids, **kw)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t
    del hf
    release_gpu_memory()
    return batch * new / dt


def ours(model, batch: int, prompt_len: int, new: int, **kw) -> dict:
    blocks = batch * (-(-(prompt_len + new) // 16) + 1) + 64  # what the run needs, not 90% of the GPU
    llm = LLM(EngineConfig(model=model.spec.name, max_num_seqs=max(batch, 1), max_num_batched_tokens=16384,
                           num_blocks=blocks, max_model_len=prompt_len + new + 16, **kw), model=model)
    g = torch.Generator().manual_seed(batch)
    prompts = [torch.randint(0, model.spec.vocab_size, (prompt_len,), generator=g).tolist() for _ in range(batch)]
    llm.generate(prompts[:1], SamplingParams(max_tokens=4))  # warm-up, graph capture
    for p in prompts:
        llm.add(p, SamplingParams(max_tokens=new))
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    steps = []
    while llm.sched.has_work:
        pure_decode = all(s.uncomputed == 1 for s in llm.sched.running) and not llm.sched.waiting
        a = time.perf_counter()
        llm.step()  # .tolist() of the sampled tokens synchronizes
        if pure_decode and len(llm.sched.running) == batch:
            steps.append(time.perf_counter() - a)
    total = time.perf_counter() - t0
    step = statistics.median(steps)
    out = {"step_ms": step * 1e3, "decode_tok_s": batch / step, "generate_tok_s": batch * new / total,
           "decode_steps_timed": len(steps), "kv_blocks": llm.num_blocks, "steps_launched_ahead": llm.ahead_steps}
    if kw.get("kernels"):
        out["kernels_active"] = llm.kernels_active
        from engine.kernel_hooks import detach
        detach(model)
    del llm
    release_gpu_memory()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="llama-3.2-1b,llama-3.1-8b")
    ap.add_argument("--batches", default="1,16,64,256")
    ap.add_argument("--prompt", type=int, default=200)
    ap.add_argument("--new", type=int, default=150)
    ap.add_argument("--hf-new", type=int, default=48)
    ap.add_argument("--int8", action="store_true", help="also time INT8 weights at batch 1 and 64")
    ap.add_argument("--kernels", action="store_true", help="also time with the CuPy kernels")
    ap.add_argument("--async-decode", action="store_true",
                    help="also time kernels + async decode (EngineConfig.async_decode: the next step launched "
                         "before this one's tokens reach the host)")
    ap.add_argument("--fuse", action="store_true", help="torch.compile'd elementwise ops (EngineConfig.fuse_elementwise)")
    ap.add_argument("--no-hf", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    res = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "prompt": a.prompt, "new": a.new,
           "hf_new": a.hf_new, "rows": []}
    bw = copy_bandwidth()
    res["copy_bandwidth_tb_s"] = bw / 1e12
    print(f"{res['gpu']}: copy bandwidth {bw / 1e12:.2f} TB/s", flush=True)
    print(f"{'model':14} {'batch':>5} {'ours tok/s':>11} {'step ms':>8} {'roofline tok/s':>15} {'% roof':>7} "
          f"{'HF tok/s':>9} {'x HF':>6}", flush=True)
    for name in a.models.split(","):
        spec = MODELS[name]
        model = build_model(spec, seed=0, dtype=torch.bfloat16, device="cuda")
        for b in map(int, a.batches.split(",")):
            row = {"model": name, "batch": b}
            try:
                row["fuse_elementwise"] = a.fuse
                row.update(ours(model, b, a.prompt, a.new, fuse_elementwise=a.fuse))
                ctx = a.prompt + a.new / 2
                roof_step = (weight_bytes_read(spec) + b * ctx * kv_bytes_per_token(spec)) / bw
                row["roofline_tok_s"] = b / roof_step
                row["fraction_of_roofline"] = roof_step / (row["step_ms"] / 1e3)
                if a.kernels:
                    k = ours(model, b, a.prompt, a.new, kernels=True)
                    row["kernels"] = k
                    row["kernels"]["fraction_of_roofline"] = roof_step / (k["step_ms"] / 1e3)
                if a.async_decode:
                    k = ours(model, b, a.prompt, a.new, kernels=True, async_decode=True)
                    row["kernels_async"] = k
                    k["fraction_of_roofline"] = roof_step / (k["step_ms"] / 1e3)
            except Exception as e:  # keep the other rows
                row["error"] = repr(e)
            try:
                if a.no_hf:
                    raise RuntimeError("skipped (--no-hf)")
                row["hf_tok_s"] = hf_generate(model, b, a.prompt, a.hf_new)
                row["speedup_vs_hf"] = row.get("decode_tok_s", 0) / row["hf_tok_s"]
            except Exception as e:
                row["hf_error"] = repr(e)
            res["rows"].append(row)
            if a.out:  # after every row: a run cut short still leaves what it measured
                Path(a.out).parent.mkdir(parents=True, exist_ok=True)
                Path(a.out).write_text(json.dumps(res, indent=2))
            print(f"{name:14} {b:5d} {row.get('decode_tok_s', 0):11.1f} {row.get('step_ms', 0):8.2f} "
                  f"{row.get('roofline_tok_s', 0):15.1f} {100 * row.get('fraction_of_roofline', 0):6.1f}% "
                  f"{row.get('hf_tok_s', 0):9.1f} {row.get('speedup_vs_hf', 0):6.1f}", flush=True)
            for key, label in (("kernels", "  + kernels"), ("kernels_async", "  + async")):
                if key in row:
                    k = row[key]
                    print(f"{label:14} {b:5d} {k['decode_tok_s']:11.1f} {k['step_ms']:8.2f} "
                          f"{row['roofline_tok_s']:15.1f} {100 * k['fraction_of_roofline']:6.1f}% "
                          f"{row.get('hf_tok_s', 0):9.1f} "
                          f"{k['decode_tok_s'] / row.get('hf_tok_s', float('nan')):6.1f}", flush=True)
        if a.int8:
            from engine.quant import quantize_model
            g = torch.Generator().manual_seed(7)
            prompts = [torch.randint(0, spec.vocab_size, (a.prompt,), generator=g).tolist() for _ in range(8)]
            ref = LLM(EngineConfig(model=name, num_blocks=1024), model=model).generate(prompts, SamplingParams(
                max_tokens=32))
            ref = [s.output for s in ref]
            q = build_model(spec, seed=0, dtype=torch.bfloat16, device="cuda")
            rep = quantize_model(q)
            del model
            release_gpu_memory()
            outs = [s.output for s in LLM(EngineConfig(model=name, num_blocks=1024), model=q).generate(prompts, SamplingParams(
                max_tokens=32))]
            agree = sum(x == y for p, r in zip(outs, ref) for x, y in zip(p, r)) / sum(len(r) for r in ref)
            first = sum(p[0] == r[0] for p, r in zip(outs, ref)) / len(ref)
            row = {"model": name, "quantization": "int8", **rep, "greedy_token_agreement": agree,
                   "first_token_agreement": first}
            for b in (1, 64):
                row[f"batch{b}"] = ours(q, b, a.prompt, 32)
                if a.kernels:
                    row[f"batch{b}_kernels"] = ours(q, b, a.prompt, 32, kernels=True)
            res["rows"].append(row)
            print(f"{name} int8: weights {rep['weight_bytes_before'] / 2**30:.2f} -> {rep['weight_bytes_after'] / 2**30:.2f}"
                  f" GiB, greedy agreement with bf16 {agree:.3f} (first token {first:.2f}); batch-1 step "
                  f"{row['batch1']['step_ms']:.2f} ms" + (f", with kernels {row['batch1_kernels']['step_ms']:.2f} ms; "
                  f"batch-64 step {row['batch64']['step_ms']:.2f} -> {row['batch64_kernels']['step_ms']:.2f} ms"
                  if a.kernels else ""), flush=True)
            model = q
        del model
        release_gpu_memory()
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
