"""Step-cost model: how long one engine iteration takes (the DESIGN.md contract).

`step_time(batch)` where a batch is its prefill chunks `(tokens, context_before)`
and its decode sequences' context lengths (KV tokens after the step's token is
appended). The simulator calls it through `StepCostModel`, never knowing whether
the figures are roofline or calibrated.

The roofline composes, per layer: four GEMM groups (QKV, O, gate+up, down; each
max(FLOPs / achievable compute, bytes / achievable bandwidth)), attention
(prefill: causal FLOPs vs KV read; decode: KV read), elementwise traffic, two
ring all-reduces under TP; then the LM head for the sampled rows and a fixed
per-step overhead. Decode attention is linear in total context, so a run of k
decode steps has a closed-form sum -- what the simulator's fast-forward uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from planner.catalog import GPUSpec, ModelSpec
from planner.memory import WEIGHT_BYTES, kv_dtype_bytes, kv_heads_per_gpu

ACT_BYTES = 2  # bf16 activations


@dataclass(frozen=True)
class Batch:
    prefill: tuple[tuple[int, int], ...] = ()  # (chunk tokens, tokens already in KV before the chunk)
    decode: tuple[int, ...] = ()  # context length of each decoding sequence
    sampled_prefills: int | None = None  # prefill chunks that finish their prompt (sample a token); default all

    @property
    def num_tokens(self) -> int:
        return sum(c for c, _ in self.prefill) + len(self.decode)


@dataclass
class StepBreakdown:
    gemm: float = 0.0
    attention: float = 0.0
    elementwise: float = 0.0
    allreduce: float = 0.0
    lm_head: float = 0.0
    overhead: float = 0.0
    flops: float = 0.0
    bytes: float = 0.0
    bound: dict = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.gemm + self.attention + self.elementwise + self.allreduce + self.lm_head + self.overhead


class StepCostModel:
    """Interface the simulator uses. Subclasses implement `_step`; the rest is shared."""

    kind = "abstract"
    description = ""

    def step_time(self, batch: Batch) -> float:
        n_samp = len(batch.decode) + (len(batch.prefill) if batch.sampled_prefills is None else batch.sampled_prefills)
        return self.time(batch.num_tokens, n_samp, sum(batch.decode), batch.prefill)

    def time(self, num_tokens: int, num_sampled: int, decode_ctx_sum: int,
             prefill: tuple | list = ()) -> float:
        raise NotImplementedError

    def decode_time(self, batch_size: int, ctx_sum: int) -> float:
        return self.time(batch_size, batch_size, ctx_sum)

    def decode_run_time(self, batch_size: int, ctx_sum: int, steps: int) -> float:
        """Time of `steps` decode iterations where every context grows by one per step."""
        return sum(self.decode_time(batch_size, ctx_sum + j * batch_size) for j in range(steps))

    def decode_steps_within(self, batch_size: int, ctx_sum: int, max_steps: int, elapsed: float) -> int:
        """Largest j <= max_steps with decode_run_time(j) <= elapsed (binary search; run time grows with j)."""
        lo, hi = 0, max_steps
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.decode_run_time(batch_size, ctx_sum, mid) <= elapsed:
                lo = mid
            else:
                hi = mid - 1
        return lo


class ConstantCostModel(StepCostModel):
    """Every step takes the same time: for queueing-theory checks (M/D/1)."""

    kind = "constant"

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.description = f"constant {seconds * 1e3:.3g} ms/step"

    def time(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()):
        return self.seconds

    def decode_run_time(self, batch_size, ctx_sum, steps):
        return self.seconds * steps


class RooflineCostModel(StepCostModel):
    kind = "roofline"

    def __init__(self, model: ModelSpec, gpu: GPUSpec, *, tp: int = 1, quantization: str = "bf16",
                 kv_cache_dtype: str = "auto", bandwidth_eff: float = 0.866, compute_eff: float = 0.766,
                 attention_compute_eff: float = 0.5, interconnect_eff: float = 0.8,
                 allreduce_latency_s: float = 1e-5, step_overhead_s: float = 1.5e-4):
        self.model, self.gpu, self.tp, self.quant = model, gpu, tp, quantization
        self.description = f"roofline {model.name} on {tp}x {gpu.name} ({quantization})"
        self.bw = gpu.hbm_bandwidth_gbps * 1e9 * bandwidth_eff
        peak = gpu.bf16_tflops
        if quantization == "fp8" and gpu.fp8_tflops:  # W8A8 on FP8 tensor cores; elsewhere weight-only
            peak = gpu.fp8_tflops
        self.flops = peak * 1e12 * compute_eff
        self.attn_flops = gpu.bf16_tflops * 1e12 * attention_compute_eff
        self.link = gpu.interconnect_gbps * 1e9 * interconnect_eff
        self.ar_lat = allreduce_latency_s
        self.overhead = step_overhead_s
        m, h = model, model.hidden_size
        wb = WEIGHT_BYTES[quantization]
        # (N, K) of each GEMM group of one layer, on one rank
        self.gemms = [((m.q_dim + 2 * m.kv_dim) // tp, h), (h, m.q_dim // tp),
                      (2 * m.intermediate_size // tp, h), (h, m.intermediate_size // tp)]
        self.wbytes = wb
        self.L = m.num_layers
        self.qh = m.num_attention_heads // tp
        kvh = kv_heads_per_gpu(m, tp)
        self.kv_tok_layer = 2 * kvh * m.hd * kv_dtype_bytes(kv_cache_dtype)  # bytes of K+V per token per layer
        self.attn_flops_per_pair = 4 * m.hd * self.qh  # QK^T and PV, per (query, key) pair, per layer
        # decode attention is linear in total context: seconds per context token, all layers
        self.decode_attn_per_ctx = self.L * max(self.kv_tok_layer / self.bw,
                                                self.attn_flops_per_pair / self.attn_flops)
        self.elem_bytes_per_token = self.L * (8 * h + 3 * m.intermediate_size / tp) * ACT_BYTES
        self._fixed_cache: dict[tuple[int, int], float] = {}

    # ---------------------------------------------------------------- pieces
    def _gemm(self, T: int) -> tuple[float, float, float]:
        t = fl = by = 0.0
        for n, k in self.gemms:
            f = 2.0 * T * n * k
            b = n * k * self.wbytes + T * (n + k) * ACT_BYTES
            t += max(f / self.flops, b / self.bw)
            fl += f
            by += b
        return t * self.L, fl * self.L, by * self.L

    def _lm_head(self, S: int) -> float:
        if S == 0:
            return 0.0
        m = self.model
        n, k = m.vocab_size // self.tp, m.hidden_size
        t = max(2.0 * S * n * k / self.flops, (n * k * 2 + S * (k * 2 + n * 4)) / self.bw)
        if self.tp > 1:  # gather the vocab-parallel logits
            t += self.ar_lat + (self.tp - 1) / self.tp * S * m.vocab_size * 4 / self.link
        return t

    def _allreduce(self, T: int) -> float:
        if self.tp == 1:
            return 0.0
        nbytes = T * self.model.hidden_size * ACT_BYTES
        return 2 * self.L * (self.ar_lat + 2 * (self.tp - 1) / self.tp * nbytes / self.link)

    def _prefill_attn(self, prefill) -> float:
        t = 0.0
        for c, p in prefill:
            pairs = c * p + c * (c + 1) / 2  # causal: token i sees p + i + 1 keys
            t += max(pairs * self.attn_flops_per_pair / self.attn_flops, (p + c) * self.kv_tok_layer / self.bw)
        return t * self.L

    def _fixed(self, T: int, S: int) -> float:
        """Everything but attention: depends only on (tokens, sampled rows), so it is memoized."""
        key = (T, S)
        v = self._fixed_cache.get(key)
        if v is None:
            v = (self._gemm(T)[0] + self._lm_head(S) + self._allreduce(T)
                 + T * self.elem_bytes_per_token / self.bw + self.overhead)
            self._fixed_cache[key] = v
        return v

    # ---------------------------------------------------------------- interface
    def time(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()):
        if num_tokens == 0:
            return 0.0
        t = self._fixed(num_tokens, num_sampled) + decode_ctx_sum * self.decode_attn_per_ctx
        if prefill:
            t += self._prefill_attn(prefill)
        return t

    def decode_run_time(self, batch_size, ctx_sum, steps):
        if steps <= 0:
            return 0.0
        total_ctx = steps * ctx_sum + batch_size * steps * (steps - 1) // 2
        return steps * self._fixed(batch_size, batch_size) + total_ctx * self.decode_attn_per_ctx

    def decode_steps_within(self, batch_size, ctx_sum, max_steps, elapsed):
        # closed form of the quadratic, then nudged to be exact against decode_run_time
        import math
        f, a, B = self._fixed(batch_size, batch_size), self.decode_attn_per_ctx, batch_size
        qa, qb = a * B / 2, f + a * ctx_sum - a * B / 2
        if qa > 0:
            j = int((-qb + math.sqrt(max(qb * qb + 4 * qa * elapsed, 0.0))) / (2 * qa))
        else:
            j = int(elapsed / qb) if qb > 0 else max_steps
        j = max(0, min(j, max_steps))
        while j < max_steps and self.decode_run_time(B, ctx_sum, j + 1) <= elapsed:
            j += 1
        while j > 0 and self.decode_run_time(B, ctx_sum, j) > elapsed:
            j -= 1
        return j

    def breakdown(self, batch: Batch) -> StepBreakdown:
        """Where one step's time goes, and whether each part is compute- or bandwidth-bound."""
        T = batch.num_tokens
        S = len(batch.decode) + (len(batch.prefill) if batch.sampled_prefills is None else batch.sampled_prefills)
        g, gf, gb = self._gemm(T)
        attn = sum(batch.decode) * self.decode_attn_per_ctx + self._prefill_attn(batch.prefill)
        bd = StepBreakdown(gemm=g, attention=attn, elementwise=T * self.elem_bytes_per_token / self.bw,
                           allreduce=self._allreduce(T), lm_head=self._lm_head(S), overhead=self.overhead,
                           flops=gf, bytes=gb)
        bd.bound["gemm"] = "compute" if gf / self.flops > gb / self.bw else "bandwidth"
        return bd

    def decode_work(self, batch_size: int, ctx_sum: int, steps: int = 1) -> tuple[float, float]:
        """(FLOPs, bytes) of `steps` decode iterations, for MFU/MBU accounting."""
        _, gf, gb = self._gemm(batch_size)
        total_ctx = steps * ctx_sum + batch_size * steps * (steps - 1) // 2
        return (steps * gf + total_ctx * self.L * self.attn_flops_per_pair,
                steps * gb + total_ctx * self.L * self.kv_tok_layer)


def build_cost_model(sc) -> StepCostModel:
    """The cost model a scenario asks for."""
    e, f = sc.cost_model.efficiency, sc.fleet
    kw = dict(tp=f.tensor_parallel_size, quantization=f.quantization, kv_cache_dtype=f.kv_cache_dtype,
              bandwidth_eff=e.bandwidth, compute_eff=e.compute, attention_compute_eff=e.attention_compute,
              interconnect_eff=e.interconnect, allreduce_latency_s=e.allreduce_latency_s,
              step_overhead_s=e.step_overhead_s)
    if sc.cost_model.kind == "calibrated":
        from planner.calibrated import CalibratedCostModel
        return CalibratedCostModel.from_profile(sc.cost_model.profile, sc.model_spec(), sc.gpu_spec(),
                                                max_num_batched_tokens=f.max_num_batched_tokens, **kw)
    return RooflineCostModel(sc.model_spec(), sc.gpu_spec(), **kw)


