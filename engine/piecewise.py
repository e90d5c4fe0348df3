"""Piecewise CUDA graphs for steps with a prefill: everything but attention, replayed per token bucket.

A step that holds a prompt chunk cannot be one CUDA graph (its attention depends on how many chunks,
how long, over what context), but everything else in the model is token-wise: embedding, norms, GEMMs,
RoPE and the KV-cache write, the MLP. So each layer's work is cut at attention into graph pieces
captured once per token count bucket -- [embed, layer 0 up to attention], [layer i-1 after attention,
layer i up to attention], ..., [last layer after attention, final norm] -- and attention runs eagerly
between them, reading q from and writing its output to static buffers. Launching L + 1 graphs instead of
~15 kernels per layer is what takes the host off the critical path of these steps (vLLM V1 does the same).
Measured on the H100 before this (bench/profile_step.py): an 8B step with 600 prompt tokens took 31 ms of
wall time for 17 ms of GPU work, and 70 ms with the prompt split in four chunks.

Rows past the step's real tokens are padding (token 0 at position 0, K/V into scratch slot 0), as in the
eager path. Static buffers are sized for the largest bucket and every bucket uses a prefix of them;
all pieces share one memory pool, captured largest first. Under tensor parallelism the pieces hold the
vocabulary-parallel embedding's and the row-parallel projections' all-reduces (NCCL captured in the graphs, as in
the decode graphs): every rank captures the same pieces in the same order at start-up.
"""
from __future__ import annotations

import numpy as np
import torch

from contract.profile import token_buckets
from engine.model import AttnMeta, Llama, norm_linear, prefill_launcher
from engine.parallel import all_reduce, gather_vocab


class PiecewiseGraphs:
    def __init__(self, model: Llama, kv: list, max_tokens: int, graphs: bool = True, kv_pairs: list | None = None):
        """graphs=False runs the same pieces without capturing them (on any device: the CPU tests' check
        that the pieces compose to the whole model). kv_pairs: each layer's K and V caches as one
        [2, num_blocks, block_size, kv_heads, hd] tensor (kv holds its two halves), which lets attention
        gather a prompt's K and V in one call."""
        self.model, self.kv = model, kv
        self.kv_flat = None
        if kv_pairs is not None:
            self.kv_flat = [t.view(2, -1, t.shape[-2], t.shape[-1]) for t in kv_pairs]
            self.kv_ptrs = [(np.uint64(k.data_ptr()), np.uint64(v.data_ptr())) for k, v in kv]
        self.buckets = token_buckets(max_tokens)
        Tm = self.buckets[-1]
        p = model.embed.weight
        dev, dt = p.device, p.dtype
        a = model.layers[0].attn
        H = model.spec.hidden_size

        def z(*shape, dtype=dt):
            return torch.zeros(*shape, dtype=dtype, device=dev)
        self.st = {"ids": z(Tm, dtype=torch.long), "pos": z(Tm, dtype=torch.long), "slots": z(Tm, dtype=torch.long),
                   "cos": z(Tm, 1, a.hd), "sin": z(Tm, 1, a.hd), "q": z(Tm, a.nh, a.hd), "res": z(Tm, H),
                   "attn": z(Tm, a.nh, a.hd), "hidden": z(Tm, H)}
        self.graphs: dict[int, list] = {}  # bucket -> the pieces as callables (graph replays)
        self.pool = None
        self.use_graphs = graphs
        self.runs = 0
        self.planned_runs = 0  # steps whose attention was set up once for all layers (_attention)

    def bucket(self, tokens: int) -> int | None:
        return next((b for b in self.buckets if b >= tokens), None)

    # ---------------------------------------------------------------- pieces
    def _pieces(self, T: int) -> list:
        m, L = self.model, len(self.model.layers)
        v = {k: t[:T] for k, t in self.st.items()}

        def pre(i, x, res):
            layer = m.layers[i]
            qkv, res = norm_linear(layer.attn_norm, layer.attn.qkv, x, res, m.backend)
            kc, vc = self.kv[i]
            v["q"].copy_(layer.attn.rope_write(qkv, v["cos"], v["sin"], kc, vc, v["slots"], m.backend))
            v["res"].copy_(res)

        def post(i):
            layer = m.layers[i]
            x = layer.attn.o(v["attn"].view(T, -1))
            if m.tp > 1:
                x = all_reduce(x)
            gu, res = norm_linear(layer.mlp_norm, layer.mlp.gate_up, x, v["res"], m.backend)
            x = layer.mlp.down(layer.mlp.activation(gu))
            return (all_reduce(x) if m.tp > 1 else x), res

        def first():
            x = m._embed(v["ids"])
            cos, sin = m.rope(v["pos"], x.dtype)
            v["cos"].copy_(cos)
            v["sin"].copy_(sin)
            pre(0, x, None)

        def middle(i):
            def f():
                x, res = post(i - 1)
                pre(i, x, res)
            return f

        def last():
            x, res = post(L - 1)
            v["hidden"].copy_(m.norm(x, res)[0])

        return [first] + [middle(i) for i in range(1, L)] + [last]

    def capture_all(self) -> None:
        for T in sorted(self.buckets, reverse=True):  # largest first: smaller buckets reuse its pool blocks
            self.capture(T)

    @torch.inference_mode()
    def capture(self, T: int) -> None:
        fns = self._pieces(T)
        for k in ("ids", "pos", "slots"):  # warm-up and capture write K/V only into scratch slot 0
            self.st[k].zero_()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for f in fns:
                f()
        torch.cuda.current_stream().wait_stream(s)
        graphs = []
        for f in fns:
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=self.pool):
                f()
            if self.pool is None:
                self.pool = g.pool()
            graphs.append(g.replay)
        self.graphs[T] = graphs  # callables: each replays one piece

    # ---------------------------------------------------------------- running
    @torch.inference_mode()
    def run(self, ids: torch.Tensor, pos: torch.Tensor, meta: AttnMeta, rows: torch.Tensor,
            dmask=None) -> torch.Tensor:
        """ids / pos / meta.slot_mapping already padded to a bucket: -> logits [rows, vocab] (float32)."""
        T = ids.shape[0]
        graphs = self.graphs.get(T)
        if graphs is None:
            if self.use_graphs:
                self.capture(T)
            else:
                self.graphs[T] = self._pieces(T)
            graphs = self.graphs[T]
        st, m = self.st, self.model
        self.runs += 1
        st["ids"][:T].copy_(ids)
        st["pos"][:T].copy_(pos)
        st["slots"][:T].copy_(meta.slot_mapping)
        q, out = st["q"][:T], st["attn"][:T]
        attend = self._attention(meta, q, out)
        if attend is not None:
            self.planned_runs += 1
            for i in range(len(m.layers)):
                graphs[i]()
                attend(i)
        else:
            for i, layer in enumerate(m.layers):
                graphs[i]()
                kc, vc = self.kv[i]
                layer.attn.attend(q, kc, vc, meta, m.backend, dmask, out=out)
        graphs[-1]()
        logits = m.lm_head(st["hidden"][:T][rows]).float()
        return gather_vocab(logits, m.tp) if m.tp > 1 else logits

    def _attention(self, meta: AttnMeta, q: torch.Tensor, out: torch.Tensor):
        """This step's attention, set up once for every layer (-> attend(layer index)), or None where the
        general per-layer path must run (no kernels, no flash, caches not paired). Between graph pieces,
        attention's own host time is all that runs eagerly; in a 1B mixed step on the H100's host it was
        the step's critical path (bench/host_breakdown.py)."""
        m = self.model
        if m.backend is None or self.kv_flat is None or not q.is_cuda:
            return None
        a, nd, pre = m.layers[0].attn, meta.n_decode, meta.prefill
        dec = fill = None
        if nd:
            dec = m.backend.decode_launcher(q[:nd], self.kv[0][0], meta.block_tables, meta.context_lens, a.scale,
                                            out[:nd])
            if dec is None:
                return None
        if pre is not None:
            fill = prefill_launcher(q[nd:nd + pre.tokens], pre, a.scale, out[nd:nd + pre.tokens], a.nkv)
            if fill is None:
                return None
        ptrs, flat = self.kv_ptrs, self.kv_flat
        if dec is not None and fill is not None:
            def attend(i):
                dec(*ptrs[i])
                fill(flat[i])
        elif dec is not None:
            def attend(i):
                dec(*ptrs[i])
        else:
            def attend(i):
                fill(flat[i])
        return attend
