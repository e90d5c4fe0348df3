"""The calibration profile (DESIGN.md contract 3): what `engine calibrate` measured, as a versioned schema.

Times are seconds per call of one operator on one GPU. GEMM rows are (M tokens, N, K); attention rows are
per layer for one head configuration; whole-step rows are the engine's own measured iterations, used to
fit the per-step overhead and to validate the composition.
"""
from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from contract.errors import InputError

SCHEMA_VERSION = 1


# Batch sizes the engine captures its decode CUDA graphs at; a decode step of B sequences replays the smallest one
# holding B (padding rows attend to one token), so its GEMMs and LM head run at that many rows. Past the largest,
# decode runs eagerly at B rows. Shared by the engine (what it captures) and the calibrated cost model.
DECODE_GRAPH_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def decode_graph_rows(batch: int) -> int:
    """The rows a decode step of `batch` sequences runs its token-wise operators at (its graph's batch)."""
    return next((b for b in DECODE_GRAPH_BATCHES if b >= batch), batch)


def token_buckets(max_tokens: int) -> list[int]:
    """Token counts the engine pads a step with a prefill to (its piecewise CUDA graphs, one per bucket):
    16, 32, 64, then every 128 to 1024, every 256 to 2048, then x1.25 rounded down to 256, and max_tokens.
    Padding: under 128 tokens up to 1024, under 256 to 2048, at most 25% beyond; 15 buckets for 2048.
    Shared by the engine (what it captures) and the calibrated cost model (what it charges)."""
    b = [16, 32, 64] + list(range(128, 1025, 128)) + list(range(1280, 2049, 256))
    x = 2048
    while x < max_tokens:
        x = int(math.floor(x * 1.25 / 256) * 256)
        b.append(x)
    return sorted({v for v in b if v < max_tokens} | {max_tokens})


class _S(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GemmRow(_S):
    m: int
    n: int
    k: int
    dtype: str = "bf16"
    quantization: str = "bf16"
    seconds: float = Field(gt=0)
    # what ran it: "" for cuBLAS bf16 (and, for int8 rows before this field, PyTorch's dequantize-then-cuBLAS
    # path, far slower than a serving stack's kernels); "scaled_mm" (FP8 tensor cores), "w8a16" (the engine's
    # GEMV / tensor-core W8A16 kernels)
    kernel: str = ""


class AttnRow(_S):
    kind: str  # "decode" (batch, context) or "prefill" (tokens, context before)
    heads: int
    kv_heads: int
    head_dim: int
    a: int  # batch (decode) or chunk tokens (prefill)
    context: int  # decode: the mean context of the batch
    seconds: float = Field(gt=0)
    # decode: contexts uniform in [1 - spread, 1 + spread] x `context` (a serving batch's spread), blocks
    # scattered over a large pool, KV read cold; 0: every sequence at `context` (profiles before this field)
    spread: float = Field(0.0, ge=0, lt=1)
    # the KV cache's format the kernel read: "bf16", or "fp8" (e4m3, kv_cache_dtype fp8); tables of the two
    # are never mixed
    kv_dtype: Literal["bf16", "fp8"] = "bf16"


class AllReduceRow(_S):
    bytes: int
    tp: int
    seconds: float = Field(gt=0)
    graph: bool = False  # timed inside a CUDA graph (as the engine's graphs issue it) rather than eagerly


class StepRow(_S):
    model: str
    kind: str  # "decode" or "prefill"
    batch: int
    tokens: int  # tokens in the step
    context: int  # decode: context per sequence; prefill: 0
    seconds: float = Field(gt=0)
    cuda_graphs: bool = True
    prefills: int = Field(1, ge=1)  # mixed: prompt chunks in the step (tokens - batch split evenly)


class IterRow(_S):
    """One whole engine iteration while serving (engine.calibrate.measure_iterations): its batch and the
    wall time from its scheduling to the next one's."""
    model: str
    tokens: int  # decodes + prompt tokens (unpadded)
    decodes: int
    chunks: int  # prompt chunks
    decode_ctx: int  # sum of the decodes' context
    prefill_ctx: int  # sum of the chunks' context before them
    seconds: float = Field(gt=0)
    max_num_batched_tokens: int = Field(2048, ge=1)  # the serving engine's (its token buckets)
    # the forward's GPU time (CUDA events around it); seconds - gpu_seconds is the host time the GPU waited on.
    # None in profiles before this field: the 1B's serving iterations differed by 3-5% between calibrations,
    # outside the operator tables, and this is what tells host time from device time in the next ones
    gpu_seconds: float | None = Field(None, gt=0)
    tp: int = Field(1, ge=1)  # the engine's tensor-parallel degree while serving
    # the weight format the engine served (an FP8 decode step runs more, smaller kernels than a bf16 one: its
    # host and launch overhead is its own)
    quantization: str = "bf16"


class Profile(_S):
    schema_version: int = SCHEMA_VERSION
    gpu: str  # catalog name the profile stands for
    device_name: str
    driver: str = ""
    torch: str = ""
    cuda: str = ""
    engine_version: str = ""
    created: str = ""
    copy_bandwidth_gbps: float | None = None
    gemm: list[GemmRow] = []
    attention: list[AttnRow] = []
    allreduce: list[AllReduceRow] = []
    steps: list[StepRow] = []
    iterations: list[IterRow] = []
    overhead_graph_s: float | None = None  # per-step CPU + launch cost measured directly
    overhead_eager_s: float | None = None
    kernels: bool = False  # measured with the engine's CUDA kernels (EngineConfig.kernels) on
    # > 0: the steps with a prefill ran as piecewise CUDA graphs, padded to token_buckets(this), the
    # max_num_batched_tokens of the calibration engine; 0: eagerly, padded to a multiple of 64
    piecewise_max_tokens: int = Field(0, ge=0)
    # the calibrations whose serving iterations this profile pools (pool_iterations), "device_name created"
    # each, this one's first; empty for a single calibration
    iteration_sources: list[str] = []
    # seconds of engine.host_speed's fixed Python workload on the calibration host (None before this field):
    # the host share of its serving iterations scales with it on another machine
    host_bench_s: float | None = Field(None, gt=0)
    # each of the host benchmarks behind host_bench_s (their median): at the start, around every serving ramp,
    # at the end; empty in older profiles. Their spread says whether the host's speed held while calibrating
    host_bench_samples_s: list[Annotated[float, Field(gt=0)]] = []

    @classmethod
    def load(cls, path: str | Path) -> "Profile":
        p = Path(path)
        if not p.exists():
            raise InputError([("cost_model.profile", f"calibration profile '{p}' does not exist")])
        try:
            text = gzip.decompress(p.read_bytes()).decode() if p.suffix == ".gz" else p.read_text()
            prof = cls.model_validate(json.loads(text))
        except Exception as e:  # pydantic or JSON
            raise InputError([("cost_model.profile", f"{p}: not a valid calibration profile: {e}")])
        if prof.schema_version != SCHEMA_VERSION:
            raise InputError([("cost_model.profile", f"{p}: schema version {prof.schema_version}, "
                                                        f"this planner reads {SCHEMA_VERSION}")])
        return prof

    def save(self, path: str | Path) -> None:
        """JSON, gzip-compressed when the name ends in .gz (a profile's serving iterations run to megabytes)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        text = self.model_dump_json(indent=1)
        if p.suffix == ".gz":
            p.write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            p.write_text(text)


# what must match for serving iterations of two calibrations to be pooled: they measured the same engine setup
POOL_MUST_MATCH = ("gpu", "kernels", "piecewise_max_tokens", "schema_version")


def host_speed_spread(samples) -> float:
    """Median over fastest of a calibration's host benchmarks, minus one: how much slower than its best the
    host typically ran while the serving iterations were timed. The median, not the slowest: one sample
    can catch a momentary stall (one calibration's eight: seven of 2.96-3.93 ms, one of 5.51 ms; its profile
    met 40 of 40 on the H100 runs), while a host slow for most of the ramps moves the median."""
    xs = [float(x) for x in samples]
    if not xs or min(xs) <= 0:
        raise ValueError(f"host benchmark samples must be positive seconds, got {samples!r}")
    return float(np.median(xs)) / min(xs) - 1


def host_speed_warning(samples, tolerance: float = 0.25) -> str | None:
    """A warning when the host ran typically more than `tolerance` slower than its fastest during a
    calibration, else None.

    A lent H100 whose host ran the fixed workload in 4.48 ms on average while calibrating (3.17 ms before the
    call, 4.85 ms after it) and in 2.94-3.41 ms in the replays right after gave a profile 5-15% slow on the
    1B's TPOT -- the worst of nine calibrations (README, "A slow host during calibration makes a slow
    profile"). The fitted overheads carry whatever host the ramps ran on."""
    spread = host_speed_spread(samples)
    if spread <= tolerance:
        return None
    xs = [float(x) * 1e3 for x in samples]
    return (f"the host ran {spread:.0%} slower than its fastest during calibration (fixed workload: median "
            f"{float(np.median(xs)):.2f} ms, {min(xs):.2f}-{max(xs):.2f} ms around the serving ramps): its fitted "
            f"overheads carry a slowed host; pool it with other calibrations (planner pool-profiles) or calibrate "
            f"again")


# What the engine's quantized projections run today, as `engine calibrate` labels the GEMM tables it measures (a
# table under another label was timed with kernels the engine has since replaced: the planner says so).
ENGINE_GEMM_KERNELS = {"fp8": "w8a8 Triton at 8-64 rows (engine.quant.FP8_W8A8_ROWS), w8 stream below "
                              "(engine.quant.fp8_streams; split-K added in-kernel), scaled_mm above",
                       "int8": "w8a16 gemv <=4 rows, w8a16 mma by launch rule (split-K added in-kernel), "
                               "dequantize + cuBLAS >=256 rows"}


def add_tables(base: Profile, extra: Profile, replace_iterations: bool = False) -> Profile:
    """`base` with the tables `extra` measured that base lacks or has only in a slower or older form: GEMM rows
    of a (quantization, kernel) base has none of (a quantized table under a new kernel name replaces base's table
    of that format: the dequantize path's, or the engine's earlier kernels'), GEMM shapes and attention layouts
    base has no rows of, all-reduce rows of TP
    degrees base has not measured, and serving iterations of tensor-parallel or quantized engines: pooled with
    base's (another ramp of the same engine), or with replace_iterations replacing base's of the same weight format
    and TP degree (the engine's kernels for it changed since: an overhead fitted to a mix of the two would be
    neither's). The bf16 tables and the single-GPU bf16 iterations stay base's."""
    if extra.gpu != base.gpu:
        raise ValueError(f"the extra tables are for {extra.gpu}, the base profile for {base.gpu}")
    have = {(r.quantization, r.kernel) for r in base.gemm}
    new = {(r.quantization, r.kernel) for r in extra.gemm} - have
    # a named kernel's table replaces base's table of the same format under any other name -- the dequantize
    # path's (no name), or an earlier kernel the engine has since replaced -- so one format keeps one table
    replaced = {q: k for q, k in new if k and q != "bf16"}
    gemm = [r for r in base.gemm if not (r.quantization in replaced and r.kernel != replaced[r.quantization])]
    gemm += [r for r in extra.gemm if (r.quantization, r.kernel) in new]
    shapes = {(r.quantization, r.kernel, r.n, r.k) for r in gemm}  # shapes base has no rows of, any format
    gemm += [r for r in extra.gemm if (r.quantization, r.kernel) not in new
             and (r.quantization, r.kernel, r.n, r.k) not in shapes]
    layouts = {(r.kind, r.heads, r.kv_heads, r.head_dim, r.kv_dtype) for r in base.attention}
    attention = list(base.attention) + [r for r in extra.attention
                                        if (r.kind, r.heads, r.kv_heads, r.head_dim, r.kv_dtype) not in layouts]
    have = {(r.tp, r.graph) for r in base.allreduce}  # eager and in-graph tables are kept apart
    allreduce = list(base.allreduce) + [r for r in extra.allreduce if (r.tp, r.graph) not in have]
    added = [r for r in extra.iterations if r.tp > 1 or r.quantization != "bf16"]
    again = {(r.quantization, r.tp) for r in added} if replace_iterations else set()
    iterations = [r for r in base.iterations if (r.quantization, r.tp) not in again] + added
    return base.model_copy(update={"gemm": gemm, "attention": attention, "allreduce": allreduce,
                                   "iterations": iterations,
                                   "iteration_sources": base.iteration_sources + (
                                       [f"{extra.device_name} {extra.created} (tables)"])})


def pool_iterations(base: Profile, others: list[Profile], names: list[str] | None = None) -> Profile:
    """`base` (its operator tables) with the serving iterations of every calibration pooled.

    One calibration is one machine: the operator tables of seven H100 calibrations agreed within about 1%,
    their serving iterations (to which the overhead is fitted) by only 3-8% per batch bin. A planner answers
    for a GPU kind, so the product profile pools them. names: what to call each of `others` in errors."""
    names = names or [f"profile {i + 2}" for i in range(len(others))]
    for name, o in zip(names, others):
        for field in POOL_MUST_MATCH:
            if getattr(o, field) != getattr(base, field):
                raise ValueError(f"{name}: {field} is {getattr(o, field)!r}, the base profile's is "
                                 f"{getattr(base, field)!r}; pool calibrations of one GPU kind and engine setup only")
        if not o.iterations:
            raise ValueError(f"{name}: no serving iterations to pool")
    if not base.iterations:
        raise ValueError("the base profile has no serving iterations to pool")

    def sources(p: Profile) -> list[str]:
        return p.iteration_sources or [f"{p.device_name} {p.created}"]
    its, src = list(base.iterations), sources(base)
    for o in others:
        its += o.iterations
        src += sources(o)
    return base.model_copy(update={"iterations": its, "iteration_sources": src})
