"""The engine's hooks for the CUDA kernels: the PyTorch path stays wherever a kernel does not apply.

attach(model) sets `backend` on the model (paged decode, RoPE + cache write), on each RMSNorm and MLP,
and `kernel` on each Int8Linear. Every hook checks its inputs and returns None (or is skipped) for a
shape or dtype it does not cover, so the model falls back op by op.
"""
from __future__ import annotations

import warnings

import torch

from engine.model import MLP, Linear, RMSNorm
from engine.quant import Int8Linear
from kernels import fused, gemv, paged_attention, runtime, w8a16, w8a16_mma


class Backend:
    """eager: also use the kernels outside CUDA-graph capture. Each CuPy launch costs host time that a
    graph replay does not pay, so eager steps (prefill / mixed) can be faster on the PyTorch path."""

    def __init__(self, eager: bool = True):
        self.eager = eager
        # what the attention kernel could not serve, once each: a layout or cache format outside the kernel runs
        # the PyTorch path (several times slower at serving batches), which a run's record must be able to say
        self.fallbacks: set[str] = set()

    def _skip(self) -> bool:
        return not self.eager and not torch.cuda.is_current_stream_capturing()

    def _attention_applies(self, q, k_cache) -> bool:
        if k_cache.dtype not in paged_attention.KV_DTYPES or q.dtype != torch.bfloat16:
            why = (f"paged decode: KV cache {k_cache.dtype} with queries {q.dtype} (the kernel reads bf16 queries "
                   f"over bf16 or FP8 e4m3 caches)")
        elif not paged_attention.supports(q, k_cache):
            why = (f"paged decode: {q.shape[1]} query heads over {k_cache.shape[2]} KV heads, head dim {q.shape[2]}, "
                   f"{q.dtype}")
        else:
            return True
        if why not in self.fallbacks:
            self.fallbacks.add(why)
            warnings.warn(f"kernel not applicable, PyTorch path: {why}", RuntimeWarning, stacklevel=3)
        return False

    def paged_decode(self, q, k_cache, v_cache, block_tables, context_lens, scale, out=None):
        if self._skip() or not self._attention_applies(q, k_cache):
            return None
        return paged_attention.paged_decode(q, k_cache, v_cache, block_tables, context_lens, scale, out=out)

    def decode_launcher(self, q, k_cache, block_tables, context_lens, scale, out):
        """The paged decode of an eager step set up once for all layers (-> run(k_ptr, v_ptr)), or None."""
        if self._skip() or not self._attention_applies(q, k_cache):
            return None
        return paged_attention.DecodeLaunch(q, k_cache, block_tables, context_lens, scale, out)

    def rope_cache(self, qkv, cos, sin, slots, k_cache, v_cache, nh, nkv):
        if self._skip() or qkv.dtype != torch.bfloat16 or not qkv.is_cuda:
            return None
        if k_cache.dtype != qkv.dtype and not (k_cache.dtype == torch.float8_e4m3fn and fused.fp8_writes()):
            return None
        return fused.rope_cache(qkv, cos, sin, slots, k_cache, v_cache, nh, nkv)

    def rms(self, x, residual, weight, eps):
        if self._skip() or x.dtype != torch.bfloat16 or not x.is_cuda or x.shape[-1] % 8 or x.shape[-1] > 8192:
            return None
        return fused.add_rmsnorm(x, residual, weight, eps)

    def norm_linear(self, x, residual, norm_weight, eps, weight):
        return norm_gemv_kernel(x, residual, norm_weight, eps, weight)

    def silu_mul(self, gu, ff):
        if self._skip() or gu.dtype != torch.bfloat16 or not gu.is_cuda or ff % 8:
            return None
        return fused.silu_mul(gu, ff)


# At most this many rows the one-launch GEMV (kernels/w8a16.py) is used; above it, the tensor-core GEMM
# (kernels/w8a16_mma.py), which the GEMV loses to from 16 rows on
GEMV_MAX_ROWS = 4


def int8_kernel(x, qweight, scales):
    if x.shape[0] <= GEMV_MAX_ROWS and w8a16.supports(x, qweight):
        return w8a16.w8a16(x, qweight, scales)
    if w8a16_mma.supports(x, qweight):
        return w8a16_mma.w8a16(x, qweight, scales)
    return None


def gemv_kernel(x, weight):
    """Batch-1 bf16 projections inside CUDA-graph capture (decode), where a one-launch GEMV beats cuBLAS'
    split-K pair; eager steps with one row are rare and keep cuBLAS."""
    if x.shape[0] != 1 or not torch.cuda.is_current_stream_capturing() or not gemv.supports(x, weight) \
            or x.data_ptr() % 16 or weight.data_ptr() % 16:
        return None
    return gemv.gemv(x, weight)


def norm_gemv_kernel(x, residual, norm_weight, eps, weight):
    """Batch-1 decode inside CUDA-graph capture: the add + RMSNorm in front of a projection, fused into
    its GEMV (one launch instead of two). -> (projection, new residual) or None."""
    if x.shape[0] != 1 or not torch.cuda.is_current_stream_capturing() or not gemv.supports_norm(x, weight) \
            or norm_weight.dtype != torch.bfloat16 or x.data_ptr() % 16 or weight.data_ptr() % 16 \
            or (residual is not None and residual.data_ptr() % 16):
        return None
    return gemv.norm_gemv(x, residual, norm_weight, eps, weight)


def _set(model, backend, kernel, linear=None) -> None:
    model.backend = backend
    for m in model.modules():
        if isinstance(m, (RMSNorm, MLP)):
            m.backend = backend
        elif isinstance(m, Int8Linear):
            m.kernel = kernel
        elif isinstance(m, Linear):
            m.kernel = linear


def attach(model) -> Backend:
    """Raises KernelsUnavailable (CuPy or a GPU missing) so the caller can say why and run without."""
    runtime.cupy()
    be = Backend()
    gemv.prepare()
    _set(model, be, int8_kernel, gemv_kernel)
    return be


def detach(model) -> None:
    _set(model, None, None)
