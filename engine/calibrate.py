"""`engine calibrate`: measure the operator tables of the calibration profile on this GPU.

GEMMs over the catalog models' layer shapes and a range of token counts (bf16, and INT8 W8A16 for the
engine's own models); paged decode attention by (batch, context) and prefill attention by (chunk,
context) through the engine's own attention path; whole decode and prefill steps of the engine's models,
CUDA graphs on and off; the CPU + launch overhead per step; and whole serving iterations during a short
rate-ramp replay (measure_iterations), to which the cost model fits its per-step overhead. GPU times are
CUDA-event medians over calls replayed from a graph (launch latency hidden), each GEMM or attention call on
other weights or KV than the last, out of L2 as in a serving step; whole steps are wall-clock medians.
"""
from __future__ import annotations

import itertools
import platform
import statistics
import subprocess
import time
from datetime import datetime, timezone

import numpy as np
import torch
import torch.nn.functional as F

import engine
from contract.catalog import MODELS
from contract.knobs import ServingKnobs
from contract.profile import (
    ENGINE_GEMM_KERNELS,
    AllReduceRow,
    AttnRow,
    GemmRow,
    IterRow,
    Profile,
    StepRow,
    host_speed_warning,
)
from engine.host_speed import host_benchmark
from engine.kernel_hooks import int8_kernel
from engine.llm import LLM, EngineConfig, quiet_gc, release_gpu_memory
from engine.model import PrefillPack, decode_attention, packed_prefill_attention
from engine.parallel import allreduce_table
from engine.quant import Fp8Linear, Int8Linear, quantize_int8
from engine.sequence import SamplingParams
from engine.weights import build_model
from kernels.paged_attention import paged_decode

M_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
COLD_BYTES = 200 * 2**20  # bytes read between two uses of one weight or KV table: 4x the H100's L2


def gpu_time(fn, reps: int = 10, inner: int = 10) -> float:
    """Median GPU seconds per call of fn: `inner` calls captured in a CUDA graph and replayed, as the
    engine's decode graphs run them (no Python launch gaps). Falls back to back-to-back eager calls."""
    st = torch.cuda.Stream()
    st.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(st):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(st)
    run = None
    try:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(inner):
                fn()
        run = g.replay
    except Exception:
        torch.cuda.synchronize()

        def run():
            for _ in range(inner):
                fn()
    run()
    ts = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        run()
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e) / 1e3 / inner)
    return statistics.median(ts)


def gemm_shapes(models, tps=(1,)) -> set[tuple[int, int]]:
    out = set()
    for name in models:
        m = MODELS[name]
        for tp in tps:
            if m.tp_problem(tp):
                continue
            out |= {((m.q_dim + 2 * m.kv_dim) // tp, m.hidden_size), (m.hidden_size, m.q_dim // tp),
                    (2 * m.intermediate_size // tp, m.hidden_size), (m.hidden_size, m.intermediate_size // tp),
                    (m.vocab_size // tp, m.hidden_size)}
    return out


def weight_copies(n: int, k: int, elem_bytes: int = 2, cold_bytes: int = COLD_BYTES, most: int = 256) -> int:
    """Copies of an n x k weight to cycle through so that no call finds its weight in L2 (the serving step
    streams every layer's weights from HBM between two uses of one)."""
    return max(1, min(most, -(-cold_bytes // (n * k * elem_bytes))))


def _cold_time(fns: list) -> float:
    """GPU seconds per call, the calls cycling through `fns` (one per weight copy): each call's weight was
    last touched `len(fns)` calls before, out of L2."""
    it = itertools.cycle(fns)
    copies = len(fns)
    return gpu_time(lambda: next(it)(), inner=copies * max(1, -(-10 // copies)))


def measure_gemms(shapes, dtype=torch.bfloat16, int8_shapes=(), m_grid=M_GRID, log=print) -> list[GemmRow]:
    """GEMM times over token counts, weights read cold. Timed back to back on one weight, a weight that fits
    in L2 stays there: on the H100 and the H200 (50 MB L2) the 1B's 8-34 MB projections then ran at the same
    speed on both cards (1.00x, 2.8-3.1 TB/s on the H100, above its cold copy rate), while the >= 67 MB ones
    ran 1.37-1.45x faster on the H200 as its bandwidth says (bench/results/profile_h200_warm_gemms.json.gz against
    profile_h100_warm_gemms.json.gz)."""
    rows = []
    for n, k in sorted(shapes):
        ws = [torch.randn(n, k, device="cuda", dtype=dtype) * 0.02 for _ in range(weight_copies(n, k))]
        for m in m_grid:
            x = torch.randn(m, k, device="cuda", dtype=dtype)
            rows.append(GemmRow(m=m, n=n, k=k, seconds=_cold_time([lambda w=w: F.linear(x, w) for w in ws])))
        if (n, k) in int8_shapes:
            lins = [Int8Linear(*quantize_int8(ws[i % len(ws)])) for i in range(weight_copies(n, k, elem_bytes=1))]
            for m in m_grid:
                x = torch.randn(m, k, device="cuda", dtype=dtype)
                rows.append(GemmRow(m=m, n=n, k=k, quantization="int8",
                                    seconds=_cold_time([lambda lin=lin: lin(x) for lin in lins])))
            del lins
        m1 = next(r for r in rows if (r.n, r.k, r.m, r.quantization) == (n, k, 1, "bf16"))
        log(f"  gemm {n}x{k}: bf16 M=1 {m1.seconds * 1e6:.1f} us ({len(ws)} weight copies)")
        del ws
    return rows


def measure_quant_gemms(shapes, quantization: str, m_grid=M_GRID, log=print) -> list[GemmRow]:
    """The quantized projections as the engine serves them, weights read cold: FP8 through Fp8Linear (the
    8-bit-weight GEMM at decode sizes, torch._scaled_mm with per-token activation scales above), INT8 through
    the engine's W8A16 kernels (the one-launch GEMV for a few rows, the tensor-core GEMM above). Each table is
    labelled with ENGINE_GEMM_KERNELS: `planner profile-add` of it replaces a table of older kernels."""
    rows = []
    for n, k in sorted(shapes):
        ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
              for _ in range(weight_copies(n, k, elem_bytes=1))]
        if quantization == "fp8":
            lins = [Fp8Linear.from_linear_weight(w) for w in ws]
        else:
            lins = [Int8Linear(*quantize_int8(w)) for w in ws]
            for lin in lins:
                lin.kernel = int8_kernel
        del ws
        for m in m_grid:
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            rows.append(GemmRow(m=m, n=n, k=k, quantization=quantization, kernel=ENGINE_GEMM_KERNELS[quantization],
                                seconds=_cold_time([lambda lin=lin: lin(x) for lin in lins])))
        m1 = next(r for r in rows if (r.n, r.k, r.m) == (n, k, 1))
        log(f"  gemm {n}x{k} {quantization}: M=1 {m1.seconds * 1e6:.1f} us")
        del lins
        release_gpu_memory()
    return rows


# Decode attention as a serving step reads it: the running batch's contexts are spread around their mean
# (uniform in [0.2, 1.8] x the mean -- the validation traces' prompts of 128-1024 tokens plus 0-256 generated),
# blocks scattered over a large pool, and each layer's KV read cold (a step streams every layer's weights
# between two visits of one layer's KV). The table used to time equal contexts, contiguous blocks and the same
# call back to back (at small batches the whole KV sat in the 50 MB L2), on a x4 context grid: the kernel's
# time steps with its partition count, which log interpolation between 512 and 2048 missed -- 16-42% low at
# 650 tokens, batches 4-64, on the H100 (bench/attention_layout.py, bench/results/attention_layout_h100.json).
DECODE_SPREAD = 0.8
DECODE_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DECODE_CONTEXTS = (64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 8192)


def spread_lengths(batch: int, ctx: int, spread: float, rng) -> "np.ndarray":
    """Context lengths uniform in [1 - spread, 1 + spread] x ctx, rescaled so their mean is ctx exactly."""
    if spread <= 0 or batch == 1:
        return np.full(batch, ctx, dtype=np.int64)
    u = rng.uniform(1 - spread, 1 + spread, batch)
    return np.clip(np.round(ctx * u / u.mean()), 1, None).astype(np.int64)


def blocks_for(lens, bs: int) -> int:
    """KV blocks that sequences of these lengths hold."""
    return sum(-(-int(n) // bs) for n in lens)


def decode_tables(lens, bs: int, pool_blocks: int, sets: int, scattered: bool, rng) -> list:
    """`sets` block tables [B, W] (W in the model runner's width bucket of 16) for these lengths: blocks
    drawn at random without replacement from the pool (scattered) or each sequence's blocks in a row."""
    need = [-(-int(n) // bs) for n in lens]
    W = -(-max(need) // 16) * 16
    total = sum(need)
    if sets * total > pool_blocks - 1:
        raise ValueError(f"decode_tables: {sets} x {total} blocks do not fit a pool of {pool_blocks}")
    ids = (rng.choice(np.arange(1, pool_blocks), size=sets * total, replace=False) if scattered
           else np.arange(1, 1 + sets * total))
    out = []
    for s in range(sets):
        t = np.zeros((len(lens), W), dtype=np.int64)
        k = s * total
        for i, n in enumerate(need):
            t[i, :n] = ids[k:k + n]
            k += n
        out.append(torch.from_numpy(t).cuda())
    return out


def decode_attention_time(decode, q, kc, vc, lens, rng, cold: bool = True, scattered: bool = True) -> float:
    """GPU seconds of one layer's paged decode at these context lengths, over the pool (kc, vc); `cold`: a
    different table each call until COLD_BYTES have been read, so no call finds its KV in L2."""
    bs, kvh, hd = kc.shape[1], kc.shape[2], kc.shape[3]
    per_set = int(lens.sum()) * kvh * hd * 2 * kc.element_size()
    sets = min(256, max(1, -(-COLD_BYTES // per_set))) if cold else 1
    sets = max(1, min(sets, (kc.shape[0] - 1) // max(1, blocks_for(lens, bs))))
    tables = decode_tables(lens, bs, kc.shape[0], sets, scattered, rng)
    cl = torch.from_numpy(lens).cuda()
    out = torch.empty_like(q)
    scale = hd ** -0.5

    def fn():
        for t in tables:
            decode(q, kc, vc, t, cl, scale, out)
    return gpu_time(fn, reps=5, inner=3) / len(tables)


def measure_attention(layouts, batches=DECODE_BATCHES, contexts=DECODE_CONTEXTS,
                      chunks=(16, 64, 256, 1024, 4096), before=(0, 1024, 4096), bs: int = 16, log=print,
                      kernels: bool = False, spread: float = DECODE_SPREAD, pool_gib: float = 12.0,
                      kv_dtype: str = "bf16"):
    """Decode and prefill attention tables per layout. kv_dtype "fp8": decode only, over an FP8 e4m3 cache read
    by the paged kernel (prefill widens the gathered K/V to bf16 first, so its bf16 table stands)."""
    if kv_dtype == "fp8":
        if not kernels:
            raise ValueError("an FP8-KV attention table is the paged kernel's: calibrate with kernels on")
        chunks = ()
    elt = 1 if kv_dtype == "fp8" else 2
    rows = []

    def decode(q, kc, vc, t, cl, scale, out):
        return decode_attention(q, kc, vc, t, cl, scale)
    if kernels:  # the engine's paged-decode kernel, as the model runs it when kernels are on

        def decode(q, kc, vc, t, cl, scale, out):
            return paged_decode(q, kc, vc, t, cl, scale, out=out)
    for heads, kvh, hd in layouts:
        rng = np.random.default_rng(heads * 1000 + kvh * 10 + hd)
        scale = hd ** -0.5
        pool = int(pool_gib * 2**30 / (2 * bs * kvh * hd * elt))
        kc = torch.randn(pool, bs, kvh, hd, device="cuda", dtype=torch.bfloat16)
        vc = torch.randn_like(kc)
        if kv_dtype == "fp8":
            kc, vc = kc.to(torch.float8_e4m3fn), vc.to(torch.float8_e4m3fn)
        for b in batches:
            for c in contexts:
                lens = spread_lengths(b, c, spread, rng)
                if blocks_for(lens, bs) > pool - 1:
                    continue
                q = torch.randn(b, heads, hd, device="cuda", dtype=torch.bfloat16)
                t = decode_attention_time(decode, q, kc, vc, lens, rng)
                rows.append(AttnRow(kind="decode", heads=heads, kv_heads=kvh, head_dim=hd, a=b, context=c, seconds=t,
                                    spread=spread if b > 1 else 0.0, kv_dtype=kv_dtype))
        del kc, vc
        torch.cuda.empty_cache()
        for n in chunks:
            for p in before:
                total = n + p
                nb = -(-total // bs) + 1
                kc = torch.randn(nb, bs, kvh, hd, device="cuda", dtype=torch.bfloat16)
                vc = torch.randn_like(kc)
                # the engine's path: K/V gathered through the slots, then one flash varlen call
                slots = torch.arange(bs, bs + total, device="cuda")
                cu = torch.tensor([[0, n], [0, total]], dtype=torch.int32, device="cuda")
                pack = PrefillPack(slots, cu[0], cu[1], n, total, [(0, n, 0, total)], n)
                q = torch.randn(n, heads, hd, device="cuda", dtype=torch.bfloat16)
                t = gpu_time(lambda: packed_prefill_attention(q, kc, vc, pack, scale), reps=5, inner=3)
                rows.append(AttnRow(kind="prefill", heads=heads, kv_heads=kvh, head_dim=hd, a=n, context=p,
                                    seconds=t))
        torch.cuda.empty_cache()
        log(f"  attention {heads}/{kvh}x{hd}: {len(rows)} rows")
    return rows


def _decode_steps(llm: LLM, batch: int, ctx: int, n: int = 12) -> tuple[float, float]:
    """(median wall seconds, median GPU seconds) of pure decode steps at this batch and context."""
    g = torch.Generator().manual_seed(batch * 7 + ctx)
    for _ in range(batch):
        llm.add(torch.randint(0, llm.spec.vocab_size, (ctx,), generator=g).tolist(), SamplingParams(max_tokens=n + 40))
    while any(s.uncomputed > 1 for s in llm.sched.running) or llm.sched.waiting:
        llm.step()
    walls, gpus = [], []
    orig = llm.runner.forward

    def timed(batch_):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        out = orig(batch_)
        e.record()
        timed.ev = (s, e)
        return out
    llm.runner.forward = timed
    for _ in range(n):
        a = time.perf_counter()
        llm.step()
        walls.append(time.perf_counter() - a)
        s, e = timed.ev
        gpus.append(s.elapsed_time(e) / 1e3)
    llm.runner.forward = orig
    for s in list(llm.sched.running) + list(llm.sched.waiting):
        llm.sched.finish(s)
    return statistics.median(walls[2:]), statistics.median(gpus[2:])


def _mixed_step(llm: LLM, batch: int, ctx: int, prompt: int, reps: int = 6, nprompts: int = 1) -> float:
    """Median wall seconds of a step holding `batch` decodes at `ctx` and `nprompts` prompts of `prompt` tokens."""
    g = torch.Generator().manual_seed(batch + prompt)
    for _ in range(batch):
        llm.add(torch.randint(0, llm.spec.vocab_size, (ctx,), generator=g).tolist(), SamplingParams(max_tokens=200))
    while any(s.uncomputed > 1 for s in llm.sched.running) or llm.sched.waiting:
        llm.step()
    for _ in range(2):
        llm.step()
    ws = []
    for _ in range(reps):
        for _ in range(nprompts):
            llm.add(torch.randint(0, llm.spec.vocab_size, (prompt,), generator=g).tolist(),
                    SamplingParams(max_tokens=1))
        torch.cuda.synchronize()
        a = time.perf_counter()
        llm.step()
        ws.append(time.perf_counter() - a)
    for s in list(llm.sched.running) + list(llm.sched.waiting):
        llm.sched.finish(s)
    return statistics.median(ws[1:])


STEP_MAX_TOKENS = 16384  # the calibration engine's max_num_batched_tokens (its largest prefill step)


def measure_steps(model_name: str, batches=(1, 8, 32, 64, 128, 256), contexts=(256, 1024),
                  prefills=(128, 512, 2048, 8192), log=print, kernels: bool = False,
                  ramps: int = 2, host_samples: list | None = None) -> tuple[list[StepRow], dict]:
    spec = MODELS[model_name]
    model = build_model(spec, seed=0, dtype=torch.bfloat16, device="cuda")
    rows, ovh = [], {}
    for graphs in (True, False):
        llm = LLM(EngineConfig(model=model_name, num_blocks=max(batches) * (max(contexts) // 16 + 8) + 64,
                               max_num_seqs=max(batches), max_num_batched_tokens=STEP_MAX_TOKENS, cuda_graphs=graphs,
                               max_model_len=16384, kernels=kernels),
                  model=model)
        for c in contexts:
            for b in batches if graphs else (1, 32):
                wall, gpu = _decode_steps(llm, b, c)
                rows.append(StepRow(model=model_name, kind="decode", batch=b, tokens=b, context=c, seconds=wall,
                                    cuda_graphs=graphs))
                if b == 1 and c == contexts[0]:
                    ovh["graph" if graphs else "eager"] = wall - gpu
        if graphs:  # mixed steps, as the scheduler runs them when a request arrives: decodes + one prompt
            for b in (8, 32):  # one prompt of 256 / 1024 tokens, and four of 256 (per-chunk cost)
                for t, k in ((256, 1), (1024, 1), (256, 4)):
                    wall = _mixed_step(llm, b, 512, t, nprompts=k)
                    rows.append(StepRow(model=model_name, kind="mixed", batch=b, tokens=b + t * k, context=512,
                                        seconds=wall, cuda_graphs=llm.runner.piecewise is not None,
                                        prefills=k))
            for t in prefills:
                g = torch.Generator().manual_seed(t)
                ws = []
                for _ in range(6):
                    s = llm.add(torch.randint(0, spec.vocab_size, (t,), generator=g).tolist(),
                                SamplingParams(max_tokens=1))
                    if s.status == "failed":
                        raise RuntimeError(f"calibration prefill of {t} tokens refused: {s.reason}")
                    torch.cuda.synchronize()
                    a = time.perf_counter()
                    llm.step()
                    ws.append(time.perf_counter() - a)
                rows.append(StepRow(model=model_name, kind="prefill", batch=1, tokens=t, context=0,
                                    seconds=statistics.median(ws[1:]),
                                    cuda_graphs=llm.runner.piecewise is not None))
        log(f"  steps {model_name} graphs={graphs}: {len(rows)} rows")
        if graphs:
            dec64 = next((r.seconds for r in rows if r.kind == "decode" and r.batch == 64 and r.cuda_graphs), None)
        del llm
        release_gpu_memory()
    its = measure_iterations(model, dec64, kernels=kernels, repeats=ramps, log=log, host_samples=host_samples)
    del model
    release_gpu_memory()
    return rows, ovh, its


# The serving setup the calibration ramps run (and the validation runs replay): its knobs and its uniform
# prompt and output length ranges.
RAMP_KNOBS = ServingKnobs(max_num_seqs=64, max_num_batched_tokens=2048, block_size=16, enable_chunked_prefill=True,
                          enable_prefix_caching=True, max_model_len=16384)
RAMP_LENGTHS = dict(input=(128, 1024), output=(32, 256))


def engine_knobs(knobs: ServingKnobs) -> dict:
    """The knobs as EngineConfig keyword arguments."""
    return knobs.model_dump()


def ramp_trace(rate: float, seconds: float = 28.0, shares=(0.02, 0.1, 0.2, 0.3, 0.42, 0.55, 0.75),
               seed: int = 7) -> dict:
    """Poisson arrivals whose rate steps through `shares` of `rate`, equal time each: one short replay that
    visits batches from one or two sequences (0.02: what a trace like Azure's keeps running) to max_num_seqs
    (`rate` is a decode-only bound, so capacity with prefills is near 0.55-0.6 of it). Its own seed, not the
    validation runs' seeds."""
    rng = np.random.default_rng(seed)
    seg = seconds / len(shares)
    ts = []
    for i, sh in enumerate(shares):
        t = i * seg + np.cumsum(rng.exponential(1 / (rate * sh), size=int(rate * sh * seg * 2) + 20))
        ts.append(t[t < (i + 1) * seg])
    t = np.concatenate(ts)
    return {"t": t, "in": rng.integers(*RAMP_LENGTHS["input"], size=len(t), endpoint=True),
            "out": rng.integers(*RAMP_LENGTHS["output"], size=len(t), endpoint=True)}


def measure_iterations(model, dec64: float | None, kernels: bool = False, seconds: float = 28.0,
                       repeats: int = 2, log=print, host_samples: list | None = None, tp: int = 1,
                       name: str | None = None, max_num_seqs: int | None = None,
                       quantization: str = "bf16") -> list[IterRow]:
    """The engine's whole iterations (schedule + forward + sample + bookkeeping, start to next start) while
    serving a rate ramp in real time, with the validation runs' knobs. What no operator table holds --
    Python scheduling per sequence, the time between steps -- is in these; the calibrated cost model fits
    its per-step overhead to them. Rate scale: max_num_seqs over (mean output x the batch-64 decode step).
    `repeats` ramps (own seeds, a fresh engine each), pooled: two back-to-back replays of one ramp on one
    H100 differed by 3-13% per batch bin in mean iteration time (bench/ramp_vs_run.py), so one replay is a
    noisy sample of what the engine does. `host_samples`, when given, gets engine.host_speed's benchmark
    before each ramp and after the last: the host's speed while these iterations were timed. `max_num_seqs`
    (default the validation knobs' 64) lets a ramp reach larger batches: a fit on batches up to 64 extrapolates
    the per-sequence host cost beyond them."""
    mns = max_num_seqs or RAMP_KNOBS.max_num_seqs
    mean_out = sum(RAMP_LENGTHS["output"]) / 2
    rate = mns / (mean_out * (dec64 or 0.01))
    rows = []
    name = name or model.spec.name
    for rep in range(repeats):
        if host_samples is not None:
            host_samples.append(host_benchmark())
        tr = ramp_trace(rate, seconds, seed=7 + rep)
        # tensor-parallel: the engine builds its own shards, one process per GPU
        knobs = engine_knobs(RAMP_KNOBS) | {"tensor_parallel_size": tp, "max_num_seqs": mns,
                                            "quantization": quantization}
        llm = LLM(EngineConfig(model=name, kernels=kernels, **knobs), model=model if tp == 1 else None)
        llm.generate([[1] * 64] * 2, SamplingParams(max_tokens=4))  # warm-up
        llm.log_steps = True
        llm.replay(tr["t"], tr["in"], tr["out"], seed=11 + rep)
        lg = llm.step_log
        n0 = len(rows)
        for cur, nxt in zip(lg, lg[1:]):
            if nxt[9]:  # idle before the next step: this iteration's end is not known
                continue
            _, _, pre, dec, _, chunks, dctx, pctx, t_sched = cur[:9]
            gpu = cur[11]
            rows.append(IterRow(model=name, tokens=pre + dec, decodes=dec, chunks=chunks,
                                decode_ctx=dctx, prefill_ctx=pctx, seconds=nxt[8] - t_sched,
                                max_num_batched_tokens=RAMP_KNOBS.max_num_batched_tokens, tp=tp,
                                quantization=quantization,
                                gpu_seconds=gpu if gpu == gpu and gpu > 0 else None))  # NaN off CUDA
        log(f"  iterations {name} {quantization} TP={tp} (ramp {rep + 1}/{repeats}): {len(tr['t'])} requests at up to "
            f"{rate * 0.95:.1f} req/s, {len(rows) - n0} iterations timed")
        llm.shutdown()
        del llm
        release_gpu_memory()
    if host_samples is not None:
        host_samples.append(host_benchmark())
    return rows


def copy_bandwidth() -> float:
    a = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    t = gpu_time(lambda: b.copy_(a), reps=10, inner=3)
    return 2 * (1 << 30) / t


def calibrate(gpu: str, models=("llama-3.2-1b", "llama-3.1-8b"), gemm_models=("llama-3.2-1b", "llama-3.1-8b",
              "llama-3.1-70b"), tps=(1, 2, 4, 8), log=print, kernels: bool = False, ramps: int = 2) -> Profile:
    """ramps: serving-iteration ramps per model (28 s each), pooled; more narrow the within-machine spread
    (two sets of two ramps on one H100 differed by 3.5-4.4% for the 1B), not the spread between machines."""
    if ramps < 1:
        raise ValueError(f"ramps must be at least 1, got {ramps}")
    if not torch.cuda.is_available():
        raise RuntimeError("engine calibrate needs a CUDA GPU")
    t0 = time.time()
    prof = Profile(gpu=gpu, device_name=torch.cuda.get_device_name(), torch=torch.__version__,
                   cuda=torch.version.cuda or "", engine_version=getattr(engine, "__version__", "0.1.0"),
                   created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   driver=_driver(), kernels=kernels)
    host = [host_benchmark()]
    prof.copy_bandwidth_gbps = copy_bandwidth() / 1e9
    log(f"copy bandwidth {prof.copy_bandwidth_gbps:.0f} GB/s")
    own = gemm_shapes(models)
    prof.gemm = measure_gemms(gemm_shapes(gemm_models, tps), int8_shapes=own, log=log)
    log(f"gemm: {len(prof.gemm)} rows, {time.time() - t0:.0f} s")
    layouts = sorted({(MODELS[m].num_attention_heads, MODELS[m].num_key_value_heads, MODELS[m].hd) for m in models})
    prof.attention = measure_attention(layouts, log=log, kernels=kernels)
    log(f"attention: {len(prof.attention)} rows, {time.time() - t0:.0f} s")
    for m in models:
        with quiet_gc():  # steps timed as the engine serves: without collector pauses
            rows, ovh, its = measure_steps(m, log=log, kernels=kernels, ramps=ramps, host_samples=host)
        prof.steps += rows
        prof.iterations += its
        prof.piecewise_max_tokens = STEP_MAX_TOKENS if EngineConfig().piecewise_graphs else 0
        if m == models[0]:
            prof.overhead_graph_s, prof.overhead_eager_s = ovh.get("graph"), ovh.get("eager")
    host.append(host_benchmark())
    # at the start, around every serving ramp and at the end: the host's speed while calibrating
    prof.host_bench_samples_s = host
    prof.host_bench_s = statistics.median(host)
    log(f"host benchmark {prof.host_bench_s * 1e3:.2f} ms (engine.host_speed; median of {len(host)}, "
        f"{min(host) * 1e3:.2f}-{max(host) * 1e3:.2f} ms)")
    warn = host_speed_warning(host)
    if warn:
        log(f"WARNING: {warn}")
    if torch.cuda.device_count() > 1:  # the TP cost: all-reduce by (bytes, TP) over this machine's links
        prof.allreduce = [AllReduceRow(**r) for r in allreduce_table()]
        log(f"all-reduce: {len(prof.allreduce)} rows, TP {sorted({r.tp for r in prof.allreduce})}, "
            f"{time.time() - t0:.0f} s")
    log(f"calibration done in {time.time() - t0:.0f} s")
    return prof


EXTRA_PARTS = ("gemm", "allreduce", "iterations", "attention", "gemm_bf16", "attention_fp8kv")


def attention_layouts(models, tps=(1, 2, 4)) -> list[tuple[int, int, int]]:
    """(query heads, KV heads, head dim) per GPU of each model at each TP degree it can be split to: the decode
    kernel's cost depends on the layout itself (head dim, heads per KV head), not only on the KV bytes."""
    out = set()
    for name in models:
        m = MODELS[name]
        for tp in tps:
            if not m.tp_problem(tp):
                out.add((m.num_attention_heads // tp, max(1, m.num_key_value_heads // tp), m.hd))
    return sorted(out)


def calibrate_extra(gpu: str, serve_tp: int = 1, models=("llama-3.2-1b", "llama-3.1-8b"),
                    gemm_models=("llama-3.2-1b", "llama-3.1-8b", "llama-3.1-70b"), tps=(1, 2, 4, 8), ramps: int = 1,
                    kernels: bool = True, parts=EXTRA_PARTS, shape_models=(), log=print,
                    ramp_max_seqs: int | None = None, serve_quantization: str = "bf16") -> Profile:
    """The tables a bf16 single-GPU calibration does not hold: FP8 and INT8 GEMMs (as the engine serves them),
    the all-reduce table by TP degree (several GPUs), serving iterations of a TP `serve_tp` engine or of one
    serving `serve_quantization` weights, and for
    `shape_models` (model shapes the base calibration did not run) the attention layouts at TP 1/2/4 and the bf16
    GEMM shapes at `tps`. The result is merged into a profile with contract.profile.add_tables (planner
    profile-add)."""
    if not torch.cuda.is_available():
        raise RuntimeError("engine calibrate needs a CUDA GPU")
    t0 = time.time()
    prof = Profile(gpu=gpu, device_name=torch.cuda.get_device_name(), torch=torch.__version__,
                   cuda=torch.version.cuda or "", created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   driver=_driver(), kernels=kernels, host_bench_s=host_benchmark())
    shapes = gemm_shapes(gemm_models, tps)
    shapes = {(n, k) for n, k in shapes if n % 128 == 0 and k % 128 == 0 and n < 100_000}  # no LM heads: bf16
    for q in ("fp8", "int8") if "gemm" in parts else ():
        prof.gemm += measure_quant_gemms(shapes, q, log=log)
        log(f"gemm {q}: {sum(r.quantization == q for r in prof.gemm)} rows, {time.time() - t0:.0f} s")
    if "gemm_bf16" in parts and shape_models:
        new = gemm_shapes(shape_models, tps) - gemm_shapes(gemm_models, tps)
        prof.gemm += measure_gemms(new, log=log)
        log(f"gemm bf16 of {', '.join(shape_models)}: {len(new)} shapes, {time.time() - t0:.0f} s")
    if "attention" in parts and shape_models:
        lay = attention_layouts(shape_models)
        prof.attention = measure_attention(lay, log=log, kernels=kernels)
        log(f"attention of {', '.join(shape_models)}: {len(lay)} layouts {lay}, {len(prof.attention)} rows, "
            f"{time.time() - t0:.0f} s")
    if "attention_fp8kv" in parts:  # decode over an FP8 cache: the calibrated models' layouts and shape_models'
        lay = sorted(set(attention_layouts(models, tps=(1,))) | set(attention_layouts(shape_models)))
        prof.attention += measure_attention(lay, log=log, kernels=kernels, kv_dtype="fp8")
        log(f"FP8-KV decode attention: {len(lay)} layouts, {sum(r.kv_dtype == 'fp8' for r in prof.attention)} rows, "
            f"{time.time() - t0:.0f} s")
    if "allreduce" in parts and torch.cuda.device_count() > 1:
        prof.allreduce = [AllReduceRow(**r) for r in allreduce_table()]
        log(f"all-reduce: {len(prof.allreduce)} rows, TP {sorted({r.tp for r in prof.allreduce})}, "
            f"{time.time() - t0:.0f} s")
    if (serve_tp > 1 or serve_quantization != "bf16") and "iterations" in parts:
        for m in models:
            with quiet_gc():
                prof.iterations += measure_iterations(None, _dec64_estimate(m), kernels=kernels, repeats=ramps,
                                                      log=log, tp=serve_tp, name=m, max_num_seqs=ramp_max_seqs,
                                                      quantization=serve_quantization)
        log(f"TP={serve_tp} {serve_quantization} serving iterations: {len(prof.iterations)}, "
            f"{time.time() - t0:.0f} s")
    return prof


def _dec64_estimate(model_name: str) -> float:
    """A batch-64 decode step for a ramp's rate scale without timing one: the weights over the copy bandwidth
    of an H100 plus the engine's fixed cost (the ramp's shape, not its numbers, is what matters)."""
    m = MODELS[model_name]
    return m.num_params * 2 / 2.9e12 + 1.5e-3


def _driver() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]  # one per GPU
    except Exception:
        return platform.platform()
