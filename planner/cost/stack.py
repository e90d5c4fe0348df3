"""A serving stack's step cost: the hardware profile's operators at the stack's efficiency, plus its host.

    step = op_scale x (GEMMs + attention + LM head + allreduce_scale x all-reduce, from the hardware tables)
           + step_overhead_s + per_seq_overhead_s x sequences

or, for a stack whose scheduler prepares the next batch while the GPU runs this one (`host_overlap`), the longer
of the two terms: the host's time hides behind the GPU's until it is the larger.

The hardware tables are the calibrated model's (this engine's measurements, cross-GPU scaled and marked
EXTRAPOLATED on GPUs they were not measured on); the host terms and `op_scale` are the stack profile's
(planner/stacks.py), fitted to that stack's published results. This engine's own overhead fit is not used.
"""
from __future__ import annotations

import math
from dataclasses import replace

from planner.cost.base import StepTime
from planner.cost.calibrated import CalibratedCostModel, layout_scale


class StackCostModel(CalibratedCostModel):
    kind = "stack"
    fit_own_overhead = False
    # an FP8-KV attention table times this engine's kernel, which converts e4m3 on the ALUs and gains little
    # over bf16; the stacks' FP8-KV kernels are costed by the bytes they stream (the bf16 table, bytes halved)
    engine_fp8_kv_table = False
    decode_graph_padding = False  # the stacks capture other batch sizes (vLLM: every 8 to 512); charged unpadded

    def __init__(self, profile, model, gpu, stack, max_num_batched_tokens: int | None = None, **roofline_kw):
        self.stack = stack  # before the tables are built: it says how decode attention is read from them
        super().__init__(profile, model, gpu, max_num_batched_tokens, **roofline_kw)
        self.op_scale = stack.op_scale
        self.allreduce_scale = stack.allreduce_scale
        a, b = stack.step_overhead_s, stack.per_seq_overhead_s
        self.ovh = {"decode": (a, b), "prefill": (a, 0.0, 0.0, b)}
        self.ovh_a, self.ovh_b = a, b
        self._dec_bins = self._pre_bins = None
        self.jitter_ratios = {}
        self._buckets = None  # token padding is this engine's piecewise graphs, not the stack's
        self.overhead_source = f"stack {stack.name}"
        self._cache = {}
        hw = self.description.split(" on ", 1)
        self.description = (f"{stack.describe()}; hardware profile: {hw[0].replace('calibrated ', '')} on "
                            f"{hw[1].split(';')[0] if len(hw) > 1 else gpu.name}"
                            + ("; EXTRAPOLATED to this GPU" if self.extrapolated else "")
                            + "".join(f"; {u}" for u in self.untimed))

    def _layout_rank(self, lay: tuple, kind: str) -> tuple:
        """A stack's decode attention reads each KV head once for its whole query group (FlashInfer, FA3, XQA:
        bound by the KV bytes), while this engine's paged kernel slows with query heads beyond about four per KV
        head (the H100 profile at 64 sequences x 4096 tokens: 32/8 heads 392 us, 32/4 338 us for half the bytes,
        64/8 645 us for the same bytes). With `decode_attention: kv_bytes` a stack's decode is costed from the
        measured layouts with the fewest query heads per KV head -- where the engine's kernel streams at bandwidth
        -- scaled by KV width; then the same head dim, the closest KV width, the closest query heads. The presets
        keep `engine_kernel` (the kernel as timed), which held-out set 12's registered comparison kept."""
        if kind != "decode" or self.stack.decode_attention == "engine_kernel":
            return super()._layout_rank(lay, kind)
        want = self.layout[1] * self.layout[2]
        return (lay[0] / lay[1], lay[2] != self.layout[2], abs(math.log(lay[1] * lay[2] / want)),
                abs(lay[0] - self.layout[0]), lay)

    def _layout_scale(self, best: tuple, kind: str) -> float:
        if self.stack.decode_attention == "kv_bytes":  # bandwidth-bound: KV bytes alone
            return layout_scale(self.layout, best, kind)
        return super()._layout_scale(best, kind)

    def _ops(self, T, S, ctx_sum, prefill, scaled: bool = True) -> float:
        ops = super()._ops(T, S, ctx_sum, prefill, scaled)
        if self.allreduce_scale != 1.0 and self.tp > 1:  # no token padding here (_buckets is None)
            ops += (self.allreduce_scale - 1.0) * self._allreduce(T, scaled)
        return self.op_scale * ops

    def time(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()):
        t = super().time(num_tokens, num_sampled, decode_ctx_sum, prefill)
        if not self.stack.host_overlap or num_tokens == 0:
            return t
        host = self._overhead(num_tokens, num_sampled, len(list(prefill)))  # the stack's host terms
        return max(t - host, host)

    def breakdown(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()) -> StepTime:
        bd = super().breakdown(num_tokens, num_sampled, decode_ctx_sum, prefill)
        s = self.op_scale
        out = StepTime(gemm=bd.gemm * s, attention=bd.attention * s, allreduce=bd.allreduce * s * self.allreduce_scale,
                       lm_head=bd.lm_head * s, overhead=bd.overhead)
        if self.stack.host_overlap and num_tokens:  # only the host time the GPU's does not cover is waited for
            gpu = out.gemm + out.attention + out.allreduce + out.lm_head + out.elementwise
            out = replace(out, overhead=max(0.0, bd.overhead - gpu))
        return out
