"""INT8 weight-only quantization (W8A16): symmetric, group-wise along the input dimension (group 128),
one scale per (output channel, group), dequantized on the fly. Embeddings, LM head and norms stay 16-bit."""
from __future__ import annotations

import torch
from torch import nn

GROUP = 128


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
        if self.kernel is not None and x.is_cuda:
            y = self.kernel(x, self.qweight, self.scales)  # None where the kernel does not cover the shape
            if y is not None:
                return y
        return x @ dequantize_int8(self.qweight, self.scales).T


def quantize_model(model) -> dict:
    """Swap every decoder projection for an Int8Linear; report the weight memory before and after."""
    before = sum(p.numel() * p.element_size() for p in model.parameters())
    for layer in model.layers:
        for parent, name in ((layer.attn, "qkv"), (layer.attn, "o"), (layer.mlp, "gate_up"), (layer.mlp, "down")):
            setattr(parent, name, Int8Linear.from_linear(getattr(parent, name)))
    after = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers() if b.dtype != torch.float32)
    return {"weight_bytes_before": before, "weight_bytes_after": after, "saved_fraction": 1 - after / before}
