"""The roofline step cost: every operator at the achievable fraction of the GPU's peaks.

It composes, per layer: four GEMM groups (QKV, O, gate+up, down; each
max(FLOPs / achievable compute, bytes / achievable bandwidth)), attention
(prefill: causal FLOPs vs KV read; decode: KV read), elementwise traffic, two
ring all-reduces under TP; then the LM head for the sampled rows and a fixed
per-step overhead. Decode attention is linear in total context, so a run of k
decode steps has a closed-form sum -- what the simulator's fast-forward uses.
"""
from __future__ import annotations

import math

from contract.catalog import GPUSpec, ModelSpec
from planner.cost.base import StepCostModel, StepTime
from planner.memory import WEIGHT_BYTES, kv_dtype_bytes, kv_heads_per_gpu

ACT_BYTES = 2  # bf16 activations


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

    def gemm_roof(self, M: int, n: int, k: int) -> float:
        """One GEMM's roofline time at this weight format: the larger of its compute and its memory time."""
        return max(2.0 * M * n * k / self.flops, (n * k * self.wbytes + M * (n + k) * ACT_BYTES) / self.bw)

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

    def breakdown(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()) -> StepTime:
        T, S = num_tokens, num_sampled
        if T == 0:
            return StepTime()
        return StepTime(gemm=self._gemm(T)[0], attention=decode_ctx_sum * self.decode_attn_per_ctx
                        + (self._prefill_attn(prefill) if prefill else 0.0), allreduce=self._allreduce(T),
                        lm_head=self._lm_head(S), elementwise=T * self.elem_bytes_per_token / self.bw,
                        overhead=self.overhead)

    def gemm_bound(self, num_tokens: int) -> str:
        """Whether a step's GEMMs at this token count are compute- or bandwidth-bound on this GPU."""
        _, fl, by = self._gemm(num_tokens)
        return "compute" if fl / self.flops > by / self.bw else "bandwidth"

    def decode_work(self, batch_size: int, ctx_sum: int, steps: int = 1) -> tuple[float, float]:
        """(FLOPs, bytes) of `steps` decode iterations, for MFU/MBU accounting."""
        _, gf, gb = self._gemm(batch_size)
        total_ctx = steps * ctx_sum + batch_size * steps * (steps - 1) // 2
        return (steps * gf + total_ctx * self.L * self.attn_flops_per_pair,
                steps * gb + total_ctx * self.L * self.kv_tok_layer)

