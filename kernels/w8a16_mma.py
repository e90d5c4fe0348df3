"""8-bit-weight GEMM on the tensor cores (Triton) for the batch sizes of serving (M up to a few hundred):
y[M, N] = x[M, K] @ dequant(q[N, K]).T with 16-bit activations, where cuBLAS in bf16 reads twice the bytes.

Two weight formats share one kernel:
  * INT8, one scale per (output channel, 128-wide group along K) -- the engine's W8A16;
  * FP8 e4m3, one scale per output channel -- the engine's FP8 weights at decode batch sizes, where a step is
    bound by reading weights: converting them to bf16 in registers costs nothing, and it spares the launch (and
    the rounding) of quantizing the activations that torch._scaled_mm needs.

Each program converts a BLOCK_K x BLOCK_N tile of weights to the activations' dtype and multiplies it on the
tensor cores against a BLOCK_M x BLOCK_K tile of activations. INT8 group scales multiply the fp32 partial
product (constant along one group's K, so scaling after the dot is exact); the FP8 channel scale multiplies the
sum once. Narrow layers may split K across programs so every SM streams weights: each leaves a float32 partial,
and the last program of an output tile to finish adds them and writes the output dtype -- one launch either way.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the planner and the CPU tests run without Triton
    triton = tl = None

GROUP = 128
SMS = {"cuda": None}
FP8 = torch.float8_e4m3fn


class Config(NamedTuple):
    """One launch shape. split: programs along K (each a float32 partial sum); stages: software pipeline depth,
    i.e. how many weight tiles each program has in flight -- what keeps HBM busy at one program per SM."""
    block_m: int
    block_n: int
    split: int = 1
    block_k: int = GROUP
    warps: int = 4
    stages: int = 4
    swap: bool = False


def available() -> bool:
    return triton is not None


def supports(x: torch.Tensor, q: torch.Tensor) -> bool:
    return (triton is not None and x.dim() == 2 and x.dtype in (torch.bfloat16, torch.float16)
            and q.dtype in (torch.int8, FP8) and q.shape[1] % GROUP == 0 and x.shape[1] == q.shape[1]
            and x.shape[0] >= 1)


if triton is not None:
    @triton.jit
    def _w8a16_kernel(x_ptr, q_ptr, s_ptr, out_ptr, ws_ptr, lock_ptr, xs_ptr, M, N, K, k_per_split,
                      stride_xm, stride_qn, stride_sn, stride_ws, stride_om,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                      GROUP_K: tl.constexpr, PER_CHANNEL: tl.constexpr, SWAP: tl.constexpr,
                      SPLIT: tl.constexpr, FUSED: tl.constexpr, A_FP8: tl.constexpr):
        pid_n = tl.program_id(0)
        pid_m = tl.program_id(1)
        pid_s = tl.program_id(2)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rk = tl.arange(0, BLOCK_K)
        k0 = pid_s * k_per_split
        if SWAP:
            # y.T = w @ x.T: the weights are the tensor cores' first operand (converted in registers, read along
            # K as stored), the few tokens the narrow second one -- Hopper's warpgroup MMA wants 64 rows in its
            # first operand and as few as 8 columns in its second, the shape of a decode step turned around.
            acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
            for kk in range(k0, k0 + k_per_split, BLOCK_K):
                k = kk + rk
                a = tl.load(x_ptr + rm[None, :] * stride_xm + k[:, None], mask=rm[None, :] < M, other=0.0)
                # rows past N hold whatever the mask leaves; they reach only outputs the store masks off
                w = tl.load(q_ptr + rn[:, None] * stride_qn + k[None, :], mask=rn[:, None] < N)
                if A_FP8:  # both operands e4m3: the FP8 tensor cores, nothing converted
                    acc += tl.dot(w, a)
                elif PER_CHANNEL:
                    acc += tl.dot(w.to(a.dtype), a)
                else:  # BLOCK_K == GROUP_K: one scale group per tile
                    s = tl.load(s_ptr + rn * stride_sn + kk // GROUP_K, mask=rn < N, other=0.0)
                    acc += tl.dot(w.to(a.dtype), a) * s.to(tl.float32)[:, None]
            if PER_CHANNEL:
                acc *= tl.load(s_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)[:, None]
            if A_FP8:
                acc *= tl.load(xs_ptr + rm, mask=rm < M, other=0.0)[None, :]
            _finish(acc, out_ptr, ws_ptr, lock_ptr, rm[None, :] * stride_om + rn[:, None],
                    (rm[None, :] < M) & (rn[:, None] < N), pid_s, stride_ws, SPLIT, FUSED)
        else:
            acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            for kk in range(k0, k0 + k_per_split, BLOCK_K):
                k = kk + rk
                a = tl.load(x_ptr + rm[:, None] * stride_xm + k[None, :], mask=rm[:, None] < M, other=0.0)
                w = tl.load(q_ptr + rn[None, :] * stride_qn + k[:, None], mask=rn[None, :] < N)
                if A_FP8:
                    acc += tl.dot(a, w)
                elif PER_CHANNEL:
                    acc += tl.dot(a, w.to(a.dtype))
                else:
                    s = tl.load(s_ptr + rn * stride_sn + kk // GROUP_K, mask=rn < N, other=0.0)
                    acc += tl.dot(a, w.to(a.dtype)) * s.to(tl.float32)[None, :]
            if PER_CHANNEL:
                acc *= tl.load(s_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)[None, :]
            if A_FP8:
                acc *= tl.load(xs_ptr + rm, mask=rm < M, other=0.0)[:, None]
            _finish(acc, out_ptr, ws_ptr, lock_ptr, rm[:, None] * stride_om + rn[None, :],
                    (rm[:, None] < M) & (rn[None, :] < N), pid_s, stride_ws, SPLIT, FUSED)

    @triton.jit
    def _finish(acc, out_ptr, ws_ptr, lock_ptr, offs, mask, pid_s, stride_ws, SPLIT: tl.constexpr,
                FUSED: tl.constexpr):
        """Write a tile: directly with one split; with several, each program leaves its float32 partial in
        the workspace, and (FUSED) the last of a tile's programs to arrive -- counted by an atomic per tile --
        adds them and writes the output dtype, then resets the counter for the next call. Unfused, the caller
        adds the partials (two more launches)."""
        if SPLIT == 1:
            tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)
        else:
            tl.store(ws_ptr + pid_s * stride_ws + offs, acc, mask=mask)
            if FUSED:
                tile = tl.program_id(1) * tl.num_programs(0) + tl.program_id(0)
                tl.debug_barrier()  # every thread's partial written before the tile's count moves
                arrived = tl.atomic_add(lock_ptr + tile, 1, sem="acq_rel", scope="gpu")
                if arrived == SPLIT - 1:
                    tot = tl.zeros_like(acc)
                    for s in tl.static_range(SPLIT):  # through L2: the partials were written on other SMs
                        tot += tl.load(ws_ptr + s * stride_ws + offs, mask=mask, other=0.0, cache_modifier=".cg")
                    tl.store(out_ptr + offs, tot.to(out_ptr.dtype.element_ty), mask=mask)
                    tl.atomic_xchg(lock_ptr + tile, 0, sem="relaxed", scope="gpu")


def config(M: int, N: int, K: int, sms: int = 132, per_channel: bool = False) -> Config:
    """The launch shape for a problem, a rule read off the launch-shape search on the H100 (bench/quant_tune.py,
    lab/device/round18b): at up to 16 rows, narrow tiles, K split so that no program walks more than about 4096
    of K (a short tail) and about one program per SM; at 32 rows K in four; at 64 rows the weights-first
    (swapped) form for layers narrower than 16384 outputs, wide tiles unsplit for wider ones; above, swapped
    and unsplit."""
    fp8_k = 2 * GROUP if per_channel else GROUP
    steps = K // GROUP

    def split_for(max_k: int) -> int:
        split = 1
        while K // split > max_k and steps % (split * 2) == 0:
            split *= 2
        return split
    if M <= 16:
        split = split_for(4096)
        while math.ceil(N / 32) * split < 0.9 * sms and steps % (split * 2) == 0:  # narrow shards: fill the SMs
            split *= 2
        bk = fp8_k if (K // split) % fp8_k == 0 else GROUP
        return Config(16, 32, split, bk, 4, 4)
    if M <= 32:
        if N >= 16384:
            return Config(32, 128, 1, GROUP, 8, 3)
        return Config(32, 64, 4 if steps % 4 == 0 else 1, GROUP, 4, 3)
    if M <= 64:
        if N >= 16384:
            return Config(64, 128, 1, GROUP, 4, 3)
        return Config(64, 64, 4 if steps % 4 == 0 else 1, GROUP, 4, 3, True)
    tiles = math.ceil(N / 64) * math.ceil(M / 64)
    return Config(64, 64, 2 if tiles < sms and steps % 2 == 0 else 1, GROUP, 4, 3, True)


def w8a8_config(M: int, N: int, K: int) -> Config:
    """W8A8's launch shape, read off the search on the H200 (bench/quant_tune.py --formats w8a8, device round 36b:
    the 8B's, a Qwen-7B-shaped model's and a 70B TP=2 shard's projections at 32 and 64 rows): 256-wide K tiles five
    deep and no K split beat every split shape -- the FP8 tensor cores finish a tile fast enough that one program
    per output tile keeps HBM busy, and no partials are written. Weights-first at up to 32 rows. At up to 16 rows
    (the 8B's projections at 8 and 16 rows, device round 40): 16-row tiles, and a two-way K split where K is much
    longer than N (a down projection: 64 output tiles alone leave half the SMs idle)."""
    bk = 2 * GROUP if K % (2 * GROUP) == 0 else GROUP
    if M <= 16:
        return Config(16, 64, 2 if K >= 2.5 * N else 1, bk, 4, 5, True)
    if M <= 32:
        return Config(32, 64, 1, bk, 4, 5, True)
    return Config(64, 64, 1, bk, 4, 5, False)


def w8a16(x: torch.Tensor, q: torch.Tensor, s: torch.Tensor, cfg: Config | tuple | None = None) -> torch.Tensor:
    """x [M, K] bf16/fp16; q [N, K] int8 with s [N, K/128], or q e4m3 with s [N] or [1, N] float32
    -> y [M, N] in x's dtype."""
    return _launch(x, None, q, s, cfg, x.dtype)


def w8a8(xq: torch.Tensor, xs: torch.Tensor, q: torch.Tensor, s: torch.Tensor, cfg: Config | tuple | None = None,
         out_dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """FP8 activations and weights on the FP8 tensor cores: xq [M, K] e4m3 with per-row float32 scales xs [M] or
    [M, 1]; q [N, K] e4m3 with per-channel s [N] or [1, N] -> y [M, N] in out_dtype. The same tiles, K splits and
    in-kernel split-K sum as w8a16, so at 17-128 rows the weights stream from every SM, which torch._scaled_mm's
    kernels (no split-K) do not do for the narrow projections of a decode step."""
    if q.dtype != FP8 or xq.dtype != FP8:
        raise ValueError(f"w8a8: e4m3 activations and weights, not {xq.dtype} and {q.dtype}")
    if cfg is None:
        cfg = w8a8_config(xq.shape[0], q.shape[0], xq.shape[1])
    return _launch(xq, xs.reshape(-1).float().contiguous(), q, s, cfg, out_dtype)


def _launch(x, xs, q, s, cfg, out_dtype) -> torch.Tensor:
    M, K = x.shape
    N = q.shape[0]
    per_channel = q.dtype == FP8
    if cfg is None:
        if SMS["cuda"] is None and x.is_cuda:
            SMS["cuda"] = torch.cuda.get_device_properties(x.device).multi_processor_count
        cfg = config(M, N, K, SMS["cuda"] or 132, per_channel)
    cfg = Config(*cfg)
    if not per_channel and cfg.block_k != GROUP:
        raise ValueError(f"w8a16: INT8 tiles span one scale group along K ({GROUP}), not {cfg.block_k}")
    steps = K // cfg.block_k
    if K % cfg.block_k or steps % cfg.split:
        raise ValueError(f"w8a16: {cfg.split} K splits of {cfg.block_k}-wide tiles do not divide K={K}")
    x = x.contiguous()
    s = s.reshape(N) if per_channel else s
    grid = (triton.cdiv(N, cfg.block_n), triton.cdiv(M, cfg.block_m), cfg.split)
    out = torch.empty((M, N), dtype=out_dtype, device=x.device)
    ws = out if cfg.split == 1 else torch.empty((cfg.split, M, N), dtype=torch.float32, device=x.device)
    locks = _tile_locks(x.device, grid[0] * grid[1]) if cfg.split > 1 and FUSED_SPLIT else None
    _w8a16_kernel[grid](x, q, s, out, ws, out if locks is None else locks, out if xs is None else xs, M, N, K,
                        K // cfg.split, x.stride(0), q.stride(0), 0 if per_channel else s.stride(0),
                        ws.stride(0) if cfg.split > 1 else 0, N,
                        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, GROUP_K=GROUP,
                        PER_CHANNEL=per_channel, SWAP=bool(cfg.swap), SPLIT=cfg.split, FUSED=locks is not None,
                        A_FP8=xs is not None, num_warps=cfg.warps, num_stages=cfg.stages)
    return out if cfg.split == 1 or locks is not None else ws.sum(0).to(out_dtype)


# Split-K partials added inside the kernel by each tile's last program (one launch), instead of a float32 sum and
# a conversion after it (two more launches, 3-5 us of a decode step's graph per projection on the H100).
FUSED_SPLIT = True
_LOCKS: dict = {}


def _tile_locks(device: torch.device, tiles: int) -> torch.Tensor | None:
    """One zeroed int32 counter per output tile, kept per device and left at zero by every launch. Made
    outside graph capture (a counter buffer allocated inside one would belong to that graph's memory pool):
    None there if none is big enough yet, and that launch adds its partials the unfused way."""
    t = _LOCKS.get(device)
    if t is None or t.numel() < tiles:
        if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            return None
        t = _LOCKS[device] = torch.zeros(max(tiles, 1 << 14), dtype=torch.int32, device=device)
    return t
