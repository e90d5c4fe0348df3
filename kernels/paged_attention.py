"""Paged-attention decode (kernels/cuda/paged_attention.cu) and its PyTorch reference."""
from __future__ import annotations

import numpy as np
import torch

from kernels import runtime

HEAD_DIMS = (64, 128)
# query heads per KV head: every group up to 8 (Qwen2.5-7B has 7, Qwen2.5-32B at TP=2 has 5); a group left out
# here makes the engine's attention fall back to the PyTorch path, several times slower at serving batch sizes
GROUPS = (1, 2, 3, 4, 5, 6, 7, 8)
# the cache formats read: bf16, and FP8 e4m3 with scale 1 (kv_cache_dtype fp8), by bytes per element
KV_DTYPES = {torch.bfloat16: 2, torch.float8_e4m3fn: 1}
_NAMES = tuple(f"paged_decode<{d},{g},{b}>" for d in HEAD_DIMS for g in GROUPS for b in (2, 1)) + tuple(
    f"paged_combine<{d}>" for d in HEAD_DIMS)


def supports(q: torch.Tensor, k_cache: torch.Tensor) -> bool:
    nh, hd = q.shape[1], q.shape[2]
    nkv = k_cache.shape[2]
    return (q.dtype == torch.bfloat16 and k_cache.dtype in KV_DTYPES and hd in HEAD_DIMS and nh % nkv == 0
            and nh // nkv in GROUPS and q.stride(2) == 1 and q.stride(1) == hd and k_cache.is_contiguous())


def partition_size(batch: int, nkv: int, max_len: int, target_blocks: int | None = None) -> int:
    """Tokens per partition: 512, halved (down to 64) until the grid has 1.5 blocks per SM -- a single
    sequence at batch 1 must still spread its context over every SM (H100 sweep in bench/kernel_speed.py:
    batch 1 x 4096 tokens runs 18.1 us at 128, 20.7 us at 64, 19.0 us at 256)."""
    target = target_blocks or 3 * runtime.num_sms() // 2
    P = 512
    while P > 64 and batch * nkv * -(-max_len // P) < target:
        P //= 2
    return P


def paged_decode(q, k_cache, v_cache, block_tables, context_lens, scale: float,
                 partition: int | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """q [B, nh, D] (rows may be strided), caches [num_blocks, block_size, nkv, D], block_tables [B, W] int64,
    context_lens [B] int64 -> [B, nh, D]. Padding table entries may point anywhere valid; tokens past
    context_lens are never read."""
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device) if out is None else out
    DecodeLaunch(q, k_cache, block_tables, context_lens, scale, out, partition)(
        np.uint64(k_cache.data_ptr()), np.uint64(v_cache.data_ptr()))
    return out


class DecodeLaunch:
    """The paged decode of one step, set up once: call(k_ptr, v_ptr) launches it on one layer's caches. An
    eager step's layers share q and out (the piecewise graphs' static buffers), tables, lengths and the
    partitioning; what setting up once saves is host time -- checks, the partition choice, scratch
    allocations and argument conversion per layer: measured 35-125 us per layer of a 1B mixed step on the
    H100's host (bench/host_breakdown.py). Holds every tensor whose pointer it passes."""

    def __init__(self, q, k_cache, block_tables, context_lens, scale: float, out: torch.Tensor,
                 partition: int | None = None):
        if not supports(q, k_cache):
            raise ValueError(f"paged_decode: unsupported q {tuple(q.shape)} {q.dtype} / cache "
                             f"{tuple(k_cache.shape)} {k_cache.dtype} (bf16 queries, a bf16 or FP8 e4m3 cache, head "
                             f"dim in {HEAD_DIMS}, GQA group in {GROUPS})")
        if block_tables.dtype != torch.int64 or context_lens.dtype != torch.int64:
            raise ValueError("paged_decode: block_tables and context_lens must be int64")
        B, nh, D = q.shape
        bs, nkv = k_cache.shape[1], k_cache.shape[2]
        if bs & (bs - 1):
            raise ValueError(f"paged_decode: block size {bs} is not a power of two")
        tables = block_tables.contiguous()
        W = tables.shape[1]
        P = partition or partition_size(B, nkv, W * bs)
        self.nparts = nparts = -(-(W * bs) // P)
        parts = (None, None, None)
        if nparts > 1:  # scratch shared by the layers: each layer's combine reads it before the next writes
            parts = (torch.empty(B, nh, nparts, D, dtype=torch.float32, device=q.device),
                     torch.empty(B, nh, nparts, dtype=torch.float32, device=q.device),
                     torch.empty(B, nh, nparts, dtype=torch.float32, device=q.device))
        self._keep = (q, tables, context_lens, out, parts)  # the launches below hold raw pointers to these
        self._head = runtime.convert((q, q.stride(0)))
        self._tail = runtime.convert((tables, W, context_lens, bs.bit_length() - 1, nkv, out, *parts, P, nparts,
                                      float(scale)))
        name = f"paged_decode<{D},{nh // nkv},{KV_DTYPES[k_cache.dtype]}>"
        self._main = runtime.launcher(runtime.function("paged_attention", name, _NAMES), (nparts, nkv, B), (128,))
        self._comb = None
        if nparts > 1:
            self._comb = runtime.launcher(runtime.function("paged_attention", f"paged_combine<{D}>", _NAMES),
                                          (nh, B), (D,))
            self._comb_args = runtime.convert((*parts, context_lens, out, nh, nparts, P))

    def __call__(self, k_ptr, v_ptr) -> None:
        self._main(self._head + (k_ptr, v_ptr) + self._tail)
        if self._comb is not None:
            self._comb(self._comb_args)


def reference(q, k_cache, v_cache, block_tables, context_lens, scale: float) -> torch.Tensor:
    """float64: gather each sequence's KV to contiguous and attend with SDPA (an FP8 cache widened exactly)."""
    B, nh, D = q.shape
    bs, nkv = k_cache.shape[1], k_cache.shape[2]
    outs = []
    for b in range(B):
        L = int(context_lens[b])
        nblk = -(-L // bs)
        idx = block_tables[b, :nblk]
        k = k_cache[idx].flatten(0, 1)[:L].double().transpose(0, 1)  # [nkv, L, D]
        v = v_cache[idx].flatten(0, 1)[:L].double().transpose(0, 1)
        o = torch.nn.functional.scaled_dot_product_attention(q[b].double()[:, None, :], k, v, scale=scale,
                                                             enable_gqa=nh != nkv)
        outs.append(o[:, 0, :])
    return torch.stack(outs)
