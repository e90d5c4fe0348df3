"""Quantized projections. INT8 weight-only (W8A16): symmetric, group-wise along the input dimension (group 128),
one scale per (output channel, group), dequantized on the fly. FP8 (W8A8, e4m3): one scale per output channel
for the weights, one per token for the activations (dynamic), multiplied on FP8 tensor cores by
torch._scaled_mm; at decode batch sizes the e4m3 weights are read by the 8-bit-weight GEMM instead.
Embeddings, LM head and norms stay 16-bit, as vLLM keeps them."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kernels import fp8_quant, int8_dequant, w8a16_mma

GROUP = 128
# From this many rows up an INT8 projection dequantizes its weight (one pass, kernels/int8_dequant.py) and runs
# cuBLAS in 16 bits: there the GEMM is bound by tensor-core math, where converting weight tiles in registers
# (the 8-bit-weight GEMM) costs more than writing and re-reading a 16-bit copy. On the 8B's four projections
# (H100, bench/quant_speed.py, device round 23) the two are even at 256 rows, the 8-bit GEMM wins by 1.2-1.8x at
# 128 and loses by 1.5-2.8x from 512 up. None: the 8-bit kernels at every size.
INT8_DEQUANT_ROWS: int | None = 256


def quantize_int8(w: torch.Tensor, group: int = GROUP) -> tuple[torch.Tensor, torch.Tensor]:
    """w [N, K] -> (int8 [N, K], scales [N, K/group] in w's dtype). Symmetric: q = round(w / s), s = max|w| / 127."""
    N, K = w.shape
    if K % group:
        raise ValueError(f"input dimension {K} is not a multiple of the group size {group}")
    g = w.float().view(N, K // group, group)
    s = g.abs().amax(-1).clamp_min(1e-12) / 127.0
    q = torch.round(g / s[..., None]).clamp(-127, 127).to(torch.int8)
    return q.view(N, K), s.to(w.dtype)


def dequantize_int8(q: torch.Tensor, s: torch.Tensor, group: int = GROUP) -> torch.Tensor:
    N, K = q.shape
    return (q.view(N, K // group, group).to(s.dtype) * s[..., None]).view(N, K)


class Int8Linear(nn.Module):
    """y = x @ dequant(q, s).T. The PyTorch path dequantizes the whole matrix; kernels.w8a16 reads int8 directly."""

    def __init__(self, q: torch.Tensor, s: torch.Tensor):
        super().__init__()
        self.register_buffer("qweight", q)
        self.register_buffer("scales", s)
        self.in_features, self.out_features = q.shape[1], q.shape[0]
        self.kernel = None

    @classmethod
    def from_linear(cls, lin: nn.Linear) -> "Int8Linear":
        q, s = quantize_int8(lin.weight.data)
        return cls(q, s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if INT8_DEQUANT_ROWS is not None and x.shape[0] >= INT8_DEQUANT_ROWS \
                and int8_dequant.supports(self.qweight, self.scales):
            return F.linear(x, int8_dequant.dequantize(self.qweight, self.scales))
        if self.kernel is not None and x.is_cuda:
            y = self.kernel(x, self.qweight, self.scales)  # None where the kernel does not cover the shape
            if y is not None:
                return y
        if x.is_cuda and w8a16_mma.supports(x, self.qweight):  # tensor cores, int8 read once
            return w8a16_mma.w8a16(x, self.qweight, self.scales)
        return x @ dequantize_int8(self.qweight, self.scales).T


FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0  # the largest finite e4m3 value


def quantize_fp8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w [N, K] -> (e4m3 [N, K], float32 scales [N]): per output channel, s = max|w| / 448."""
    s = w.float().abs().amax(-1).clamp_min(1e-12) / FP8_MAX
    return (w.float() / s[:, None]).clamp(-FP8_MAX, FP8_MAX).to(FP8), s


def quantize_fp8_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations x [M, K] -> (e4m3 [M, K], float32 scales [M, 1]): per token, computed each step (one Triton
    launch on the GPU, the PyTorch ops elsewhere)."""
    if fp8_quant.supports(x):
        return fp8_quant.quantize_rows(x)
    s = x.float().abs().amax(-1, keepdim=True).clamp_min(1e-12) / FP8_MAX
    return (x.float() / s).clamp(-FP8_MAX, FP8_MAX).to(FP8), s


# Which FP8 projections run through the 8-bit-weight GEMM (kernels/w8a16_mma.py, weights converted to bf16 in
# registers) rather than torch._scaled_mm: a decode-sized step is bound by reading weights, and the row-scaled
# FP8 GEMM plus the activations' quantization launch lose there -- always at up to 16 rows; at up to 32 unless
# the layer is very wide (N >= 12288, where _scaled_mm fills the GPU) or short (K < 4096); at up to 64 only
# where K is much longer than N (a down projection), since _scaled_mm does not split K and underfills the GPU.
# Read off bench/quant_tune.py (rounds 18b/18c) and the 46 shapes of the FP8 GEMM table (round 19).
# Rows (lo, hi) at which an FP8 projection runs W8A8 in the 8-bit-weight GEMM's Triton kernel
# (kernels/w8a16_mma.w8a8: e4m3 activations on the FP8 tensor cores, 256-wide K tiles five deep) instead of the
# 8-bit-weight GEMM or torch._scaled_mm. On the H200 at 32 and 64 rows (bench/quant_tune.py, device round 36b) it
# beat the path the engine took before on all 24 projections searched (8B, Qwen-7B-shaped, 70B TP=2 shard): 1.10-1.76x
# cuBLAS bf16 where that path gave 0.65-1.34x; at 128 rows it loses on half of them. At 8 and 16 rows (the 8B's
# four projections, round 40) it beat streaming bf16 activations on all four (qkv and o by 25-37%, down by 1%),
# quantization launch included; decode graphs run 5-7 sequences at 8 rows, so the range starts there. None: the
# paths below at every size.
FP8_W8A8_ROWS: tuple[int, int] | None = (8, 64)


def fp8_w8a8(x: torch.Tensor, qweight: torch.Tensor) -> bool:
    return (FP8_W8A8_ROWS is not None and FP8_W8A8_ROWS[0] <= x.shape[0] <= FP8_W8A8_ROWS[1] and x.is_cuda
            and w8a16_mma.supports(x, qweight))


def fp8_streams(x: torch.Tensor, qweight: torch.Tensor) -> bool:
    rows, (n, k) = x.shape[0], qweight.shape
    fits = rows <= 16 or (rows <= 32 and n < 12288 and k >= 4096) or (rows <= 64 and k >= 2.5 * n)
    return fits and x.is_cuda and w8a16_mma.supports(x, qweight)


class Fp8Linear(nn.Module):
    """y = (x_q s_x) @ (w_q s_w).T with both factors in e4m3 on the FP8 tensor cores (torch._scaled_mm) for
    prefill-sized inputs; decode-sized inputs multiply bf16 activations by the e4m3 weights (see above)."""

    def __init__(self, q: torch.Tensor, s: torch.Tensor, out_dtype=torch.bfloat16):
        super().__init__()
        self.register_buffer("qweight", q)
        self.register_buffer("scales", s[None, :].contiguous())  # [1, N]: _scaled_mm's column scales
        self.in_features, self.out_features = q.shape[1], q.shape[0]
        self.out_dtype = out_dtype

    @classmethod
    def from_linear(cls, lin: nn.Linear) -> "Fp8Linear":
        return cls.from_linear_weight(lin.weight.data)

    @classmethod
    def from_linear_weight(cls, w: torch.Tensor) -> "Fp8Linear":
        q, s = quantize_fp8(w)
        return cls(q, s, w.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fp8_w8a8(x, self.qweight):
            return w8a16_mma.w8a8(*quantize_fp8_rows(x), self.qweight, self.scales, out_dtype=x.dtype)
        if fp8_streams(x, self.qweight):
            return w8a16_mma.w8a16(x, self.qweight, self.scales)
        return self.scaled_mm(x)

    def scaled_mm(self, x: torch.Tensor) -> torch.Tensor:
        """W8A8: activations quantized per token, both factors on the FP8 tensor cores."""
        xq, xs = quantize_fp8_rows(x)
        return torch._scaled_mm(xq, self.qweight.t(), scale_a=xs, scale_b=self.scales, out_dtype=x.dtype)


LINEARS = {"int8": Int8Linear, "fp8": Fp8Linear}


def quantize_model(model, quantization: str = "int8") -> dict:
    """Swap every decoder projection for its quantized form; report the weight memory before and after."""
    if quantization not in LINEARS:
        raise ValueError(f"quantization '{quantization}': the engine quantizes to {', '.join(LINEARS)}")
    cls = LINEARS[quantization]
    before = sum(p.numel() * p.element_size() for p in model.parameters())
    for layer in model.layers:
        for parent, name in ((layer.attn, "qkv"), (layer.attn, "o"), (layer.mlp, "gate_up"), (layer.mlp, "down")):
            lin = getattr(parent, name)
            if isinstance(lin, cls):  # already in this format: a model reused by several engines
                continue
            if not isinstance(lin, nn.Linear):
                raise ValueError(f"quantization '{quantization}': {name} is already {type(lin).__name__}")
            setattr(parent, name, cls.from_linear(lin))
    after = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers() if b.dtype != torch.float32)
    return {"weight_bytes_before": before, "weight_bytes_after": after, "saved_fraction": 1 - after / before}
