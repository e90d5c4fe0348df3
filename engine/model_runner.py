"""Packs a scheduled batch into flat tensors, runs the model, samples. Pure-decode batches replay one CUDA
graph each (by batch and block-table width); steps with a prefill replay piecewise graphs around eager
attention (engine/piecewise.py)."""
from __future__ import annotations

import numpy as np
import torch

from contract.profile import DECODE_GRAPH_BATCHES as GRAPH_BATCHES
from engine.model import AttnMeta, Llama, PrefillPack, decode_mask, enable_fusion
from engine.piecewise import PiecewiseGraphs
from engine.sequence import Sequence

# how a planned step runs, and the fixed part of its header (prompt chunks' spans follow, four ints each)
EAGER, PIECEWISE, GRAPH = 0, 1, 2
HEAD = 16
WIDTH_STEP = 16  # block-table widths of decode graphs: 16 blocks, doubling up to the longest context


def width_buckets(max_blocks: int) -> list[int]:
    """Block-table widths decode graphs are captured for. Doubling, so that all of them can be captured at
    start-up (a graph captured mid-run stalls serving: 24 captures of 45-122 ms in a 25 s 8B replay delayed
    the first tokens behind them); the paged kernel reads only each sequence's context, so a wider table costs
    its bytes on the host-to-device copy, not attention time."""
    out, w = [], WIDTH_STEP
    while w < max_blocks:
        out.append(w)
        w *= 2
    out.append(-(-max_blocks // WIDTH_STEP) * WIDTH_STEP)
    return out


class ModelRunner:
    def __init__(self, model: Llama, num_blocks: int, block_size: int, *, cuda_graphs: bool = True,
                 max_graph_batch: int = 256, kv_dtype=None, fuse: bool = False, pad_tokens_to: int | None = None,
                 piecewise_tokens: int | None = None, piecewise_uncaptured: bool = False):
        self.model, self.bs = model, block_size
        p = model.embed.weight
        self.device, self.dtype = p.device, kv_dtype or p.dtype
        a = model.layers[0].attn
        shape = (num_blocks, block_size, a.nkv, a.hd)
        # each layer's K and V caches are the two halves of one tensor, so a prompt's K and V gather together
        self.kv_pairs = [torch.zeros((2,) + shape, dtype=self.dtype, device=self.device) for _ in model.layers]
        self.kv = [(t[0], t[1]) for t in self.kv_pairs]
        self.use_graphs = cuda_graphs and self.device.type == "cuda"
        # eager steps see a new token count almost every time; on the GPU each new GEMM shape costs a
        # one-off setup (measured: prefill steps of a new shape took 97 ms median vs 23 ms for a repeat),
        # so pad the flat batch to a multiple of 64 tokens: a few dozen shapes per run instead of hundreds
        self.pad = pad_tokens_to or (64 if self.device.type == "cuda" else 1)
        if self.device.type == "cuda":
            try:
                torch.cuda.tunable.enable(False)
            except Exception:
                pass
        if self.device.type == "cuda" and fuse:
            enable_fusion()
        self.max_graph_batch = max_graph_batch
        self.graphs: dict = {}
        self.widths: list[int] = []  # set by capture_decode_graphs; until then, multiples of WIDTH_STEP
        self.vocab = model.spec.vocab_size
        # steps with a prefill: piecewise graphs up to this many tokens (captured now, before any timing)
        # (under TP the pieces hold the all-reduces, as the decode graphs do; piecewise_uncaptured runs the same
        # pieces without graphs, on any device: how the CPU tests reach this path)
        self.piecewise = None
        if piecewise_tokens and (self.use_graphs or piecewise_uncaptured):
            self.piecewise = PiecewiseGraphs(model, self.kv, piecewise_tokens, graphs=self.use_graphs,
                                             kv_pairs=self.kv_pairs)
            if self.use_graphs:
                self.piecewise.capture_all()

    @staticmethod
    def kv_bytes_per_block(model: Llama, block_size: int, dtype_bytes: int = 2) -> int:
        a = model.layers[0].attn
        return 2 * len(model.layers) * block_size * a.nkv * a.hd * dtype_bytes

    # ---------------------------------------------------------------- packing
    def _slots(self, seq: Sequence, start: int, n: int) -> list[int]:
        bs, t = self.bs, seq.block_table
        return [t[p // bs] * bs + p % bs for p in range(start, start + n)]

    def _all_slots(self, seq: Sequence, length: int) -> np.ndarray:
        """Cache slots of positions [0, length) of a sequence."""
        bs = self.bs
        nblk = -(-length // bs)
        t = np.asarray(seq.block_table[:nblk], dtype=np.int64) * bs
        return (t[:, None] + np.arange(bs, dtype=np.int64)[None, :]).reshape(-1)[:length]

    def prepare(self, batch: list[tuple[Sequence, int]], pad_to: int | None = None,
                dec_ids: torch.Tensor | None = None):
        """Decodes (one token) first, then prefill chunks -> (ids, positions, meta, sampled rows, samplers) on
        the device. dec_ids: the decode rows' input tokens as a device tensor (a step launched before the host
        knows them)."""
        head, flat, samplers = self.pack(batch, pad_to, ids_known=dec_ids is None)
        ids, pos, meta, rows = self.unpack(head, torch.from_numpy(flat).to(self.device, non_blocking=True))
        if dec_ids is not None:
            ids[:meta.n_decode].copy_(dec_ids)
        return ids, pos, meta, rows, samplers

    def pack(self, batch: list[tuple[Sequence, int]], pad_to: int | None = None, ids_known: bool = True
             ) -> tuple[np.ndarray, np.ndarray, list[Sequence]]:
        """A step's inputs as host arrays: the header (sizes, and each prompt chunk's span) and one flat int64
        array holding everything the device needs -- ids, positions, cache slots, sampled rows, decode lengths and
        block tables, each chunk's key slots and the int32 cumulative lengths -- so the device gets one transfer
        (and, under tensor parallelism, every rank one broadcast). Measured on the H100's host: building lists
        and copying them in eight transfers took 0.4-0.9 ms per mixed step of the 1B model, whose eager steps are
        host-bound."""
        bs = self.bs
        dec = [s for s, n in batch if n == 1]
        pre = [(s, n) for s, n in batch if n > 1]
        nd, C = len(dec), len(pre)
        kv_parts, spans, qn, kn = [], [], 0, 0
        samplers = list(dec)
        rows = list(range(nd))
        for s, n in pre:
            p = s.num_computed
            kv_parts.append(self._all_slots(s, p + n))  # the chunk's own slots are the last n of these
            spans.append((qn, n, kn, p + n))
            qn, kn = qn + n, kn + p + n
            if p + n == s.num_tokens:
                rows.append(nd + qn - 1)
                samplers.append(s)
        real = nd + qn
        # padding rows: token 0 into scratch slot 0, never attended to or sampled
        T = pad_to if pad_to else real + (-real % self.pad)
        if T < real:
            raise ValueError(f"prepare: {real} tokens do not fit a pad_to of {T}")
        W = max(len(s.block_table) for s in dec) if dec else 0
        R, ncu = len(rows), (C + 1 if C else 0)  # cu_q and cu_k: 2(C+1) int32 in C+1 int64 words
        o_pos, o_slot, o_rows = T, 2 * T, 3 * T
        o_lens = o_rows + R
        o_tab = o_lens + nd
        o_kv = o_tab + nd * W
        o_cu = o_kv + kn
        flat = np.zeros(o_cu + ncu, dtype=np.int64)
        if nd:
            pos = np.fromiter((s.num_computed for s in dec), np.int64, nd)
            if ids_known:  # else the decode ids arrive on the device (a step launched ahead)
                flat[:nd] = [s.tokens[s.num_computed] for s in dec]
            flat[o_pos:o_pos + nd] = pos
            flat[o_lens:o_lens + nd] = pos + 1
            tabs = flat[o_tab:o_kv].reshape(nd, W)
            for i, s in enumerate(dec):
                t = s.table_np
                if t is None:
                    t = s.table_np = np.asarray(s.block_table, dtype=np.int64)
                tabs[i, :len(t)] = t
            flat[o_slot:o_slot + nd] = tabs[np.arange(nd), pos // bs] * bs + pos % bs
        r = nd
        for (s, n), kvs, (_, _, ks, L) in zip(pre, kv_parts, spans):
            p = s.num_computed
            flat[r:r + n] = s.tokens[p:p + n]
            flat[o_pos + r:o_pos + r + n] = np.arange(p, p + n)
            flat[o_slot + r:o_slot + r + n] = kvs[p:]
            flat[o_kv + ks:o_kv + ks + L] = kvs
            r += n
        flat[o_rows:o_lens] = rows
        if C:
            cu = flat[o_cu:].view(np.int32)
            cu[1:C + 1] = np.cumsum([n for _, n, _, _ in spans])
            cu[C + 2:2 * C + 2] = np.cumsum([L for *_, L in spans])
        head = np.array([EAGER, T, nd, W, R, C, qn, kn, max((n for _, n, _, _ in spans), default=0),
                         max((L for *_, L in spans), default=0), 0, 0, 0, len(flat), 0, 0]
                        + [x for sp in spans for x in sp], dtype=np.int64)
        return head, flat, samplers

    def unpack(self, head, buf: torch.Tensor):
        """The device tensors of a packed step (views of `buf`) and its attention metadata."""
        _, T, nd, W, R, C, qn, kn, max_q, max_k = (int(x) for x in head[:10])
        o_pos, o_slot, o_rows = T, 2 * T, 3 * T
        o_lens = o_rows + R
        o_tab = o_lens + nd
        o_kv = o_tab + nd * W
        o_cu = o_kv + kn
        pack = None
        if C:
            spans = [tuple(int(v) for v in head[HEAD + 4 * i:HEAD + 4 * i + 4]) for i in range(C)]
            cu = buf[o_cu:].view(torch.int32)
            pack = PrefillPack(buf[o_kv:o_cu], cu[:C + 1], cu[C + 1:2 * C + 2], max_q, max_k, spans, qn)
        meta = AttnMeta(buf[o_slot:o_rows], nd, buf[o_tab:o_kv].view(nd, W) if nd else None,
                        buf[o_lens:o_tab] if nd else None, pack)
        return buf[:T], buf[o_pos:o_slot], meta, buf[o_rows:o_lens]

    # ---------------------------------------------------------------- running
    def plan(self, batch: list[tuple[Sequence, int]], ids_known: bool = True
             ) -> tuple[np.ndarray, np.ndarray, list[Sequence]]:
        """How this runner will run the step -- a decode graph, piecewise graphs, or eager -- and its packed
        inputs: (header, flat, samplers). `execute` runs a plan on any rank."""
        if self.use_graphs and all(n == 1 for _, n in batch) and len(batch) <= self.max_graph_batch:
            seqs = [s for s, _ in batch]
            return (*self._pack_graph(seqs, ids_known), seqs)
        pw = self.piecewise
        T = pw.bucket(sum(n for _, n in batch)) if pw is not None else None
        head, flat, samplers = self.pack(batch, pad_to=T or None, ids_known=ids_known)
        if T:
            head[0] = PIECEWISE
        return head, flat, samplers

    @torch.inference_mode()
    def execute(self, head, buf: torch.Tensor, dec_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [sampled rows, vocab] of a planned step whose flat inputs are on the device in `buf`."""
        kind = int(head[0])
        if kind == GRAPH:
            return self._replay_graph(head, buf, dec_ids)
        ids, pos, meta, rows = self.unpack(head, buf)
        if dec_ids is not None:
            ids[:meta.n_decode].copy_(dec_ids)
        if kind == PIECEWISE:
            dmask = decode_mask(meta.block_tables, meta.context_lens, self.bs) \
                if meta.n_decode and self.model.backend is None else None
            return self.piecewise.run(ids, pos, meta, rows, dmask)
        return self.model(ids, pos, self.kv, meta, rows)

    def forward(self, batch: list[tuple[Sequence, int]], dec_ids: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, list[Sequence]]:
        """Logits [samplers, vocab] for the sequences that sample this step. dec_ids: see prepare."""
        head, flat, samplers = self.plan(batch, ids_known=dec_ids is None)
        return self.execute(head, torch.from_numpy(flat).to(self.device, non_blocking=True), dec_ids), samplers

    def _graph_decode(self, seqs: list[Sequence], dec_ids: torch.Tensor | None = None) -> torch.Tensor:
        head, flat = self._pack_graph(seqs, ids_known=dec_ids is None)
        return self._replay_graph(head, torch.from_numpy(flat).to(self.device, non_blocking=True), dec_ids)

    def _pack_graph(self, seqs: list[Sequence], ids_known: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """A decode step's inputs for the graph of its (batch, table width) bucket: ids, positions, slots,
        lengths and block tables in one host array, copied by one transfer into the graph's static buffer (five
        small copies cost ~15 us of host time each); built with numpy from each sequence's cached table (a Python
        list of B x width entries cost ~0.3 ms per step at batch 64). Padding rows write into scratch block 0 and
        attend to one token."""
        B = len(seqs)
        gb = next(b for b in GRAPH_BATCHES if b >= B)
        width = max(len(s.block_table) for s in seqs)
        width = next((w for w in self.widths if w >= width), None) or -(-width // WIDTH_STEP) * WIDTH_STEP
        bs = self.bs
        flat = np.zeros(4 * gb + gb * width, dtype=np.int64)
        pos = np.fromiter((s.num_computed for s in seqs), np.int64, B)
        if ids_known:
            flat[:B] = [s.tokens[s.num_computed] for s in seqs]
        flat[gb:gb + B] = pos
        flat[3 * gb:4 * gb] = 1
        flat[3 * gb:3 * gb + B] = pos + 1
        tabs = flat[4 * gb:].reshape(gb, width)
        for i, s in enumerate(seqs):
            t = s.table_np
            if t is None:
                t = s.table_np = np.asarray(s.block_table, dtype=np.int64)
            tabs[i, :len(t)] = t
        flat[2 * gb:2 * gb + B] = tabs[np.arange(B), pos // bs] * bs + pos % bs
        head = np.zeros(HEAD, dtype=np.int64)
        head[[0, 10, 11, 12, 13]] = GRAPH, gb, width, B, len(flat)
        return head, flat

    def _replay_graph(self, head, buf: torch.Tensor, dec_ids: torch.Tensor | None = None) -> torch.Tensor:
        gb, width, B = int(head[10]), int(head[11]), int(head[12])
        g = self.graphs.get((gb, width)) or self._capture(gb, width)
        g["static"]["packed"].copy_(buf, non_blocking=True)
        if dec_ids is not None:
            g["static"]["ids"][:B].copy_(dec_ids)
        g["graph"].replay()
        return g["out"][:B]

    def capture_decode_graphs(self, max_batch: int, max_blocks: int) -> int:
        """Capture every decode graph serving can need (batch buckets up to max_batch, widths up to max_blocks)
        now, largest first so the smaller ones reuse its memory pool. Returns how many were captured."""
        if not self.use_graphs:
            return 0
        self.widths = width_buckets(max_blocks)
        n = 0
        top = min(max_batch, self.max_graph_batch)
        for gb in sorted({next(b for b in GRAPH_BATCHES if b >= B) for B in range(1, top + 1)}, reverse=True):
            for w in reversed(self.widths):
                if (gb, w) not in self.graphs:
                    self._capture(gb, w)
                    n += 1
        return n

    def _capture(self, gb: int, width: int):
        dev = self.device
        packed = torch.zeros(4 * gb + gb * width, dtype=torch.long, device=dev)
        packed[3 * gb:4 * gb] = 1  # context lengths of padding rows
        st = {"packed": packed, "ids": packed[:gb], "pos": packed[gb:2 * gb], "slots": packed[2 * gb:3 * gb],
              "lens": packed[3 * gb:4 * gb], "tables": packed[4 * gb:].view(gb, width),
              "rows": torch.arange(gb, device=dev)}
        meta = AttnMeta(st["slots"], gb, st["tables"], st["lens"])
        run = lambda: self.model(st["ids"], st["pos"], self.kv, meta, st["rows"])  # noqa: E731
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                run()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        pool = next(iter(self.graphs.values()))["graph"].pool() if self.graphs else None
        with torch.cuda.graph(graph, pool=pool):
            out = run()
        self.graphs[(gb, width)] = {"graph": graph, "static": st, "out": out}
        return self.graphs[(gb, width)]


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """argmax over the vocabulary, on the device. A vocabulary that splits into 256-wide chunks goes in two
    passes (chunk maxima, then the best chunk): one [B, 128256] argmax is a single long reduction per row
    (26 us at batch 1 on the H100); both passes keep the first index among ties, as argmax does."""
    B, V = logits.shape
    if V % 256 or V < 4096:
        return logits.argmax(-1)
    vals, idx = logits.view(B, V // 256, 256).max(-1)
    chunk = vals.argmax(-1, keepdim=True)
    return (chunk * 256 + idx.gather(1, chunk)).squeeze(1)


def sample(logits: torch.Tensor, seqs: list[Sequence], generators: dict) -> list[int]:
    """Greedy where temperature is 0, else temperature + top-p (nucleus) with a per-request seeded generator."""
    if all(s.params.temperature == 0 for s in seqs):
        return greedy(logits).tolist()
    out = []
    for row, s in zip(logits, seqs):
        if s.params.temperature == 0:
            out.append(int(row.argmax()))
            continue
        probs = torch.softmax(row / s.params.temperature, -1)
        sp, si = probs.sort(descending=True)
        keep = sp.cumsum(-1) - sp < s.params.top_p  # smallest prefix with mass >= top_p
        sp = sp * keep
        g = generators.get(s.rid)
        if g is None:
            g = torch.Generator(device=row.device).manual_seed(s.params.seed if s.params.seed is not None else s.rid)
            generators[s.rid] = g
        out.append(int(si[torch.multinomial(sp / sp.sum(), 1, generator=g)]))
    return out
