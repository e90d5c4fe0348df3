"""Batch-1 bf16 GEMV (kernels/cuda/gemv.cu): decode at batch 1 reads every weight once; this reads them in
one launch per layer where cuBLAS adds a split-K reduction or leaves SMs idle."""
from __future__ import annotations

import torch

from kernels import runtime

CONFIG = (2, 4)  # (rows per warp, 16-byte loads per row in flight); SWEEP variants for the benchmark
SWEEP = ((1, 4), (2, 2), (2, 4), (4, 2), (1, 8), (4, 4))
_NAMES = tuple(sorted({f"{k}<{r},{c}>" for r, c in SWEEP + (CONFIG,) for k in ("gemv_bf16", "norm_gemv_bf16")}))
# Where it beats cuBLAS on the H100 (bench/results/gemv_h100.json): the attention projections (K <= 4096,
# up to 32M elements: 1.04-1.16x); the MLP down projections (K 8192 / 14336) ran 0.92-0.94x and the large
# up-projections and LM heads are read by cuBLAS at copy bandwidth already, so those stay on cuBLAS.
MAX_WEIGHT = 32 << 20  # elements
MAX_K = 4096


MAX_NORM_K = 8192  # the fused norm keeps h (K bf16) in shared memory and reads 4 x 8 features per thread


def prepare() -> None:
    """Compile now: the hook first runs inside CUDA-graph capture, where loading a module is not allowed."""
    runtime.function("gemv", f"gemv_bf16<{CONFIG[0]},{CONFIG[1]}>", _NAMES)
    runtime.function("gemv", f"norm_gemv_bf16<{CONFIG[0]},{CONFIG[1]}>", _NAMES)


def supports(x: torch.Tensor, w: torch.Tensor) -> bool:
    N, K = w.shape
    return (x.dtype == w.dtype == torch.bfloat16 and x.is_cuda and x.numel() == K and K % 8 == 0
            and w.is_contiguous() and N * K <= MAX_WEIGHT and K <= MAX_K)


def gemv(x: torch.Tensor, w: torch.Tensor, out: torch.Tensor | None = None,
         config: tuple[int, int] | None = None) -> torch.Tensor:
    """x [..., K] holding one row, w [N, K] bf16 -> [..., N]."""
    N, K = w.shape
    if x.numel() != K or x.shape[-1] != K:
        raise ValueError(f"gemv: x must be one row of {K} features, got {tuple(x.shape)}")
    if x.dtype != torch.bfloat16 or w.dtype != torch.bfloat16 or K % 8 or not w.is_contiguous():
        raise ValueError(f"gemv: bf16 x and contiguous bf16 w with K % 8 == 0 (got {x.dtype}, {w.dtype}, K={K})")
    x1 = x.reshape(K).contiguous()
    y = torch.empty(*x.shape[:-1], N, dtype=x.dtype, device=x.device) if out is None else out
    R, CH = config or CONFIG
    fn = runtime.function("gemv", f"gemv_bf16<{R},{CH}>", _NAMES)
    runtime.launch(fn, (-(-N // (8 * R)),), (256,), (x1, w, y, N, K))
    return y


def supports_norm(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Any N (the gate/up projection too: measured 1.02x cuBLAS unfused, bench/results/gemv_h100.json)."""
    N, K = w.shape
    return (x.dtype == w.dtype == torch.bfloat16 and x.is_cuda and x.numel() == K and K % 8 == 0
            and w.is_contiguous() and K <= MAX_NORM_K)


def norm_gemv(x: torch.Tensor, residual: torch.Tensor | None, norm_weight: torch.Tensor, eps: float,
              w: torch.Tensor, config: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One row: -> (w @ (norm_weight * rmsnorm(x + residual)), x + residual); residual None: plain RMSNorm
    and x returned as the residual. Bit-equal to kernels.fused.add_rmsnorm followed by gemv."""
    N, K = w.shape
    if not supports_norm(x, w) or norm_weight.shape != (K,) or norm_weight.dtype != torch.bfloat16:
        raise ValueError(f"norm_gemv: one bf16 row of K <= {MAX_NORM_K} (K % 8 == 0), contiguous bf16 w and a "
                         f"bf16 norm weight of K; got x {tuple(x.shape)} {x.dtype}, w {tuple(w.shape)}")
    x1 = x.reshape(K).contiguous()
    r1 = residual.reshape(K).contiguous() if residual is not None else None
    y = torch.empty(*x.shape[:-1], N, dtype=x.dtype, device=x.device)
    res_out = torch.empty_like(x) if residual is not None else x
    R, CH = config or CONFIG
    fn = runtime.function("gemv", f"norm_gemv_bf16<{R},{CH}>", _NAMES)
    runtime.launch(fn, (-(-N // (8 * R)),), (256,),
                   (x1, r1, norm_weight.contiguous(), float(eps), w, y, res_out if residual is not None else None,
                    N, K), shared_mem=2 * K)
    return y, res_out


def reference(x, w) -> torch.Tensor:
    return x.double().reshape(1, -1) @ w.double().T
