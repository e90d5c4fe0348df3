"""Llama-style decoder over a paged KV cache: RMSNorm, RoPE (Llama-3 scaling), SwiGLU, GQA.

Tokens of all sequences in a step are packed into one flat batch, decodes first. Each layer
writes its new K/V into cache slots (`Attention.project`), then attends over the cache
(`Attention.attend`): decodes through their block tables (the paged kernel, or gather + SDPA),
every prompt chunk together in one varlen call over K/V gathered once per layer.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from contract.catalog import ModelSpec
from engine.parallel import all_reduce, gather_vocab


def rope_inv_freq(hd: int, theta: float, scaling: dict | None) -> torch.Tensor:
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    if scaling and scaling.get("rope_type", scaling.get("type")) == "llama3":
        factor, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        mid = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
        inv = torch.where(medium, mid, scaled)
    return inv


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def _rms(x, weight, eps: float):
    """RMSNorm in float32, scaled in the model dtype: transformers' arithmetic."""
    return weight * F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def _add_rms(x, residual, weight, eps: float):
    s = x + residual
    return weight * F.rms_norm(s.float(), (s.shape[-1],), eps=eps).to(s.dtype), s


def _rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin


def _silu_mul(gu, ff: int):
    g, u = gu.split(ff, dim=-1)
    return F.silu(g) * u


FUSED = {"rms": _rms, "add_rms": _add_rms, "rope": _rope, "silu_mul": _silu_mul}


def enable_fusion() -> None:
    """Compile the elementwise chains into one kernel each (triton). Opt-in: on torch 2.11 it hit the
    recompile limit and gave wrong decode tokens inside CUDA-graph capture (measured; see README)."""
    import torch._dynamo
    torch._dynamo.config.recompile_limit = 64
    if FUSED["rms"] is not _rms:
        return
    try:
        rms = torch.compile(_rms, dynamic=True, fullgraph=True)
        x = torch.randn(3, 64, device="cuda", dtype=torch.bfloat16)
        rms(x, torch.ones(64, device="cuda", dtype=torch.bfloat16), 1e-5)  # compiles now, or fails here
    except Exception as e:  # no compiler toolchain: keep the eager path, say so
        warnings.warn(f"elementwise fusion unavailable, running eager: {e!r}")
        return
    FUSED["rms"] = rms
    FUSED["add_rms"] = torch.compile(_add_rms, dynamic=True, fullgraph=True)
    FUSED["rope"] = torch.compile(_rope, dynamic=True, fullgraph=True)
    FUSED["silu_mul"] = torch.compile(_silu_mul, dynamic=True, fullgraph=True)


class Linear(nn.Linear):
    """nn.Linear with an optional kernel hook (engine.kernel_hooks sets `kernel`): the hook returns None for a
    shape it does not cover, and F.linear runs instead."""

    kernel = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel is not None:
            y = self.kernel(x, self.weight)
            if y is not None:
                return y
        return F.linear(x, self.weight, self.bias)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.backend = None  # engine.kernel_hooks, set by attach()

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None):
        if self.backend is not None:
            r = self.backend.rms(x, residual, self.weight, self.eps)
            if r is not None:
                return r[0] if residual is None else r
        if residual is None:
            return FUSED["rms"](x, self.weight, self.eps)
        return FUSED["add_rms"](x, residual, self.weight, self.eps)


@dataclass
class PrefillPack:
    """Every prompt chunk of a step, attended to in one call per layer (flash varlen on the GPU).

    Chunk i's queries are rows [cu_q[i], cu_q[i+1]) of the prefill part; it attends, causally and aligned
    to the end, to keys [cu_k[i], cu_k[i+1]) of K/V gathered once per layer through `kv_slots`: its context
    before the chunk plus the chunk itself."""

    kv_slots: torch.Tensor  # [sum of k lengths] cache slot of every key position, chunk after chunk
    cu_q: torch.Tensor  # int32 [chunks + 1]
    cu_k: torch.Tensor  # int32 [chunks + 1]
    max_q: int
    max_k: int
    spans: list  # host copy: (q start, q len, k start, k len) per chunk
    tokens: int  # prefill rows in the packed batch (they follow the decode rows)


@dataclass
class AttnMeta:
    """Where this step's tokens go and what they attend to."""

    slot_mapping: torch.Tensor  # [T] cache slot of each new token
    # decode part (tokens [0, n_decode)): one query per sequence
    n_decode: int
    block_tables: torch.Tensor | None  # [B, max_blocks]
    context_lens: torch.Tensor | None  # [B]
    prefill: PrefillPack | None = None  # prompt chunks: rows [n_decode, n_decode + prefill.tokens)


class Attention(nn.Module):
    def __init__(self, spec: ModelSpec, tp: int = 1):
        super().__init__()
        self.hd = spec.hd
        self.nh = spec.num_attention_heads // tp
        self.nkv = max(1, spec.num_key_value_heads // tp)
        self.qkv = Linear(spec.hidden_size, (self.nh + 2 * self.nkv) * self.hd, bias=False)
        self.o = Linear(self.nh * self.hd, spec.hidden_size, bias=False)
        self.scale = self.hd ** -0.5

    def project(self, x, cos, sin, k_cache, v_cache, slots, backend=None) -> torch.Tensor:
        """QKV projection, RoPE, and the new K/V written into their cache slots: -> q [T, nh, hd].
        Token-wise only, so a piecewise CUDA graph can hold it for any mix of sequences."""
        return self.rope_write(self.qkv(x), cos, sin, k_cache, v_cache, slots, backend)

    def rope_write(self, qkv, cos, sin, k_cache, v_cache, slots, backend=None) -> torch.Tensor:
        """RoPE on the projected q and k, the new K/V into their cache slots: -> q [T, nh, hd]."""
        T = qkv.shape[0]
        nb, bs = k_cache.shape[0], k_cache.shape[1]
        q = backend.rope_cache(qkv, cos, sin, slots, k_cache.view(nb * bs, self.nkv, self.hd),
                               v_cache.view(nb * bs, self.nkv, self.hd), self.nh, self.nkv) if backend else None
        if q is None:
            v = qkv[:, (self.nh + self.nkv) * self.hd:].view(T, self.nkv, self.hd)
            qk = qkv[:, : (self.nh + self.nkv) * self.hd].view(T, self.nh + self.nkv, self.hd)
            qk = FUSED["rope"](qk, cos, sin)  # q and k rotated together: one set of kernels
            q, k = qk[:, : self.nh], qk[:, self.nh:]
            _write(k_cache.view(nb * bs, self.nkv, self.hd), slots, k)
            _write(v_cache.view(nb * bs, self.nkv, self.hd), slots, v)
        return q

    def attend(self, q, k_cache, v_cache, meta: AttnMeta, backend=None, dmask=None, out=None) -> torch.Tensor:
        """Attention of this step's queries over the paged cache: -> [T, nh, hd]. Rows past the decodes and
        prompt chunks (padding) are left as they are in `out` (zeros when it is made here)."""
        T, nd, pre = q.shape[0], meta.n_decode, meta.prefill
        dec = None
        if nd and backend is not None:  # straight into the decode rows of `out` when there is one
            dec = backend.paged_decode(q[:nd], k_cache, v_cache, meta.block_tables, meta.context_lens, self.scale,
                                       out=None if out is None else out[:nd])
            if dec is not None and pre is None and nd == T and out is None:  # pure decode: nothing to pack
                return dec
        # zeros, not empty: padding rows must stay finite -- their K/V land in scratch block 0, which padded
        # block-table entries also point at, and a masked NaN still poisons attention (0 * NaN = NaN)
        out = torch.zeros_like(q) if out is None else out
        if nd and (dec is None or dec.data_ptr() != out.data_ptr()):
            out[:nd] = dec if dec is not None else decode_attention(
                q[:nd], k_cache, v_cache, meta.block_tables, meta.context_lens, self.scale, dmask)
        if pre is not None:
            out[nd:nd + pre.tokens] = packed_prefill_attention(q[nd:nd + pre.tokens], k_cache, v_cache, pre,
                                                               self.scale)
        return out

    def forward(self, x, cos, sin, k_cache, v_cache, meta: AttnMeta, backend=None, dmask=None):
        q = self.project(x, cos, sin, k_cache, v_cache, meta.slot_mapping, backend)
        return self.o(self.attend(q, k_cache, v_cache, meta, backend, dmask).view(x.shape[0], self.nh * self.hd))


# An FP8 KV cache (kv_cache_dtype fp8, scale 1) is moved as bytes -- indexing kernels do not all take float8 --
# and widened to the attention dtype where it is read.
def _bytes(cache: torch.Tensor) -> torch.Tensor:
    return cache.view(torch.uint8) if cache.element_size() == 1 else cache


def _widen(x: torch.Tensor, cache: torch.Tensor, dtype) -> torch.Tensor:
    return (x.view(cache.dtype) if cache.element_size() == 1 else x).to(dtype)


def _write(cache_view: torch.Tensor, slots: torch.Tensor, x: torch.Tensor) -> None:
    if cache_view.element_size() == 1:  # saturating at e4m3's largest value, as the fused kernel writes it
        x = x.clamp(-448.0, 448.0).to(cache_view.dtype)
        cache_view.view(torch.uint8).index_copy_(0, slots, x.view(torch.uint8))
    else:
        cache_view.index_copy_(0, slots, x)


def gather_kv(cache: torch.Tensor, table: torch.Tensor, length: int) -> torch.Tensor:
    """Contiguous [length, kv_heads, hd] view of one sequence's paged KV."""
    bs = cache.shape[1]
    nblk = -(-length // bs)
    return cache[table[:nblk]].flatten(0, 1)[:length]


def causal_attention(q, k, v, scale: float):
    """q [n, heads, hd] at the last n of k's L positions; k, v [L, kv_heads, hd]: causal, end-aligned.

    A lower-right-aligned causal bias (not a boolean mask) and K/V expanded to every query head keep
    SDPA on its flash / memory-efficient kernels; a dense mask forces the math path, which materializes
    the whole score matrix (measured: 862 ms for an 8192-token 1B prefill, against ~30 ms)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.bias import causal_lower_right
    n, L = q.shape[0], k.shape[0]
    k, v = k.transpose(0, 1), v.transpose(0, 1)  # [kvh, L, hd]
    rep = q.shape[1] // k.shape[0]
    if rep > 1:
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
    # chunk sizes vary step to step: keep to kernels without per-shape plans (cuDNN builds one per shape)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
        o = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k[None], v[None],
                                           attn_mask=causal_lower_right(n, L), scale=scale)
    return o[0].transpose(0, 1)


def prefill_attention(q, k_cache, v_cache, table, total_len: int, ctx_before: int, scale: float):
    """One chunk of n queries at positions [ctx_before, total_len) over its paged KV (the reference)."""
    return causal_attention(q, gather_kv(k_cache, table, total_len), gather_kv(v_cache, table, total_len), scale)


_FLASH = {"ok": True}


def _flash_varlen(q, k, v, pack: PrefillPack, scale: float):
    """FlashAttention-2 over all chunks at once (bf16/fp16 on CUDA; GQA native; causal is end-aligned when
    a chunk has fewer queries than keys), or None where it does not apply."""
    if not (_FLASH["ok"] and q.is_cuda and q.dtype in (torch.bfloat16, torch.float16) and q.shape[-1] % 8 == 0
            and q.shape[-1] <= 256):
        return None
    try:
        return torch.ops.aten._flash_attention_forward(q, k, v, pack.cu_q, pack.cu_k, pack.max_q, pack.max_k, 0.0,
                                                       True, False, scale=scale)[0]
    except (RuntimeError, NotImplementedError, AttributeError) as e:  # no flash in this build: say so, loop
        _flash_failed(e)
        return None


def flash_varlen_usable(q) -> bool:
    """Whether _flash_varlen will take these queries (it may still find flash missing on first call)."""
    return _FLASH["ok"] and q.is_cuda and q.dtype in (torch.bfloat16, torch.float16) and q.shape[-1] % 8 == 0 \
        and q.shape[-1] <= 256


def prefill_launcher(q, pack: PrefillPack, scale: float, out: torch.Tensor, nkv: int):
    """The packed prefill attention of one eager step set up once for all layers: -> run(kv) where kv is a
    layer's K and V caches as one [2, slots, kv_heads, hd] tensor. Per layer: one gather of K and V together
    into a buffer made once, one flash varlen call, one copy into `out` -- the host time of each call is
    what an eager step of a small model waits on. None where flash does not apply."""
    if not flash_varlen_usable(q):
        return None
    K, hd = pack.kv_slots.shape[0], q.shape[-1]
    kv_buf = torch.empty(2, K, nkv, hd, dtype=q.dtype, device=q.device)
    kb, vb, idx = kv_buf[0], kv_buf[1], pack.kv_slots
    flash = torch.ops.aten._flash_attention_forward.default
    args = (pack.cu_q, pack.cu_k, pack.max_q, pack.max_k, 0.0, True, False)

    raw = []  # an FP8 cache's bytes, gathered before widening (made at the first FP8 layer)

    def run(kv):
        if kv.element_size() == 1:  # index_select takes no float8: gather the bytes, widen into the buffer
            if not raw:
                raw.append(torch.empty(kv_buf.shape, dtype=torch.uint8, device=q.device))
            torch.index_select(kv.view(torch.uint8), 1, idx, out=raw[0])
            kv_buf.copy_(raw[0].view(kv.dtype))
        else:
            torch.index_select(kv, 1, idx, out=kv_buf)
        try:
            o = flash(q, kb, vb, *args, scale=scale)[0]
        except (RuntimeError, NotImplementedError) as e:
            _flash_failed(e)
            o = _per_chunk_attention(q, kb, vb, pack, scale)
        out.copy_(o)
    return run


def _flash_failed(e: Exception) -> None:
    warnings.warn(f"flash varlen attention unavailable, one SDPA call per prompt chunk instead: {e!r}")
    _FLASH["ok"] = False


def _per_chunk_attention(q, k, v, pack: PrefillPack, scale: float):
    o = torch.empty_like(q)
    for qs, n, ks, L in pack.spans:
        o[qs:qs + n] = causal_attention(q[qs:qs + n], k[ks:ks + L], v[ks:ks + L], scale)
    return o


def packed_prefill_attention(q, k_cache, v_cache, pack: PrefillPack, scale: float):
    """All prompt chunks of a step: K/V gathered once, then one varlen call (per-chunk SDPA off the GPU)."""
    nkv, hd = k_cache.shape[2], k_cache.shape[3]
    k = _widen(_bytes(k_cache).view(-1, nkv, hd).index_select(0, pack.kv_slots), k_cache, q.dtype)
    v = _widen(_bytes(v_cache).view(-1, nkv, hd).index_select(0, pack.kv_slots), v_cache, q.dtype)
    o = _flash_varlen(q, k, v, pack, scale)
    return o if o is not None else _per_chunk_attention(q, k, v, pack, scale)


def decode_mask(block_tables, context_lens, block_size: int) -> torch.Tensor:
    L = block_tables.shape[1] * block_size
    return (torch.arange(L, device=context_lens.device)[None, :] < context_lens[:, None])[:, None, None, :]


def decode_attention(q, k_cache, v_cache, block_tables, context_lens, scale: float, mask=None):
    """One query per sequence over its paged KV: gather every table to [B, max_blocks*bs], mask the tail.
    Static shapes (the table width fixes L), so it can be captured in a CUDA graph."""
    k = _widen(_bytes(k_cache)[block_tables], k_cache, q.dtype).flatten(1, 2).transpose(1, 2)  # [B, kvh, L, hd]
    v = _widen(_bytes(v_cache)[block_tables], v_cache, q.dtype).flatten(1, 2).transpose(1, 2)
    if mask is None:
        mask = decode_mask(block_tables, context_lens, k_cache.shape[1])
    o = F.scaled_dot_product_attention(q[:, :, None, :], k, v, attn_mask=mask, scale=scale,
                                       enable_gqa=q.shape[1] != k.shape[1])
    return o[:, :, 0, :]


class MLP(nn.Module):
    def __init__(self, spec: ModelSpec, tp: int = 1):
        super().__init__()
        self.ff = spec.intermediate_size // tp
        self.gate_up = Linear(spec.hidden_size, 2 * self.ff, bias=False)
        self.down = Linear(self.ff, spec.hidden_size, bias=False)

        self.backend = None  # engine.kernel_hooks, set by attach()

    def activation(self, gu):
        a = self.backend.silu_mul(gu, self.ff) if self.backend is not None else None
        return a if a is not None else FUSED["silu_mul"](gu, self.ff)

    def forward(self, x):
        return self.down(self.activation(self.gate_up(x)))


def norm_linear(norm: RMSNorm, linear: nn.Module, x, residual, backend=None):
    """linear(norm(x + residual)) and the new residual (x itself when residual is None). The kernels fuse the
    pair into one GEMV launch for batch-1 decode; everywhere else it is the norm, then the projection."""
    if backend is not None and isinstance(linear, Linear) and linear.kernel is not None:
        r = backend.norm_linear(x, residual, norm.weight, norm.eps, linear.weight)
        if r is not None:
            return r
    if residual is None:
        return linear(norm(x)), x
    h, residual = norm(x, residual)
    return linear(h), residual


class Block(nn.Module):
    def __init__(self, spec: ModelSpec, tp: int = 1):
        super().__init__()
        self.attn_norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.attn = Attention(spec, tp)
        self.mlp_norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.mlp = MLP(spec, tp)


class Llama(nn.Module):
    def __init__(self, spec: ModelSpec, tp: int = 1, rank: int = 0):
        super().__init__()
        self.spec, self.tp, self.rank = spec, tp, rank
        if spec.vocab_size % tp:
            raise ValueError(f"vocab_size {spec.vocab_size} does not divide by tensor parallel size {tp}")
        self.vocab_shard = spec.vocab_size // tp
        self.embed = nn.Embedding(self.vocab_shard, spec.hidden_size)
        self.layers = nn.ModuleList(Block(spec, tp) for _ in range(spec.num_layers))
        self.norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.lm_head = Linear(spec.hidden_size, self.vocab_shard, bias=False)
        self.register_buffer("inv_freq", rope_inv_freq(spec.hd, spec.rope_theta, spec.rope_scaling), persistent=False)
        self.backend = None  # optional CUDA kernels (engine.kernel_hooks), PyTorch path when None

    def rope(self, positions: torch.Tensor, dtype):
        f = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((f, f), dim=-1)
        return emb.cos().to(dtype)[:, None, :], emb.sin().to(dtype)[:, None, :]

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        if self.tp == 1:
            return self.embed(ids)
        lo = self.rank * self.vocab_shard
        local = (ids >= lo) & (ids < lo + self.vocab_shard)
        x = self.embed((ids - lo).clamp(0, self.vocab_shard - 1)) * local[:, None].to(self.embed.weight.dtype)
        return all_reduce(x)  # vocabulary-parallel: each token's row lives on exactly one rank

    def forward(self, input_ids, positions, kv_caches, meta: AttnMeta, logits_idx: torch.Tensor):
        x = self._embed(input_ids)
        cos, sin = self.rope(positions, x.dtype)
        # computed in every forward (never cached on meta: a CUDA graph must recompute it from its inputs)
        dmask = decode_mask(meta.block_tables, meta.context_lens, kv_caches[0][0].shape[1]) \
            if meta.n_decode and self.backend is None else None
        residual, be, T = None, self.backend, x.shape[0]
        for layer, (kc, vc) in zip(self.layers, kv_caches):
            at, mlp = layer.attn, layer.mlp
            qkv, residual = norm_linear(layer.attn_norm, at.qkv, x, residual, be)
            q = at.rope_write(qkv, cos, sin, kc, vc, meta.slot_mapping, be)
            x = at.o(at.attend(q, kc, vc, meta, be, dmask).view(T, at.nh * at.hd))
            if self.tp > 1:  # row-parallel O: partial sums -> one all-reduce
                x = all_reduce(x)
            gu, residual = norm_linear(layer.mlp_norm, mlp.gate_up, x, residual, be)
            x = mlp.down(mlp.activation(gu))
            if self.tp > 1:  # row-parallel down projection
                x = all_reduce(x)
        x, _ = self.norm(x, residual)
        logits = self.lm_head(x[logits_idx]).float()
        if self.tp > 1:
            logits = gather_vocab(logits, self.tp)
        return logits
