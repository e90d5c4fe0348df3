"""A fixed pure-Python workload timed on the host: how fast this machine's CPU runs the engine's per-step
Python (scheduling, block bookkeeping, sampling bookkeeping), recorded with every calibration and replay.

The lent machines' hosts differ: the H200 machines' scheduled a decode step up to 33% slower than the H100
machines' (bench/results/host_gap.md), and a profile's fitted overheads carry the calibration host's speed.
With this figure beside each, a later model can scale the host share instead of guessing.
"""
from __future__ import annotations

import statistics
import time


class _Seq:
    __slots__ = ("id", "tokens", "num_computed", "blocks", "status")

    def __init__(self, i: int):
        self.id, self.tokens, self.num_computed, self.blocks, self.status = i, [1] * 64, 63, [i], "running"


def _workload(n_seqs: int = 64, steps: int = 200) -> int:
    """One decode step's kind of Python, `steps` times over `n_seqs` sequences: attribute reads, list appends,
    dict updates, a sort. Returns a checksum so that nothing is optimised away."""
    seqs = [_Seq(i) for i in range(n_seqs)]
    table: dict[int, int] = {}
    check = 0
    for step in range(steps):
        batch = []
        for s in seqs:
            if s.status == "running" and len(s.tokens) - s.num_computed == 1:
                batch.append((s, 1))
        for s, n in batch:
            s.num_computed += n
            s.tokens.append(step)
            if len(s.tokens) % 16 == 0:
                s.blocks.append(len(table))
                table[len(table)] = s.id
        seqs.sort(key=lambda s: (s.num_computed, s.id))
        check += len(batch) + len(table)
    return check


def host_benchmark(repeats: int = 7) -> float:
    """Median seconds of the fixed workload over `repeats` runs (after one warm-up)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    _workload()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _workload()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
