"""Llama-style decoder over a paged KV cache: RMSNorm, RoPE (Llama-3 scaling), SwiGLU, GQA.

Tokens of all sequences in a step are packed into one flat batch. Each layer
writes its new K/V into cache slots, then attends over the cache through each
sequence's block table: one batched gather-and-SDPA for decode tokens (the
CUDA-graph path), and a per-sequence causal SDPA for prefill chunks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from planner.catalog import ModelSpec


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
        import warnings
        warnings.warn(f"elementwise fusion unavailable, running eager: {e!r}")
        return
    FUSED["rms"] = rms
    FUSED["add_rms"] = torch.compile(_add_rms, dynamic=True, fullgraph=True)
    FUSED["rope"] = torch.compile(_rope, dynamic=True, fullgraph=True)
    FUSED["silu_mul"] = torch.compile(_silu_mul, dynamic=True, fullgraph=True)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.backend = None  # kernels.backend, set by attach()

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None):
        if self.backend is not None:
            r = self.backend.rms(x, residual, self.weight, self.eps)
            if r is not None:
                return r[0] if residual is None else r
        if residual is None:
            return FUSED["rms"](x, self.weight, self.eps)
        return FUSED["add_rms"](x, residual, self.weight, self.eps)


@dataclass
class AttnMeta:
    """Where this step's tokens go and what they attend to."""

    slot_mapping: torch.Tensor  # [T] cache slot of each new token
    # decode part (tokens [0, n_decode)): one query per sequence
    n_decode: int
    block_tables: torch.Tensor | None  # [B, max_blocks]
    context_lens: torch.Tensor | None  # [B]
    # prefill part: per chunk (start in packed batch, length, context before it, block table)
    prefills: list

class Attention(nn.Module):
    def __init__(self, spec: ModelSpec, tp: int = 1):
        super().__init__()
        self.hd = spec.hd
        self.nh = spec.num_attention_heads // tp
        self.nkv = max(1, spec.num_key_value_heads // tp)
        self.qkv = nn.Linear(spec.hidden_size, (self.nh + 2 * self.nkv) * self.hd, bias=False)
        self.o = nn.Linear(self.nh * self.hd, spec.hidden_size, bias=False)
        self.scale = self.hd ** -0.5

    def forward(self, x, cos, sin, k_cache, v_cache, meta: AttnMeta, backend=None, dmask=None):
        T = x.shape[0]
        qkv = self.qkv(x)
        nb, bs = k_cache.shape[0], k_cache.shape[1]
        q = backend.rope_cache(qkv, cos, sin, meta.slot_mapping, k_cache.view(nb * bs, self.nkv, self.hd),
                               v_cache.view(nb * bs, self.nkv, self.hd), self.nh, self.nkv) if backend else None
        if q is None:
            q, k, v = qkv.split([self.nh * self.hd, self.nkv * self.hd, self.nkv * self.hd], dim=-1)
            v = v.view(T, self.nkv, self.hd)
            qk = qkv[:, : (self.nh + self.nkv) * self.hd].view(T, self.nh + self.nkv, self.hd)
            qk = FUSED["rope"](qk, cos, sin)  # q and k rotated together: one set of kernels
            q, k = qk[:, : self.nh], qk[:, self.nh:]
            k_cache.view(nb * bs, self.nkv, self.hd).index_copy_(0, meta.slot_mapping, k)
            v_cache.view(nb * bs, self.nkv, self.hd).index_copy_(0, meta.slot_mapping, v)
        nd = meta.n_decode
        dec = None
        if nd and backend is not None:
            dec = backend.paged_decode(q[:nd], k_cache, v_cache, meta.block_tables, meta.context_lens, self.scale)
            if dec is not None and not meta.prefills and nd == T:  # pure decode: no packing needed
                return self.o(dec.view(T, self.nh * self.hd))
        # zeros, not empty: padding rows must stay finite -- their K/V land in scratch block 0, which padded
        # block-table entries also point at, and a masked NaN still poisons attention (0 * NaN = NaN)
        out = torch.zeros_like(q)
        if nd:
            if dec is not None:
                out[:nd] = dec
            else:
                out[:nd] = decode_attention(q[:nd], k_cache, v_cache, meta.block_tables, meta.context_lens,
                                            self.scale, dmask)
        for start, n, ctx, table in meta.prefills:
            out[start:start + n] = prefill_attention(q[start:start + n], k_cache, v_cache, table, ctx + n, ctx,
                                                     self.scale)
        return self.o(out.view(T, self.nh * self.hd))


def gather_kv(cache: torch.Tensor, table: torch.Tensor, length: int) -> torch.Tensor:
    """Contiguous [length, kv_heads, hd] view of one sequence's paged KV."""
    bs = cache.shape[1]
    nblk = -(-length // bs)
    return cache[table[:nblk]].flatten(0, 1)[:length]


def prefill_attention(q, k_cache, v_cache, table, total_len: int, ctx_before: int, scale: float):
    """Causal attention of a chunk of n queries at positions [ctx_before, total_len) over all its KV.

    A lower-right-aligned causal bias (not a boolean mask) and K/V expanded to every query head keep
    SDPA on its flash / memory-efficient kernels; a dense mask forces the math path, which materializes
    the whole score matrix (measured: 862 ms for an 8192-token 1B prefill, against ~30 ms)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.bias import causal_lower_right
    n = q.shape[0]
    k = gather_kv(k_cache, table, total_len).transpose(0, 1)  # [kvh, L, hd]
    v = gather_kv(v_cache, table, total_len).transpose(0, 1)
    rep = q.shape[1] // k.shape[0]
    if rep > 1:
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
    # chunk sizes vary step to step: keep to kernels without per-shape plans (cuDNN builds one per shape)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
        o = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k[None], v[None],
                                           attn_mask=causal_lower_right(n, total_len), scale=scale)
    return o[0].transpose(0, 1)


def decode_mask(block_tables, context_lens, block_size: int) -> torch.Tensor:
    L = block_tables.shape[1] * block_size
    return (torch.arange(L, device=context_lens.device)[None, :] < context_lens[:, None])[:, None, None, :]


def decode_attention(q, k_cache, v_cache, block_tables, context_lens, scale: float, mask=None):
    """One query per sequence over its paged KV: gather every table to [B, max_blocks*bs], mask the tail.
    Static shapes (the table width fixes L), so it can be captured in a CUDA graph."""
    k = k_cache[block_tables].flatten(1, 2).transpose(1, 2)  # [B, kvh, L, hd]
    v = v_cache[block_tables].flatten(1, 2).transpose(1, 2)
    if mask is None:
        mask = decode_mask(block_tables, context_lens, k_cache.shape[1])
    o = F.scaled_dot_product_attention(q[:, :, None, :], k, v, attn_mask=mask, scale=scale,
                                       enable_gqa=q.shape[1] != k.shape[1])
    return o[:, :, 0, :]


class MLP(nn.Module):
    def __init__(self, spec: ModelSpec, tp: int = 1):
        super().__init__()
        self.ff = spec.intermediate_size // tp
        self.gate_up = nn.Linear(spec.hidden_size, 2 * self.ff, bias=False)
        self.down = nn.Linear(self.ff, spec.hidden_size, bias=False)

        self.backend = None  # kernels.backend, set by attach()

    def forward(self, x):
        gu = self.gate_up(x)
        a = self.backend.silu_mul(gu, self.ff) if self.backend is not None else None
        return self.down(a if a is not None else FUSED["silu_mul"](gu, self.ff))


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
        self.lm_head = nn.Linear(spec.hidden_size, self.vocab_shard, bias=False)
        self.register_buffer("inv_freq", rope_inv_freq(spec.hd, spec.rope_theta, spec.rope_scaling), persistent=False)
        self.backend = None  # optional CUDA kernels (kernels.backend), PyTorch path when None

    def rope(self, positions: torch.Tensor, dtype):
        f = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((f, f), dim=-1)
        return emb.cos().to(dtype)[:, None, :], emb.sin().to(dtype)[:, None, :]

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        if self.tp == 1:
            return self.embed(ids)
        from engine.parallel import all_reduce
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
        residual = None
        for layer, (kc, vc) in zip(self.layers, kv_caches):
            if residual is None:
                residual = x
                h = layer.attn_norm(x)
            else:
                h, residual = layer.attn_norm(x, residual)
            x = layer.attn(h, cos, sin, kc, vc, meta, self.backend, dmask)
            if self.tp > 1:  # row-parallel O: partial sums -> one all-reduce
                from engine.parallel import all_reduce
                x = all_reduce(x)
            h, residual = layer.mlp_norm(x, residual)
            x = layer.mlp(h)
            if self.tp > 1:  # row-parallel down projection
                x = all_reduce(x)
        x, _ = self.norm(x, residual)
        logits = self.lm_head(x[logits_idx]).float()
        if self.tp > 1:
            from engine.parallel import gather_vocab
            logits = gather_vocab(logits, self.tp)
        return logits
