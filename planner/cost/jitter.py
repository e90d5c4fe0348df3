"""Step-time jitter drawn from the engine's own measured iterations.

A deterministic cost model gives every identical batch the same time; the real engine does not -- a few
iterations in a hundred run 1.5-5x their typical time (host stalls while issuing an eager step, measured
with the step log's issue and GPU times). Means are what throughput adds up, but queueing delay grows with
the variance of service times too (Pollaczek-Khinchine), so tails of TTFT come out short without them.
This wrapper multiplies each simulated step by a ratio drawn from the calibration profile's serving
iterations (measured / composed, per kind, scaled to mean 1: the mean step time is unchanged).

Fast-forward sums runs of decode steps in closed form, which a random per-step factor breaks, so the
cluster turns it off while jitter is on (and the report says so).
"""
from __future__ import annotations

import numpy as np

from planner.cost.base import StepCostModel


class JitteredCostModel(StepCostModel):
    def __init__(self, base: StepCostModel, ratios: dict[str, np.ndarray], rng: np.random.Generator):
        for kind in ("decode", "prefill"):
            r = np.asarray(ratios.get(kind, ()), float)
            if len(r) < 20 or not np.all(r > 0):
                raise ValueError(f"step jitter: need at least 20 positive measured ratios for {kind} steps, "
                                 f"got {len(r)}")
        self.base, self.rng = base, rng
        self.ratios = {k: np.asarray(v, float) / np.mean(v) for k, v in ratios.items()}
        self.kind = base.kind
        d, p = self.ratios["decode"], self.ratios["prefill"]
        self.description = (f"{base.description}; step jitter from {len(d)} decode / {len(p)} prefill measured "
                            f"iterations (P99 x{np.percentile(d, 99):.2f} / x{np.percentile(p, 99):.2f}), "
                            f"fast-forward off")

    def __getattr__(self, name):  # everything else (memory, accounting, flags) is the base model's
        if name == "base":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)

    def _draw(self, kind: str) -> float:
        r = self.ratios[kind]
        return float(r[self.rng.integers(len(r))])

    def time(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()):
        v = self.base.time(num_tokens, num_sampled, decode_ctx_sum, prefill)
        return v * self._draw("prefill" if prefill else "decode") if v else v

    def decode_time(self, batch_size, ctx_sum):
        return self.base.decode_time(batch_size, ctx_sum) * self._draw("decode")

    def decode_run_time(self, batch_size, ctx_sum, steps):
        raise RuntimeError("decode_run_time is fast-forward's closed form; step jitter runs step by step")

    def decode_steps_within(self, batch_size, ctx_sum, max_steps, elapsed):
        raise RuntimeError("decode_steps_within is fast-forward's; step jitter runs step by step")
