"""Fused RMSNorm (+ residual add), SiLU*mul and RoPE + KV-cache write (kernels/cuda/fused.cu)."""
from __future__ import annotations

import functools

import torch

from kernels import runtime


def add_rmsnorm(x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float, out=None):
    """-> (weight * rmsnorm(x + residual), x + residual); with residual None, (weight * rmsnorm(x), None)."""
    H = x.shape[-1]
    if x.dtype != torch.bfloat16 or weight.dtype != torch.bfloat16 or H % 8 or H > 8192:
        raise ValueError(f"add_rmsnorm: bf16 rows with a multiple of 8 features up to 8192, got {tuple(x.shape)} "
                         f"{x.dtype}")
    x = x.contiguous()
    T = x.numel() // H
    out = torch.empty_like(x) if out is None else out
    res_out = None
    if residual is not None:
        residual = residual.contiguous()
        res_out = torch.empty_like(x)
    runtime.launch(runtime.function("fused", "add_rmsnorm"), (T,), (256,),
                   (x, residual, weight.contiguous(), out, res_out, H, float(eps)))
    return out, res_out


def silu_mul(gu: torch.Tensor, ff: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """gu [T, 2 ff] -> silu(gu[:, :ff]) * gu[:, ff:]."""
    if gu.dtype != torch.bfloat16 or gu.shape[-1] != 2 * ff or ff % 8:
        raise ValueError(f"silu_mul: bf16 [T, 2*{ff}] with ff a multiple of 8, got {tuple(gu.shape)} {gu.dtype}")
    gu = gu.contiguous()
    T = gu.numel() // (2 * ff)
    out = torch.empty(*gu.shape[:-1], ff, dtype=gu.dtype, device=gu.device) if out is None else out
    n = T * ff // 8
    grid = max(1, min(-(-n // 256), 8 * runtime.num_sms()))
    runtime.launch(runtime.function("fused", "silu_mul"), (grid,), (256,), (gu, out, T, ff))
    return out


def rope_cache(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, slots: torch.Tensor,
               k_cache: torch.Tensor, v_cache: torch.Tensor, nh: int, nkv: int) -> torch.Tensor:
    """Rotate q and k, write k and v into their cache slots; return q [T, nh, D]."""
    T = qkv.shape[0]
    D = k_cache.shape[-1]
    if qkv.dtype != torch.bfloat16 or qkv.shape[1] != (nh + 2 * nkv) * D or D % 2:
        raise ValueError(f"rope_cache: qkv must be bf16 [T, {(nh + 2 * nkv) * D}], got {tuple(qkv.shape)} {qkv.dtype}")
    if slots.dtype != torch.int64 or slots.shape[0] != T:
        raise ValueError("rope_cache: slots must be int64 [T]")
    fp8 = k_cache.dtype == torch.float8_e4m3fn
    if fp8 and not fp8_writes():
        raise ValueError("rope_cache: an FP8 cache is written by the kernel from sm_89 on")
    if k_cache.dtype not in (torch.bfloat16, torch.float8_e4m3fn) or v_cache.dtype != k_cache.dtype:
        raise ValueError(f"rope_cache: caches must be bf16 or FP8 e4m3 alike, got {k_cache.dtype} / {v_cache.dtype}")
    q = torch.empty(T, nh, D, dtype=qkv.dtype, device=qkv.device)
    # few tokens: spread each token's heads over several blocks (one block per token left most SMs idle)
    Y = 1 if T >= 64 else max(1, min(16, -(-((nh + nkv) * D // 2) // 256)))
    kc, vc = (k_cache.view(torch.uint8), v_cache.view(torch.uint8)) if fp8 else (k_cache, v_cache)
    runtime.launch(runtime.function("fused", "rope_cache_fp8" if fp8 else "rope_cache"), (T, Y), (256,),
                   (qkv.contiguous(), cos.contiguous(), sin.contiguous(), slots, q, kc, vc, nh, nkv, D))
    return q


@functools.lru_cache(maxsize=None)
def fp8_writes() -> bool:
    """Whether this GPU converts to FP8 e4m3 in hardware (sm_89 and later), which the FP8 cache write uses."""
    return int(runtime.arch().removeprefix("sm_")) >= 89
