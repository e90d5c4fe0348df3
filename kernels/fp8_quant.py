"""Per-token FP8 quantization of activations in one launch (Triton): for each row, its largest magnitude, the
scale max|x| / 448, and the row in e4m3. The PyTorch path takes five kernels per projection (abs, amax, divide,
clamp, convert); inside a decode step's CUDA graph that is 4 projections x 5 launches per layer."""
from __future__ import annotations

import warnings

import torch

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = tl = None

FP8_MAX = 448.0


_CHECKED: dict = {}


def supports(x: torch.Tensor) -> bool:
    if not (triton is not None and x.is_cuda and x.dim() == 2 and x.dtype in (torch.bfloat16, torch.float16)
            and x.stride(1) == 1):
        return False
    ok = _CHECKED.get(x.device)
    if ok is None:  # once per device: the kernel's rounding against the PyTorch ops', else the PyTorch path
        if torch.cuda.is_current_stream_capturing():
            return False  # no check inside a graph capture; the first eager call decides
        ok = _CHECKED[x.device] = _agrees(x.device, x.dtype)
        if not ok:
            warnings.warn("FP8 row quantization: the Triton kernel disagrees with the PyTorch ops on this device; "
                          "using the PyTorch path (five launches per projection)")
    return ok


def _agrees(dev, dtype) -> bool:
    g = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(8, 4096, generator=g, device=dev).to(dtype)
    q, s = quantize_rows(x)
    ref_s = x.float().abs().amax(-1, keepdim=True).clamp_min(1e-12) / FP8_MAX
    back = q.float() * s
    # the scales exactly, the values to e4m3's precision (rounding modes may differ on ties)
    return bool(torch.allclose(s, ref_s) and ((back - x.float()).norm() / x.float().norm()).item() < 0.04)


if triton is not None:
    @triton.jit
    def _quant_rows(x_ptr, q_ptr, s_ptr, K, stride_x, stride_q, BLOCK: tl.constexpr, FMAX: tl.constexpr):
        row = tl.program_id(0)
        amax = tl.zeros((BLOCK,), dtype=tl.float32)
        for k0 in range(0, K, BLOCK):
            k = k0 + tl.arange(0, BLOCK)
            v = tl.load(x_ptr + row * stride_x + k, mask=k < K, other=0.0).to(tl.float32)
            amax = tl.maximum(amax, tl.abs(v))
        scale = tl.maximum(tl.max(amax, axis=0), 1e-12) / FMAX
        tl.store(s_ptr + row, scale)
        for k0 in range(0, K, BLOCK):
            k = k0 + tl.arange(0, BLOCK)
            v = tl.load(x_ptr + row * stride_x + k, mask=k < K, other=0.0).to(tl.float32)
            q = tl.minimum(tl.maximum(v / scale, -FMAX), FMAX)
            tl.store(q_ptr + row * stride_q + k, q.to(q_ptr.dtype.element_ty), mask=k < K)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] -> (e4m3 [M, K], float32 scales [M, 1])."""
    M, K = x.shape
    q = torch.empty((M, K), dtype=torch.float8_e4m3fn, device=x.device)
    s = torch.empty((M, 1), dtype=torch.float32, device=x.device)
    _quant_rows[(M,)](x, q, s, K, x.stride(0), q.stride(0), BLOCK=1024, FMAX=FP8_MAX, num_warps=4)
    return q, s
