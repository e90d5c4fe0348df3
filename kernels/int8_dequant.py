"""INT8 group-quantized weights back to 16-bit in one pass (Triton): read int8 and one scale per 128-wide group,
write bf16/fp16 -- 3 bytes per weight where the PyTorch ops (convert, then multiply) move 7. A prefill-sized
INT8 projection is bound by tensor-core math, not by reading weights, so there the engine dequantizes and runs
cuBLAS in 16 bits (engine.quant.INT8_DEQUANT_ROWS) rather than converting tiles inside the 8-bit-weight GEMM."""
from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the planner and the CPU tests run without Triton
    triton = tl = None

GROUP = 128
BLOCK = 4096  # weights per program: 32 groups


def supports(q: torch.Tensor, s: torch.Tensor) -> bool:
    return (triton is not None and q.is_cuda and q.dtype == torch.int8 and q.dim() == 2 and q.is_contiguous()
            and s.is_contiguous() and s.dtype in (torch.bfloat16, torch.float16)
            and q.shape[1] % GROUP == 0 and s.shape == (q.shape[0], q.shape[1] // GROUP))


if triton is not None:
    @triton.jit
    def _dequant_kernel(q_ptr, s_ptr, out_ptr, total, BLOCK: tl.constexpr, GROUP: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < total
        q = tl.load(q_ptr + offs, mask=mask, other=0).to(tl.float32)
        s = tl.load(s_ptr + offs // GROUP, mask=mask, other=0).to(tl.float32)  # [N, K/128] flat = offs // 128
        tl.store(out_ptr + offs, (q * s).to(out_ptr.dtype.element_ty), mask=mask)


def dequantize(q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """q [N, K] int8, s [N, K/128] -> [N, K] in s's dtype (q * s, rounded once from float32)."""
    if not supports(q, s):
        raise ValueError(f"int8 dequantize: int8 [N, K] with K a multiple of {GROUP} and scales [N, K/{GROUP}] "
                         f"in bf16/fp16 on a GPU expected, got {tuple(q.shape)} {q.dtype}, {tuple(s.shape)} {s.dtype}")
    out = torch.empty(q.shape, dtype=s.dtype, device=q.device)
    total = q.numel()
    _dequant_kernel[(triton.cdiv(total, BLOCK),)](q, s, out, total, BLOCK=BLOCK, GROUP=GROUP, num_warps=8)
    return out
