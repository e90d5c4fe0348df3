"""Mean rate and lengths of a workload, without simulating it (for the analytic sizing)."""
from __future__ import annotations

import numpy as np


def _mean_len(dist, seed: int = 0) -> float:
    if dist.expected is not None and dist.dist != "lognormal":
        return float(dist.expected)
    if dist.dist == "lognormal" and dist.max is None:
        return float(dist.mean)
    from planner.sim.workload import LengthSampler
    return float(np.mean(LengthSampler(dist, np.random.default_rng(seed)).sample(20000)))


def mean_lengths(sc) -> tuple[float, float]:
    wl = sc.workload
    if wl.tenants:
        rates = np.array([t.arrival.mean_rate for t in wl.tenants])
        ins = np.array([_mean_len(t.input_tokens) + (t.shared_prefix.tokens if t.shared_prefix else 0)
                        for t in wl.tenants])
        outs = np.array([_mean_len(t.output_tokens) for t in wl.tenants])
        return float((rates * ins).sum() / rates.sum()), float((rates * outs).sum() / rates.sum())
    if wl.arrival.process == "trace":
        from contract.traces import load_trace
        t = load_trace(wl.arrival.trace)
        return float(t.input_tokens.mean()), float(t.output_tokens.mean())
    extra = wl.shared_prefix.tokens if wl.shared_prefix else 0
    return _mean_len(wl.input_tokens) + extra, _mean_len(wl.output_tokens)


def mean_rate(sc) -> float:
    if sc.workload.tenants:
        return float(sum(t.arrival.mean_rate for t in sc.workload.tenants))
    a = sc.workload.arrival
    if a.process == "trace":
        from contract.traces import load_trace
        t = load_trace(a.trace)
        return len(t.timestamps) / max(t.timestamps[-1] - t.timestamps[0], 1e-9) * a.time_scale
    return a.mean_rate
