"""Calibrated step cost: operator times measured by the engine, interpolated, composed like the roofline.

GEMMs are interpolated in log(M) per measured (N, K) (and scaled by N*K from the nearest measured shape
when a shape is new); attention per layer from the (batch, context) and (tokens, context) tables,
bilinear in log space, scaled by KV heads x head dim for other head layouts; the rest of a step --
norms, RoPE, sampling, launch and CPU scheduling -- is fitted to the engine's serving iterations (or, in
older profiles, its isolated whole steps); see _fit_overhead. On a GPU the profile was not measured on, each operator's
roofline time on the source GPU (at most its measured time) is scaled by the ratio of the resource that bounds it,
and the rest of its measured time -- launch latency, partial waves, tails, which SM count and clocks set, not the
memory -- is kept (added back for GEMMs; for decode attention the two overlap, see DECODE_ATTN_P); the model
says it extrapolated. Scaling the whole measured time instead assumes every operator ran at the roofline: an
H100 profile then put 1B/8B decode steps on an H200 8-16% fast (measured speed-up of a batch-64 8B decode step
1.20x against a bandwidth ratio of 1.43x; the H200 has the H100's SMs and clocks).
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from contract.catalog import GPUS
from contract.errors import InputError
from contract.profile import ENGINE_GEMM_KERNELS, Profile, decode_graph_rows, token_buckets
from planner.cost.base import StepCostModel, StepTime
from planner.cost.roofline import ACT_BYTES, RooflineCostModel

# Decode attention on another GPU: its roofline part (KV bytes over the peak) and the rest (the longest
# sequence's chain of dependent block reads, partial waves) overlap -- t^2 = i^2 + l^2 -- instead of adding.
# Paired serving-like measurements (bench/attention_layout.py, 24 batch x context points of the 1B and 8B
# layouts, H100 and H200): the additive rule put the H200 times 9.8% fast (RMS, down to -20%), p = 2 within
# 4.7% RMS (-12% to +6%); the H200 ran them only 1.00-1.17x faster against a bandwidth ratio of 1.43.
# p was chosen on these points, as a round value (3 fits them slightly better, 3.9%).
DECODE_ATTN_P = 2.0
# GEMMs add the two parts. Paired cold GEMM tables (engine calibrate on an H100 and an H200, weights read from
# HBM): 440 shape x token-count points at M <= 128 within 7.3% RMS (p = 1.5: 6.3%, p = 2: 7.0%); each model's
# per-layer GEMMs at decode token counts within 6% (1B) and 1% (8B) of the H200's own table -- but the 8B's at
# 32-128 tokens ran 2.4-5.0% longer on the H200 than carried over, which no smooth-max variant fixed.
GEMM_P = 1.0
# Mean contexts per sequence where decode step times are composed exactly; linear in between: within 0.05%
# of the composed step on the profile's GPU, 0.6% on another (the cross-GPU rule's min() kinks between knots).
DEC_KNOTS = 2.0 ** (np.arange(0, 81) / 4.0)  # 1 .. 2^20, a factor 2^(1/4) apart


def _interp_log(xs: np.ndarray, ys: np.ndarray, x: float) -> float:
    """Piecewise-linear in (log x, log y); linear extrapolation in log space beyond the ends."""
    if len(xs) == 1:
        return float(ys[0] * x / xs[0])
    return _interp_loglog(np.log(xs), np.log(ys), x)


def _interp_loglog(lx: np.ndarray, ly: np.ndarray, x: float) -> float:
    """_interp_log on tables already in log space (the hot path: profiles hold 10^5 serving iterations)."""
    v = math.log(max(x, 1e-9))
    n = len(lx)
    i = min(max(int(np.searchsorted(lx, v)) - 1, 0), n - 2)
    t = (v - lx[i]) / (lx[i + 1] - lx[i])
    return math.exp(ly[i] + t * (ly[i + 1] - ly[i]))


def _pad(T: int, buckets) -> int:
    """The smallest bucket holding T tokens (T itself without buckets or past the largest)."""
    if not buckets:
        return T
    return next((b for b in buckets if b >= T), T)


def layout_rank(target: tuple, lay: tuple) -> tuple:
    """Which measured attention layout (heads, KV heads, head dim) stands for `target`: itself, else the one closest
    in KV width (what decode attention streams), then with the same head dim (another head dim is another kernel
    instance), then in query heads; the layout itself last, so the choice never depends on set order."""
    return (lay != target, abs(math.log(lay[1] * lay[2] / (target[1] * target[2]))), lay[2] != target[2],
            abs(lay[0] - target[0]), lay)


def layout_scale(target: tuple, best: tuple, kind: str, query_weight: float = 0.0) -> float:
    """The factor carrying `best`'s attention time to `target`: prefill by query heads (compute over every head),
    decode by KV bytes^(1 - w) x query heads^w."""
    q = (target[0] * target[2]) / (best[0] * best[2])
    if kind != "decode":
        return q
    kv = (target[1] * target[2]) / (best[1] * best[2])
    return kv ** (1 - query_weight) * q ** query_weight


class _Table2D:
    """y(a, c) on a grid, bilinear in log space (in c + 1: a prefill's context before may be 0)."""

    def __init__(self, rows):
        self.a = np.array(sorted({r[0] for r in rows}), dtype=float)
        self.c = np.array(sorted({r[1] + 1 for r in rows}), dtype=float)
        grid = {(r[0], r[1] + 1): r[2] for r in rows}
        self.y = np.array([[grid.get((a, c), np.nan) for c in self.c] for a in self.a])
        if np.isnan(self.y).any():  # fill holes along context
            for i in range(len(self.a)):
                ok = ~np.isnan(self.y[i])
                self.y[i] = np.interp(self.c, self.c[ok], self.y[i, ok])

    def __call__(self, a: float, c: float) -> float:
        if not hasattr(self, "_la"):
            self._la, self._lc, self._ly = np.log(self.a), np.log(self.c), np.log(self.y)
        if len(self.a) == 1:
            col = self.y[0] * a / self.a[0]
        else:  # one interpolation along a for every context column at once
            v = math.log(max(a, 1e-9))
            i = min(max(int(np.searchsorted(self._la, v)) - 1, 0), len(self.a) - 2)
            t = (v - self._la[i]) / (self._la[i + 1] - self._la[i])
            col = np.exp(self._ly[i] + t * (self._ly[i + 1] - self._ly[i]))
        if len(self.c) == 1:
            return float(col[0] * (c + 1.0) / self.c[0])
        return _interp_loglog(self._lc, np.log(col), c + 1.0)


# How an in-graph all-reduce's time grows with the TP degree inside one NVSwitch node: t(n) = t(m) x
# ((n-1)/(m-1))^alpha at every message size. The ring model (latency x 2(n-1) steps, bytes x 2(n-1)/n) carried the
# H100's TP=2 table to TP=4 +121..+142% too slow at decode-sized messages and +25..+33% at 4-256 MB
# (lab/studies/allreduce_extrapolation); NCCL's low-latency protocols do not pay a ring's per-step latency there.
# The default is the median exponent of the H100's two measured in-graph degrees (TP=2 and TP=4, every message
# size: 0.18-0.32); the H200's eager rows at 16-256 MB, which no launch cost bounds, give 0.23-0.27.
DEFAULT_DEGREE_EXPONENT = 0.242


def degree_factor(tp_from: int, tp_to: int, alpha: float) -> float:
    """Time of an all-reduce at `tp_to` over its time at `tp_from`, same message size."""
    return ((tp_to - 1) / (tp_from - 1)) ** alpha


def degree_exponent(rows) -> tuple[float, str]:
    """(alpha, where it came from): the median over message sizes and pairs of measured in-graph degrees of a
    profile that has two or more, else DEFAULT_DEGREE_EXPONENT."""
    t = {(r.tp, r.bytes): r.seconds for r in rows if r.graph}
    tps = sorted({k[0] for k in t})
    e = [math.log(t[(n, b)] / t[(m, b)]) / math.log((n - 1) / (m - 1))
         for i, m in enumerate(tps) for n in tps[i + 1:] for (k, b) in t if k == m and (n, b) in t]
    if e:
        return float(np.median(e)), f"fitted on this profile's TP {tps}"
    return DEFAULT_DEGREE_EXPONENT, "the H100's measured TP=2/TP=4 exponent"


# the fewest serving iterations the overhead is fitted on (fewer: the isolated steps, or the bf16 engine's iterations)
MIN_FIT_ITERATIONS = 50


class CalibratedCostModel(StepCostModel):
    kind = "calibrated"
    fit_own_overhead = True  # False: the operator tables only (planner/cost/stack.py adds a stack's overhead)
    engine_fp8_kv_table = True  # an FP8 cache's decode attention from the engine kernel's FP8 table, if measured
    # the per-token-bin correction of steps with a prefill (_pre_corr). Off: grid 15, registered to decide it, scored
    # 26 of 33 cells with it against 25 without, short of the 80% its rule asked (docs/validation_protocol.md)
    prefill_token_bins = False
    # decode steps charged at their CUDA graph's batch (contract.profile.decode_graph_rows: the engine replays the
    # smallest captured graph holding the batch, so a step of 20 sequences runs its GEMMs at 32 rows -- on a
    # quantized path switch, another kernel than the table's interpolation between 16 and 32 assumes). On since
    # grid 16 (docs/validation_protocol.md), registered to decide it: 32 of 35 cells with it, 31 without.
    decode_graph_padding = True

    def __init__(self, profile: Profile, model, gpu, max_num_batched_tokens: int | None = None, **roofline_kw):
        """max_num_batched_tokens: the served engine's; with a piecewise-graph profile, a step with a prefill
        is charged GEMMs at its padded token bucket, as the engine runs it."""
        self.profile, self.model, self.gpu = profile, model, gpu
        self._dec_pad = self.decode_graph_padding  # fixed at construction: the overhead fit is made with it
        pw = profile.piecewise_max_tokens
        self._fit_buckets = token_buckets(pw) if pw else None
        self._buckets = token_buckets(max_num_batched_tokens or pw) if pw else None
        self.roof = RooflineCostModel(model, gpu, **roofline_kw)
        self.tp, self.L = self.roof.tp, model.num_layers
        src = GPUS.get(profile.gpu)
        self.extrapolated = src is not None and src.name != gpu.name
        self.src_roof = RooflineCostModel(model, src, **roofline_kw) if self.extrapolated else self.roof
        self.description = (f"calibrated ({profile.device_name}, {len(profile.gemm)} GEMM / "
                            f"{len(profile.attention)} attention rows) {model.name} on {self.tp}x {gpu.name}"
                            + (f" -- EXTRAPOLATED from {profile.gpu} (roofline part of each operator scaled)"
                               if self.extrapolated
                               else ""))
        quant = roofline_kw.get("quantization", "bf16")
        self.kv_fp8 = roofline_kw.get("kv_cache_dtype") == "fp8"
        # an FP8 cache's decode attention: its own measured table where the profile has one, else the bf16
        # table with the K/V bytes halved (what a kernel that reads at bandwidth would gain; said so)
        self.kv_fp8_measured = self.kv_fp8 and self.engine_fp8_kv_table and any(
            r.kv_dtype == "fp8" and r.kind == "decode" for r in profile.attention)
        if self.kv_fp8:
            self.description += ("; FP8 KV cache: decode attention from its measured FP8 table"
                                 if self.kv_fp8_measured else
                                 "; FP8 KV cache: decode attention's K/V bytes halved from the bf16 tables "
                                 "(EXTRAPOLATED)")
        self._gemm_memo: dict = {}
        measured = {r.quantization for r in profile.gemm}
        # a weight format the profile has no table for: its bf16 times, each scaled by the ratio of the format's
        # roofline to bf16's on the profile's GPU (bytes for small M, the FP8 peak for large) -- said so below
        self.gemm_quant = quant if quant in measured else "bf16"
        self._scale_quant = None
        if self.gemm_quant != quant and quant not in ("bf16", "fp16"):
            self._scale_quant = (RooflineCostModel(model, src or gpu, **{**roofline_kw, "quantization": "bf16"}),
                                 RooflineCostModel(model, src or gpu, **roofline_kw))
            self.description += f"; {quant} GEMMs scaled from the bf16 tables by roofline (EXTRAPOLATED)"
        elif quant not in ("bf16", "fp16"):
            kernels = sorted({r.kernel or "dequantize + cuBLAS" for r in profile.gemm if r.quantization == quant})
            self.description += f"; {quant} GEMMs from the profile's measured {quant} table ({', '.join(kernels)})"
            if kernels != [ENGINE_GEMM_KERNELS.get(quant)]:
                self.description += (" -- timed with kernels this engine has since replaced: re-measure with "
                                     "`engine calibrate --extra --parts gemm`")
        self.gemm_tables = self._tables(profile, self.gemm_quant)
        self.head_tables = self._tables(profile, "bf16" if "bf16" in measured else self.gemm_quant)
        kvh = max(1, model.num_key_value_heads // self.tp)
        self.layout = (model.num_attention_heads // self.tp, kvh, model.hd)
        # what the profile never timed for this model is costed from its nearest measured neighbour: say which, as
        # a user reads the answer (a Qwen2.5-7B shape costed so ran its decode steps 13% longer than predicted, grid 18)
        self.untimed: list[str] = []  # kept apart too: a stack preset's answer repeats them
        untabled = [s for s in self.roof.gemms if s not in self.gemm_tables]
        if untabled and self.gemm_tables:
            self.untimed.append(f"{len(untabled)} of {len(self.roof.gemms)} projection shapes not in the profile's "
                                f"{self.gemm_quant} GEMM table, scaled from the nearest measured one (EXTRAPOLATED)")
        layouts = {(r.heads, r.kv_heads, r.head_dim) for r in profile.attention if r.kind == "decode"}
        if layouts and self.layout not in layouts:
            self.untimed.append(f"attention layout {self.layout[0]}/{self.layout[1]} heads x {self.layout[2]} not in "
                                "the profile, scaled from the nearest measured layout (EXTRAPOLATED)")
        self.description += "".join(f"; {u}" for u in self.untimed)
        self.dec = self._attn_table("decode")
        # decode_time's knots: a 2^(1/4) grid plus the attention table's own contexts, where its log-log
        # interpolation bends (a measured table need not be smooth between them)
        extra = np.array(self.dec[0].c - 1.0) if self.dec else np.array([])
        self._knots = np.unique(np.concatenate([DEC_KNOTS, extra[extra >= 1]]))
        self.pre = self._attn_table("prefill")
        # the engine's serving iterations at this TP degree, else at the largest measured below it (the host's
        # share of a TP step -- the plan broadcast, the extra launches -- measured at TP 2 stands for TP 4 and 8)
        measured_tp = {r.tp for r in profile.iterations if r.model == model.name}
        self.iteration_tp = self.tp if self.tp in measured_tp else max(
            [t for t in measured_tp if t <= self.tp], default=1)
        if self.iteration_tp != self.tp and self.tp > 1:
            self.description += (f"; host overhead of TP={self.tp} EXTRAPOLATED from serving iterations at "
                                 f"TP={self.iteration_tp}")
        # the weight format whose serving iterations the overhead is fitted on: the predicted format's own where the
        # profile holds enough of them (an FP8 decode step runs more and smaller kernels than a bf16 one, and its
        # host and launch time is its own), else the bf16 engine's -- then the overhead is what those took beyond
        # their own bf16 operators, whichever format is being predicted
        fmt = quant if quant not in ("bf16", "fp16") else "bf16"
        own = sum(r.model == model.name and r.tp == self.iteration_tp and r.quantization == fmt
                  for r in profile.iterations)
        self.iteration_quant = fmt if fmt != "bf16" and own >= MIN_FIT_ITERATIONS else "bf16"
        if fmt != "bf16" and self.fit_own_overhead:
            self.description += (f"; overhead fitted on {own} {fmt} serving iterations" if self.iteration_quant == fmt
                                 else f"; overhead from bf16 serving iterations ({own} of {fmt} in the profile, "
                                      f"fewer than {MIN_FIT_ITERATIONS})")
        self.overhead_from = None
        donor = None if self._has_own_timings() else self._donor_model()
        if not self.fit_own_overhead:  # a subclass brings its own (a serving stack's profile)
            self.ovh = {"decode": (0.0, 0.0), "prefill": (0.0, 0.0, 0.0, 0.0)}
            self._dec_bins, self.jitter_ratios, self.overhead_source, self.fit_points = None, {}, "", 0
            self._pre_bins = None
            self.ovh_a = self.ovh_b = 0.0
        elif donor is not None:
            # a model never run by the engine: its host and small-kernel overhead is a calibrated model's,
            # carried by shape (see _transfer_overhead) -- said so in the description
            ref = CalibratedCostModel(profile, donor, gpu, max_num_batched_tokens, **roofline_kw)
            self._transfer_overhead(ref)
        elif self.iteration_tp != self.tp:
            # ... and at their own TP degree: the overhead is fitted where the iterations ran, then carried
            ref = CalibratedCostModel(profile, model, gpu, max_num_batched_tokens,
                                      **{**roofline_kw, "tp": self.iteration_tp})
            self.ovh, self._dec_bins, self.jitter_ratios = ref.ovh, ref._dec_bins, ref.jitter_ratios
            self._pre_bins = ref._pre_bins
            self.overhead_source, self.fit_points = ref.overhead_source, ref.fit_points
            self.ovh_a, self.ovh_b = self.ovh["decode"]
        else:
            # ... with a bf16 KV cache too: the fit subtracts the attention the iterations ran, not the predicted
            # format's (an FP8 cache's table, or its halved bytes, would leave the difference in the overhead)
            predict = (self.gemm_tables, self._scale_quant, self.kv_fp8, self.kv_fp8_measured, self.dec)
            if self.iteration_quant == "bf16":  # ... and the operators they ran: bf16's
                self.gemm_tables, self._scale_quant = self.head_tables, None
            self.kv_fp8 = self.kv_fp8_measured = False
            self.dec = self._attn_table("decode")
            self._fit_overhead(roofline_kw.get("step_overhead_s", 1.5e-4))
            self.gemm_tables, self._scale_quant, self.kv_fp8, self.kv_fp8_measured, self.dec = predict
            self._gemm_memo.clear()
        self.host_share = self._host_share()
        if self.host_share:
            self.description += "; host " + ", ".join(f"{v:.0%} of {k} iterations" for k, v in self.host_share.items())
        self._cache: dict = {}

    def _has_own_timings(self) -> bool:
        return any(r.model == self.model.name for r in self.profile.iterations) or any(
            st.model == self.model.name for st in self.profile.steps)

    def _donor_model(self):
        """The calibrated model whose overhead stands for an uncalibrated one: among the models with serving
        iterations in the profile, the nearest in layer count (then in hidden size). None if there are none."""
        from contract.catalog import MODELS
        names = {r.model for r in self.profile.iterations} & set(MODELS)
        if not names:
            return None
        m = self.model
        return MODELS[min(sorted(names), key=lambda n: (abs(MODELS[n].num_layers - m.num_layers),
                                                         abs(MODELS[n].hidden_size - m.hidden_size)))]

    def _transfer_overhead(self, ref: "CalibratedCostModel") -> None:
        """Overhead of a model the engine never ran, from a calibrated one's fit: what is paid per layer (the
        fixed parts: launches and small kernels of every layer, each prompt chunk's attention call per layer)
        scales with the layer count; a prefill token's elementwise traffic with layers x hidden size; what is
        paid per sequence (Python scheduling, sampling) stays as measured. Step jitter is the donor's
        (ratios to the mean, not times)."""
        rl = self.L / ref.L
        rt = rl * self.model.hidden_size / ref.model.hidden_size
        a, b = ref.ovh["decode"]
        pa, pt, pc, ps = ref.ovh["prefill"]
        self.ovh = {"decode": (a * rl, b), "prefill": (pa * rl, pt * rt, pc * rl, ps)}
        self._dec_bins = None if ref._dec_bins is None else (ref._dec_bins[0], ref._dec_bins[1] * rl)
        self._pre_bins = None if ref._pre_bins is None else (ref._pre_bins[0], ref._pre_bins[1] * rl)
        self.jitter_ratios = ref.jitter_ratios
        self.overhead_source, self.fit_points = f"transferred from {ref.model.name}", ref.fit_points
        self.overhead_from = ref.model.name
        self.ovh_a, self.ovh_b = self.ovh["decode"]
        self.description += (f"; overhead TRANSFERRED from {ref.model.name} (no serving iterations of "
                             f"{self.model.name}: per-layer parts x{rl:.2f}, per-token x{rt:.2f})")

    def _host_share(self) -> dict[str, float]:
        """Share of this model's serving-iteration time the GPU spent waiting on the host (iteration minus its
        forward's GPU time), per kind; empty for profiles without per-iteration GPU time. A host of another
        speed moves this share, not the rest: what the figure tells a planner about another machine."""
        out = {}
        its = [r for r in self.profile.iterations if r.model == self.model.name and r.gpu_seconds
               and r.quantization == self.iteration_quant]
        for kind, mixed in (("decode", False), ("prefill", True)):
            sel = [r for r in its if (r.chunks > 0) == mixed]
            if sel:
                tot = sum(r.seconds for r in sel)
                out[kind] = max(0.0, tot - sum(r.gpu_seconds for r in sel)) / tot
        return out

    # ---------------------------------------------------------------- tables
    def _attn_table(self, kind: str):
        kv = "fp8" if kind == "decode" and self.kv_fp8_measured else "bf16"  # prefill reads a widened copy
        rows = [r for r in self.profile.attention if r.kind == kind and r.kv_dtype == kv]
        if not rows:
            return None
        layouts = {(r.heads, r.kv_heads, r.head_dim) for r in rows}
        best = min(layouts, key=lambda lay: self._layout_rank(lay, kind))
        tab = _Table2D([(r.a, r.context, r.seconds) for r in rows if (r.heads, r.kv_heads, r.head_dim) == best])
        return tab, self._layout_scale(best, kind)

    # How a decode-attention table of another layout is carried to this one: by KV bytes^(1-w) x query heads^w.
    # This engine's paged kernel is neither purely bandwidth- nor query-bound (H100 profile, 64 sequences x 4,096
    # tokens: 32/8 heads 392 us, 32/4 338 us for half the bytes, 64/8 645 us for 32/8's bytes), and at the operator
    # level w=0.5 carries the H100's 15 layouts best (lab/studies/attention_layouts: median error 7.4% at w=0,
    # 2.3% at 0.5). Served, held-out grid 22 kept w=0 (its TP=2 runs: 16 of 17 cells at 0, 15 at 0.5), so 0 ships.
    decode_layout_query_weight = 0.0

    def _layout_scale(self, best: tuple, kind: str) -> float:
        return layout_scale(self.layout, best, kind, self.decode_layout_query_weight)

    def _layout_rank(self, lay: tuple, kind: str) -> tuple:
        return layout_rank(self.layout, lay)

    @staticmethod
    def _tables(profile: Profile, quant: str) -> dict:
        """(N, K) -> (token counts, seconds) of the profile's GEMM rows of one weight format."""
        by_shape = defaultdict(list)
        for r in profile.gemm:
            if r.quantization == quant:
                by_shape[(r.n, r.k)].append((r.m, r.seconds))
        return {k: (np.array([m for m, _ in sorted(v)], float), np.array([s for _, s in sorted(v)], float))
                for k, v in by_shape.items()}

    def _gemm_time(self, m: int, n: int, k: int, head: bool = False) -> float:
        """A GEMM of M tokens against an N x K weight, from the tables (the LM head's: bf16, as engines keep it)."""
        key = (m, n, k, head)
        v = self._gemm_memo.get(key)
        if v is not None:
            return v
        tables = self.head_tables if head else self.gemm_tables
        t = tables.get((n, k))
        if t is not None:
            v = _interp_log(t[0], t[1], m)
        else:  # nearest measured shape by weight size, scaled by N*K (bandwidth) / 2MNK (compute) alike
            (n0, k0) = min(tables, key=lambda s: abs(math.log(s[0] * s[1] / (n * k))))
            t = tables[(n0, k0)]
            v = _interp_log(t[0], t[1], m) * (n * k) / (n0 * k0)
        if self._scale_quant is not None and not head:
            bf, q = self._scale_quant
            v *= q.gemm_roof(m, n, k) / bf.gemm_roof(m, n, k)
        self._gemm_memo[key] = v
        return v

    def _overhead_points(self):
        """(kind, tokens, chunks, sequences, measured - composed operator seconds) per timed step.

        From the profile's serving iterations when it has them for this model (schedule to next schedule:
        the whole loop, Python scheduling included), else from its isolated whole steps."""
        its = [r for r in self.profile.iterations if r.model == self.model.name and r.tp == self.iteration_tp
               and r.quantization == self.iteration_quant]
        pts, buckets = [], {}  # token buckets per serving budget, built once
        if len(its) >= MIN_FIT_ITERATIONS:
            # a TP engine's iterations include its all-reduces: they are subtracted with the operators, or the
            # overhead would absorb them and a prediction would count them twice
            comm = self.tp > 1 and self.iteration_tp == self.tp
            for r in its:
                if r.chunks == 0:
                    ops = self._ops_no_comm(r.decodes, r.decodes, r.decode_ctx, (), scaled=False)
                    if comm:
                        ops += self._allreduce(self._rows(r.decodes, (), None))
                else:
                    k = r.chunks
                    pre = [((r.tokens - r.decodes) // k, r.prefill_ctx // k)] * k
                    b = None
                    if self._fit_buckets:
                        b = buckets.get(r.max_num_batched_tokens)
                        if b is None:
                            b = buckets[r.max_num_batched_tokens] = token_buckets(r.max_num_batched_tokens)
                    ops = self._ops_no_comm(r.tokens, r.decodes + k, r.decode_ctx, pre, scaled=False, buckets=b)
                    if comm:
                        ops += self._allreduce(_pad(r.tokens, b))
                pts.append(("decode" if r.chunks == 0 else "prefill", r.tokens, r.chunks, r.decodes + r.chunks,
                            r.seconds - ops, ops))
            return pts, "iterations"
        for s in self.profile.steps:
            if s.model != self.model.name or (s.kind == "decode" and not s.cuda_graphs):
                continue
            if s.kind == "decode":
                ops = self._ops_no_comm(s.batch, s.batch, s.batch * s.context, (), scaled=False)
                pts.append(("decode", s.tokens, 0, s.batch, s.seconds - ops))
                continue
            if s.kind == "mixed":  # `batch` decodes at `context` plus prompts of (tokens - batch) in all
                k, seqs = s.prefills, s.batch + s.prefills
                ops = self._ops_no_comm(s.tokens, seqs, s.batch * s.context, [((s.tokens - s.batch) // k, 0)] * k,
                                        scaled=False, buckets=self._fit_buckets)
            else:
                k = seqs = s.batch
                ops = self._ops_no_comm(s.tokens, s.batch, 0, [(s.tokens // s.batch, 0)] * s.batch, scaled=False,
                                        buckets=self._fit_buckets)
            pts.append(("prefill", s.tokens, k, seqs, s.seconds - ops))
        return pts, "steps"

    def _fit_overhead(self, default: float) -> None:
        """What the operator tables do not hold, fitted to the engine's measured times minus the composed
        operators: decode steps (one CUDA-graph replay) overhead = a + b*sequences; steps with a prefill
        (piecewise graphs around eager attention) a + b*tokens + c*chunks + d*sequences (c: each prompt
        chunk's share of the attention call and packing; d: per-sequence scheduling and sampling in Python).
        Non-negative least squares, refitted without points beyond 4 MADs (a graph capture or a stray pause
        inside a timed iteration) for the slopes; the constant then makes the mean residual over all points
        zero."""
        pts, self.overhead_source = self._overhead_points()
        self.jitter_ratios: dict[str, np.ndarray] = {}
        self._dec_bins = self._pre_bins = None
        fits = {}
        for kind in ("decode", "prefill"):
            P = [p for p in pts if p[0] == kind]
            if len(P) < 2:
                continue
            y = np.array([p[4] for p in P], float)
            cols = [np.ones(len(P)), np.array([p[1] for p in P], float)]
            if kind == "prefill":
                for j in (2, 3):
                    v = np.array([p[j] for p in P], float)
                    if len(P) >= 4 and np.ptp(v) > 0 and \
                            np.linalg.matrix_rank(np.stack(cols + [v], 1)) == len(cols) + 1:
                        cols.append(v)
                    else:
                        cols.append(np.zeros(len(P)))
            A = np.stack(cols, 1)
            coef = nnls(A, y)[0]
            r = y - A @ coef
            mad = np.median(np.abs(r - np.median(r))) or 1e-9
            keep = np.abs(r - np.median(r)) <= 4 * 1.4826 * mad
            if keep.sum() >= A.shape[1] and not keep.all():
                coef = nnls(A[keep], y[keep])[0]
            # slopes from the trimmed fit, the constant from every point: the simulator needs the mean
            # iteration (what throughput and queueing add up), and the rare slow ones are real engine time
            coef[0] = max(0.0, coef[0] + float(np.mean(y - A @ coef)))
            coef = [float(c) for c in coef]
            fit = A @ np.array(coef)
            if kind == "decode" and self.overhead_source == "iterations":
                self._dec_bins = self._batch_bins(A[:, 1], y - fit)
                fit = fit + np.array([self._dec_corr(b) for b in A[:, 1]])
            if kind == "prefill" and self.overhead_source == "iterations" and self.prefill_token_bins:
                self._pre_bins = self._batch_bins(A[:, 1], y - fit)
                fit = fit + np.array([self._pre_corr(t) for t in A[:, 1]])
            # a prefill step's per-token part (elementwise traffic over up to thousands of tokens) moves with
            # bandwidth; the fixed and per-sequence parts (CPU, launches) stay as measured on another GPU. So
            # does a decode step's per-sequence part: Python per sequence and latency-bound small kernels
            # (tens of tokens), not memory traffic -- on the H200, a decode step's batch 2 -> 64 increment
            # beyond the attention tables was the H100's (8B: +1.07 vs +0.93 ms)
            if self.overhead_source == "iterations":  # measured / modelled per serving iteration (step jitter)
                ops = np.array([p[5] for p in P], float)
                model = ops + fit
                ok = model > 0
                self.jitter_ratios[kind] = (y + ops)[ok] / model[ok]
            if kind == "prefill":
                coef[1] *= self._scale("bandwidth")
            fits[kind] = tuple(coef)
        graph = self.profile.overhead_graph_s or default
        eager = self.profile.overhead_eager_s or graph
        self.ovh = {"decode": fits.get("decode", (graph, 0.0))[:2],
                    "prefill": (fits.get("prefill", (eager, 0.0, 0.0, 0.0)) + (0.0, 0.0))[:4]}
        self.fit_points = len(fits)
        self.ovh_a, self.ovh_b = self.ovh["decode"]

    @staticmethod
    def _batch_bins(batch: np.ndarray, resid: np.ndarray, min_points: int = 30):
        """Mean residual of the linear decode overhead per power-of-two batch bin ([1], [2, 3], [4, 7], ...),
        at each bin's geometric centre; bins with too few iterations are left out. A decode step's host and
        launch cost is not linear in the batch (its graph runs at a padded batch size, the Python per
        sequence is cheap next to the fixed part): measured on the H100, a line through batches 4-64 put batch 1
        7-10% high -- the whole of a low-load trace's TPOT."""
        k = np.floor(np.log2(np.maximum(batch, 1))).astype(int)
        xs, ys = [], []
        for b in np.unique(k):
            sel = k == b
            if sel.sum() >= min_points:
                xs.append(b + 0.5 if b > 0 else 0.0)
                ys.append(float(np.mean(resid[sel])))
        return (np.array(xs), np.array(ys)) if xs else None

    def _pre_corr(self, tokens: float) -> float:
        """The binned correction of a step with a prefill, by its tokens (power-of-two bins, as _batch_bins):
        the linear fit in tokens leaves steps of a few hundred tokens 4-9% high in the H200's FP8 and bf16
        iterations (a short prompt beside a decode batch), flat beyond the outer bins."""
        if self._pre_bins is None:
            return 0.0
        xs, ys = self._pre_bins
        return float(np.interp(math.log2(max(tokens, 1)), xs, ys))

    def _dec_corr(self, batch: float) -> float:
        """The binned correction at a batch size: linear in log2(batch) between bin centres, flat beyond."""
        if self._dec_bins is None:
            return 0.0
        xs, ys = self._dec_bins
        return float(np.interp(math.log2(max(batch, 1)), xs, ys))

    def _allreduce_table(self):
        """(log bytes, log seconds, rows) of the all-reduce table for this TP degree, or None (no table, or one
        measured over another interconnect). A degree the profile did not measure is carried from the nearest
        measured one below it (else the smallest) by `degree_factor`. Built once, on first use."""
        if not hasattr(self, "_ar"):
            src = GPUS.get(self.profile.gpu)
            same_link = src is not None and (src.interconnect, src.interconnect_gbps) == (
                self.gpu.interconnect, self.gpu.interconnect_gbps)
            # the rows timed inside CUDA graphs where the profile has them: the engine issues its all-reduces
            # from graphs, where the host's per-call launch cost (which bounds the eager rows) is not paid
            table = [r for r in self.profile.allreduce if r.graph] or list(self.profile.allreduce)
            tps = sorted({r.tp for r in table})
            self._ar = None
            if same_link and tps:
                below = [t for t in tps if t <= self.tp]
                tp_src = max(below) if below else min(tps)
                rows = sorted((r.bytes, r.seconds) for r in table if r.tp == tp_src)
                if tp_src != self.tp and len(rows) >= 2:
                    alpha, source = degree_exponent(self.profile.allreduce)
                    f = degree_factor(tp_src, self.tp, alpha)
                    rows = [(b, t * f) for b, t in rows]
                    self.description += (f"; all-reduce at TP={self.tp} EXTRAPOLATED from TP={tp_src} "
                                         f"(x{f:.2f}: ((n-1)/(m-1))^{alpha:.3f}, {source})")
                if len(rows) >= 2:
                    self._ar = (np.log([b for b, _ in rows]), np.log([t for _, t in rows]), rows)
        return self._ar

    def _allreduce(self, T: int, scaled: bool = True) -> float:
        """Two all-reduces per layer of T x hidden bf16 activations: from the profile's measured table for
        this TP degree (log-log interpolation in bytes) when it has one, else the roofline's link model.
        A table measured on another GPU kind is used as is only when the interconnects match."""
        if self.tp == 1:
            return 0.0
        table = self._allreduce_table()
        if table is None:
            return self.roof._allreduce(T)
        x, y, rows = table
        nbytes = T * self.model.hidden_size * 2
        lx = math.log(max(nbytes, 1))
        if lx <= x[0]:
            v = rows[0][1]  # below the smallest message: latency-bound, flat
        elif lx >= x[-1]:
            v = rows[-1][1] * nbytes / rows[-1][0]  # beyond the largest: bandwidth-bound, linear
        else:
            v = float(np.exp(np.interp(lx, x, y)))
        return 2 * self.L * v

    def _scale(self, roof_part: str, scaled: bool = True) -> float:
        """Roofline ratio target/source for an operator bound by compute or bandwidth on the target."""
        if not self.extrapolated or not scaled:
            return 1.0
        t, s = self.roof, self.src_roof
        return (s.flops / t.flops) if roof_part == "compute" else (s.bw / t.bw)

    def _ops(self, T: int, S: int, ctx_sum: int, prefill, scaled: bool = True) -> float:
        b = self._buckets if prefill else None
        return self._ops_no_comm(T, S, ctx_sum, prefill, scaled, b) + self._allreduce(self._rows(T, prefill, b),
                                                                                       scaled)

    def _rows(self, T: int, prefill, buckets) -> int:
        """The rows a step's token-wise operators run at: a step with a prefill at its token bucket (piecewise
        graphs), a decode step at its graph's batch where decode_graph_padding is on, else T."""
        if not prefill and self._dec_pad:
            return decode_graph_rows(T)
        return _pad(T, buckets)

    def _ops_no_comm(self, T: int, S: int, ctx_sum: int, prefill, scaled: bool = True, buckets=None) -> float:
        """Measured operator times of one step (no overhead); `scaled` applies the cross-GPU ratios; with
        `buckets`, the token-wise GEMMs run at the padded token count (the engine's piecewise graphs)."""
        g, lm, a = self._op_parts(T, S, ctx_sum, prefill, scaled, buckets)
        return g + lm + a

    def _op_parts(self, T: int, S: int, ctx_sum: int, prefill, scaled: bool = True,
                  buckets=None) -> tuple[float, float, float]:
        """(layer GEMMs, LM head, attention) seconds of one step."""
        g = 0.0
        M = self._rows(T, prefill, buckets)
        # the graph computes logits for its padding rows too; attention is charged for the real sequences
        S_lm = self._rows(S, prefill, None) if S else 0
        src = self.src_roof
        for n, k in self.roof.gemms:
            g += self.gemm_on_target(M, n, k, self._gemm_time(M, n, k), scaled)
        g *= self.L
        lm = 0.0
        if S:
            n, k = self.model.vocab_size // self.tp, self.model.hidden_size
            ideal = max(2.0 * S_lm * n * k / src.flops, (n * k * 2 + S_lm * (k * 2 + n * 4)) / src.bw)
            lm = self._extrapolate(self._gemm_time(S_lm, n, k, head=True), ideal, "bandwidth", scaled)
        a = 0.0
        if ctx_sum and self.dec:
            tab, sc = self.dec
            n_seq = max(S - len(prefill), 1)
            ideal = ctx_sum * src.kv_tok_layer / src.bw  # one layer's K and V, read once
            t = tab(n_seq, ctx_sum / n_seq) * sc
            if self.kv_fp8 and not self.kv_fp8_measured:  # a bf16 table: an FP8 cache streams half the bytes
                t = max(t - ideal, 0.5 * t)  # (ideal is FP8's here)
            a += self._extrapolate(t, ideal, "bandwidth", scaled, DECODE_ATTN_P) * self.L
        elif ctx_sum:
            a += ctx_sum * self.roof.decode_attn_per_ctx
        for c, p in prefill:
            if self.pre:
                tab, sc = self.pre
                ideal = src._prefill_attn([(c, p)]) / self.L
                a += self._extrapolate(tab(c, p) * sc, ideal, "compute", scaled) * self.L
            else:
                a += self.roof._prefill_attn([(c, p)])
        return g, lm, a

    def gemm_on_target(self, M: int, n: int, k: int, measured: float, scaled: bool = True,
                       p: float | None = None) -> float:
        """A GEMM's time measured on the profile's GPU, on the target GPU (the same time on the same GPU)."""
        src = self.src_roof
        compute_s, bytes_s = 2.0 * M * n * k / self.roof.flops, n * k * self.roof.wbytes / self.roof.bw
        bound = "compute" if compute_s > bytes_s else "bandwidth"
        ideal = max(2.0 * M * n * k / src.flops, (n * k * src.wbytes + M * (n + k) * ACT_BYTES) / src.bw)
        return self._extrapolate(measured, ideal, bound, scaled, GEMM_P if p is None else p)

    def _extrapolate(self, measured: float, ideal: float, bound: str, scaled: bool = True, p: float = 1.0) -> float:
        """An operator measured on the profile's GPU, on the target: its time is split as t^p = i^p + l^p into
        the part the source roofline explains (i) and the rest (l: latency, waves, tails); i moves with the
        bounding resource, l stays as measured. p = 1 adds them (GEMMs); see DECODE_ATTN_P."""
        r = self._scale(bound, scaled)
        if r == 1.0:
            return measured
        i = min(measured, ideal)
        if p == 1.0:
            return measured + i * (r - 1.0)
        rest = max(measured ** p - i ** p, 0.0) ** (1.0 / p)
        return ((i * r) ** p + rest ** p) ** (1.0 / p)

    # ---------------------------------------------------------------- interface
    def time(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()):
        if num_tokens == 0:
            return 0.0
        if not prefill:
            key = (num_tokens, num_sampled, decode_ctx_sum)
            v = self._cache.get(key)
            if v is None:
                v = self._ops(num_tokens, num_sampled, decode_ctx_sum, ()) + self._overhead(num_tokens, num_sampled)
                if len(self._cache) < 200000:
                    self._cache[key] = v
            return v
        prefill = list(prefill)
        return (self._ops(num_tokens, num_sampled, decode_ctx_sum, prefill)
                + self._overhead(num_tokens, num_sampled, len(prefill)))

    def _overhead(self, num_tokens: int, num_sampled: int, chunks: int = 0) -> float:
        """What the fit to serving iterations adds to the operators: decode a + b x sequences (+ the batch-bin
        correction); with a prefill (chunks > 0) a + b x tokens + c x chunks + d x sequences (+ the token-bin
        correction, where on)."""
        if chunks:
            a, b, c, d = self.ovh["prefill"]
            return a + b * num_tokens + c * chunks + d * num_sampled + self._pre_corr(num_tokens)
        a, b = self.ovh["decode"]
        return a + b * num_tokens + self._dec_corr(num_tokens)

    def breakdown(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()) -> StepTime:
        """time() split by operator; `overhead` is what the fit to serving iterations adds (host, launches,
        sampling, norms and the other small kernels)."""
        if num_tokens == 0:
            return StepTime()
        prefill = list(prefill)
        b = self._buckets if prefill else None
        g, lm, a = self._op_parts(num_tokens, num_sampled, decode_ctx_sum, prefill, True, b)
        return StepTime(gemm=g, attention=a, allreduce=self._allreduce(self._rows(num_tokens, prefill, b)), lm_head=lm,
                        overhead=self._overhead(num_tokens, num_sampled, len(prefill)))

    def _dec_knot(self, b: int, i: int) -> float:
        """Decode step time at batch b with every sequence at context _knots[i]."""
        key = ("knot", b, i)
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = self.time(b, b, b * self._knots[i])
        return v

    def _dec_segment(self, b: int, x: float) -> int:
        """Index i of the knot segment [_knots[i], _knots[i + 1]) holding mean context x (the end segments
        extend beyond the grid)."""
        k = self._knots
        return min(max(int(np.searchsorted(k, x, side="right")) - 1, 0), len(k) - 2)

    def _dec_line(self, b: int, i: int) -> tuple[float, float]:
        """Segment i of the decode step time at batch b as intercept + slope * total context."""
        lo, hi = self._knots[i] * b, self._knots[i + 1] * b
        t1, t2 = self._dec_knot(b, i), self._dec_knot(b, i + 1)
        slope = (t2 - t1) / (hi - lo)
        return t1 - slope * lo, slope

    def decode_time(self, batch_size, ctx_sum):
        """Piecewise linear in the total context between knots a factor 2^(1/4) apart, so that runs of decode
        steps have the closed-form sums fast-forward needs. One straight line through two contexts (256 and
        4096 per sequence, as before) lay under the composed time by 2-4% at 600-2000 per sequence (batches
        8-64, both models): decode attention's time is concave in the context."""
        i, s = self._dec_line(batch_size, self._dec_segment(batch_size, ctx_sum / batch_size))
        return i + s * ctx_sum

    def decode_run_time(self, batch_size, ctx_sum, steps):
        if steps <= 0:
            return 0.0
        b, total, j = batch_size, 0.0, 0
        while j < steps:
            seg = self._dec_segment(b, (ctx_sum + b * j) / b)
            end = steps
            if seg < len(self._knots) - 2:  # the first step whose context reaches the next knot
                end = min(steps, max(j + 1, math.ceil((self._knots[seg + 1] * b - ctx_sum) / b)))
            icpt, slope = self._dec_line(b, seg)
            n = end - j
            total += n * icpt + slope * (n * ctx_sum + b * (j + end - 1) * n / 2)
            j = end
        return total

    @classmethod
    def from_profile(cls, path, model, gpu, *args, **kw) -> "CalibratedCostModel":
        """The model of this class built from a profile file, once per file version, model, GPU and arguments
        (a subclass's extra ones too, e.g. the stack profile of planner/cost/stack.py)."""
        if path is None:
            raise InputError([("cost_model.profile", "kind 'calibrated' needs a profile file")])
        f = Path(path)
        stamp = f.stat().st_mtime_ns if f.exists() else None
        key = (cls.__qualname__, str(f.resolve()), stamp, model.model_dump_json(), gpu.model_dump_json(),
               tuple(a.model_dump_json() if hasattr(a, "model_dump_json") else repr(a) for a in args),
               tuple(sorted(kw.items())), cls.decode_graph_padding, cls.prefill_token_bins,
               cls.decode_layout_query_weight)  # options fixed at build
        hit = _BUILT.get(key)
        if hit is None:  # fitting runs over every serving iteration: once per profile, model, GPU and knobs
            hit = cls(_load_profile(f, stamp), model, gpu, *args, **kw)
            if len(_BUILT) >= 32:
                _BUILT.pop(next(iter(_BUILT)))
            _BUILT[key] = hit
        return hit


def _load_profile(f: Path, stamp: int | None) -> Profile:
    """A profile file read and validated once per file version: a search builds a model for each GPU, TP degree
    and format from the same file, and validating megabytes of serving iterations costs seconds each time.
    The models only read the profile, so one instance is shared."""
    key = (str(f.resolve()), stamp)
    prof = _LOADED.get(key)
    if prof is None:
        prof = Profile.load(f)
        if len(_LOADED) >= 8:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = prof
    return prof


_LOADED: dict = {}

# cost models built from profile files, reused by every simulation of the same profile, model, GPU and knobs
# (a sweep or `planner validate` builds the same one for each run and seed); a rewritten file is refitted
_BUILT: dict = {}
