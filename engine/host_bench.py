"""A fixed piece of the engine's own host work, timed: how fast this machine's CPU runs the serving loop.

Much of an iteration of a small model is Python (scheduling, block tables, packing) and launch calls, and
lent machines differ in CPU speed as much as in GPU. `engine calibrate` records this time in the profile
and every validation run in its meta, so the calibrated cost model can scale its host-side overhead from
the machine that measured the profile to the one being predicted. Pure Python: no GPU, no torch.
"""
from __future__ import annotations

import statistics
import time

from engine.block_manager import BlockManager
from engine.scheduler import Scheduler, SchedulerConfig
from engine.sequence import SamplingParams, Sequence


def _loop(steps: int = 400) -> None:
    bm = BlockManager(20000, 16, True)
    sched = Scheduler(SchedulerConfig(64, 2048, True), bm)
    for i in range(96):
        sched.add(Sequence([(i * 7 + j) % 1000 for j in range(300 + 5 * i)], SamplingParams(max_tokens=200)))
    for _ in range(steps):
        batch = sched.schedule()
        if not batch:
            break
        for s, n in batch:  # what the engine does around the model call: pack, commit, sample, finish
            pos = s.num_computed
            _ = [s.block_table[p // 16] * 16 + p % 16 for p in range(pos, pos + n)]
            s.num_computed += n
            bm.commit(s)
            if s.uncomputed == 0:
                s.append(1)
                if s.done:
                    sched.finish(s)


def host_bench_s(reps: int = 5) -> float:
    """Median seconds of the fixed loop (tens of milliseconds)."""
    _loop(20)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        _loop()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)
