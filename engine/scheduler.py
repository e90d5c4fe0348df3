"""Continuous batching with the planner replica's knobs and semantics (max_num_seqs,
max_num_batched_tokens, chunked prefill, recompute preemption of the newest running sequence)."""
from __future__ import annotations

from collections import deque

from contract.knobs import WATERMARK, ServingKnobs
from engine.block_manager import BlockManager
from engine.sequence import Sequence


class Scheduler:
    def __init__(self, cfg: ServingKnobs, bm: BlockManager, clock=lambda: 0.0):
        self.cfg, self.bm, self.clock = cfg, bm, clock
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []  # admission order; the newest is preempted first
        self.preemptions = 0

    def add(self, seq: Sequence) -> None:
        if -(-seq.num_tokens // self.bm.block_size) > self.bm.num_blocks - 1:
            seq.status, seq.reason = "failed", "prompt needs more KV blocks than the whole pool"
            return
        self.waiting.append(seq)

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.bm.free_seq(seq)
        seq.num_computed = 0
        seq.status = "waiting"
        seq.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(seq)

    def schedule(self) -> list[tuple[Sequence, int]]:
        """One iteration's batch: (sequence, tokens to feed) pairs, decodes first, then chunks, then admissions."""
        cfg, bm = self.cfg, self.bm
        budget = cfg.max_num_batched_tokens
        batch: list[tuple[Sequence, int]] = []
        preempted = False
        if not cfg.enable_chunked_prefill and self.waiting and len(self.running) < cfg.max_num_seqs:
            batch = self._admit(budget, whole=True)
            if batch:
                return batch
        # running sequences in admission order: decodes take 1 token, unfinished prefills a chunk
        decodes, prefills = [], []
        for s in self.running:
            (decodes if len(s.tokens) - s.num_computed == 1 else prefills).append(s)
        for s in decodes + prefills:
            if s.status != "running":
                continue  # preempted to make room for an earlier one
            u = len(s.tokens) - s.num_computed
            n = 1 if u == 1 else min(u, budget)
            if n <= 0:
                continue
            while not bm.allocate(s, n):
                preempted = True
                victim = self.running[-1]
                self._preempt(victim)
                if victim is s:
                    break
            if s.status == "running":
                batch.append((s, n))
                budget -= n
        if not preempted and cfg.enable_chunked_prefill:
            batch += self._admit(budget, whole=False)
        return batch

    def _admit(self, budget: int, whole: bool) -> list[tuple[Sequence, int]]:
        cfg, bm, out = self.cfg, self.bm, []
        wm = int(WATERMARK * bm.usable)
        while self.waiting and budget > 0 and len(self.running) < cfg.max_num_seqs:
            s = self.waiting[0]
            hit = bm.match_prefix(s)
            n = s.uncomputed if whole else min(s.uncomputed, budget)
            if (whole and n > budget) or bm.blocks_needed(s, n) > bm.available - wm:
                if hit:
                    bm.free_seq(s)
                    s.num_computed = 0
                break
            bm.allocate(s, n)
            self.waiting.popleft()
            s.status = "running"
            s.prefix_hit_tokens += hit
            if s.scheduled is None:
                s.scheduled = self.clock()
            self.running.append(s)
            out.append((s, n))
            budget -= n
        return out

    def finish(self, seq: Sequence, status: str = "completed", reason: str = "") -> None:
        if seq in self.running:
            self.running.remove(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        self.bm.free_seq(seq)
        seq.status, seq.reason = status, reason
