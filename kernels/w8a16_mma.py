"""W8A16 GEMM on the tensor cores (Triton): y[M, N] = x[M, K] @ (q[N, K] * s[N, K/128]).T for the batch sizes
of serving (M up to a few hundred), where the GEMV kernel (kernels/w8a16.py) loses to cuBLAS in bf16.

Each program dequantizes a 128 x BLOCK_N tile of int8 weights (one scale group along K) into bf16 registers and
multiplies it on the tensor cores against a BLOCK_M x 128 tile of activations; the group's scales multiply the
fp32 partial product (the scale is constant along one group's K, so scaling after the dot is exact). At these M
the GEMM is bound by reading the weights, and int8 halves those bytes. Small N x K layers split K across
programs (a float32 partial sum each, added after) so that every SM streams weights.
"""
from __future__ import annotations

import math

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the planner and the CPU tests run without Triton
    triton = tl = None

GROUP = 128
SMS = {"cuda": None}


def available() -> bool:
    return triton is not None


def supports(x: torch.Tensor, q: torch.Tensor) -> bool:
    return (triton is not None and x.dim() == 2 and x.dtype in (torch.bfloat16, torch.float16)
            and q.dtype == torch.int8 and q.shape[1] % GROUP == 0 and x.shape[1] == q.shape[1] and x.shape[0] >= 1)


if triton is not None:
    @triton.jit
    def _w8a16_kernel(x_ptr, q_ptr, s_ptr, out_ptr, M, N, K, groups_per_split,
                      stride_xm, stride_qn, stride_sn, stride_os, stride_om,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        pid_n = tl.program_id(0)
        pid_m = tl.program_id(1)
        pid_s = tl.program_id(2)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rk = tl.arange(0, BLOCK_K)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        g0 = pid_s * groups_per_split
        for g in range(g0, g0 + groups_per_split):
            k = g * BLOCK_K + rk
            a = tl.load(x_ptr + rm[:, None] * stride_xm + k[None, :], mask=rm[:, None] < M, other=0.0)
            w = tl.load(q_ptr + rn[None, :] * stride_qn + k[:, None], mask=rn[None, :] < N, other=0)
            s = tl.load(s_ptr + rn * stride_sn + g, mask=rn < N, other=0.0)
            acc += tl.dot(a, w.to(a.dtype)) * s.to(tl.float32)[None, :]
        o = out_ptr + pid_s * stride_os + rm[:, None] * stride_om + rn[None, :]
        tl.store(o, acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


def config(M: int, N: int, K: int, sms: int = 132) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, K splits): enough programs to fill every SM twice, splitting K when N is narrow."""
    bm = 16 if M <= 16 else 32 if M <= 32 else 64
    bn = 64
    programs = math.ceil(N / bn) * math.ceil(M / bm)
    groups = K // GROUP
    split = 1
    while programs * split < 2 * sms and split * 2 <= groups and groups % (split * 2) == 0:
        split *= 2
    return bm, bn, split


def w8a16(x: torch.Tensor, q: torch.Tensor, s: torch.Tensor, cfg: tuple[int, int, int] | None = None) -> torch.Tensor:
    """x [M, K] bf16/fp16, q [N, K] int8, s [N, K/128] -> y [M, N] in x's dtype."""
    M, K = x.shape
    N = q.shape[0]
    if cfg is None:
        if SMS["cuda"] is None and x.is_cuda:
            SMS["cuda"] = torch.cuda.get_device_properties(x.device).multi_processor_count
        cfg = config(M, N, K, SMS["cuda"] or 132)
    bm, bn, split = cfg
    if (K // GROUP) % split:
        raise ValueError(f"w8a16: {split} K splits do not divide the {K // GROUP} scale groups")
    x = x.contiguous()
    out = torch.empty((split, M, N), dtype=torch.float32, device=x.device)
    grid = (triton.cdiv(N, bn), triton.cdiv(M, bm), split)
    _w8a16_kernel[grid](x, q, s, out, M, N, K, K // GROUP // split, x.stride(0), q.stride(0), s.stride(0),
                        out.stride(0), out.stride(1), BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=GROUP,
                        num_warps=4, num_stages=4)
    return (out[0] if split == 1 else out.sum(0)).to(x.dtype)
