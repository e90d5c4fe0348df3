"""W8A16 small-batch GEMM over the engine's INT8 group-128 weights (engine/quant.py layout)."""
from __future__ import annotations

import torch

from kernels import runtime

MAX_M = 32
_BUCKETS = (1, 2, 4, 8, 16, 32)
# (rows per warp, 512-element chunks in flight) per batch bucket; measured on the H100 (bench/kernel_speed.py)
CONFIG = {1: (2, 2), 2: (2, 2), 4: (2, 2), 8: (2, 2), 16: (2, 2), 32: (4, 2)}
SWEEP = ((1, 4), (2, 2), (2, 4), (4, 1), (4, 2), (1, 8))  # extra batch-1 variants compiled for the benchmark
_NAMES = tuple(sorted({f"w8a16_gemm<{m},{r},{c}>" for m, (r, c) in CONFIG.items()} |
                      {f"w8a16_gemm<1,{r},{c}>" for r, c in SWEEP}))


def supports(x: torch.Tensor, qweight: torch.Tensor) -> bool:
    M = x.numel() // x.shape[-1]
    return x.dtype == torch.bfloat16 and M <= MAX_M and qweight.shape[1] % 128 == 0


def w8a16(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, out: torch.Tensor | None = None,
          config: tuple[int, int] | None = None) -> torch.Tensor:
    """x [..., K] bf16, qweight [N, K] int8, scales [N, K/128] bf16 -> [..., N] bf16. At most 32 rows."""
    N, K = qweight.shape
    if x.shape[-1] != K:
        raise ValueError(f"w8a16: x has {x.shape[-1]} features, the weight {K}")
    if not supports(x, qweight):
        raise ValueError(f"w8a16: needs bf16 x with at most {MAX_M} rows and K % 128 == 0 "
                         f"(got {tuple(x.shape)} {x.dtype}, K={K})")
    if scales.dtype != torch.bfloat16 or scales.shape != (N, K // 128):
        raise ValueError(f"w8a16: scales must be bf16 [{N}, {K // 128}], got {tuple(scales.shape)} {scales.dtype}")
    x2 = x.reshape(-1, K).contiguous()
    M = x2.shape[0]
    y = torch.empty(M, N, dtype=x.dtype, device=x.device) if out is None else out
    bucket = next(b for b in _BUCKETS if b >= M)
    R, CH = config or CONFIG[bucket]
    fn = runtime.function("w8a16", f"w8a16_gemm<{bucket},{R},{CH}>", _NAMES)
    runtime.launch(fn, (-(-N // (8 * R)),), (256,), (x2, M, K, qweight.contiguous(), scales.contiguous(), y, N))
    return y.view(*x.shape[:-1], N)


def reference(x, qweight, scales) -> torch.Tensor:
    """float64 x @ (q * s)^T."""
    N, K = qweight.shape
    w = (qweight.double().view(N, K // 128, 128) * scales.double()[..., None]).view(N, K)
    return x.double() @ w.T
