"""Mean rate and lengths of a workload, without simulating it (for the analytic sizing)."""
from __future__ import annotations

import numpy as np

from contract.traces import load_trace
from planner.sim.workload import LengthSampler


def _mean_len(dist, seed: int = 0) -> float:
    if dist.expected is not None and dist.dist != "lognormal":
        return float(dist.expected)
    if dist.dist == "lognormal" and dist.max is None:
        return float(dist.mean)
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
        t = load_trace(wl.arrival.trace)
        return float(t.input_tokens.mean()), float(t.output_tokens.mean())
    extra = wl.shared_prefix.tokens if wl.shared_prefix else 0
    return _mean_len(wl.input_tokens) + extra, _mean_len(wl.output_tokens)


def mean_rate(sc) -> float:
    if sc.workload.tenants:
        return float(sum(t.arrival.mean_rate for t in sc.workload.tenants))
    a = sc.workload.arrival
    if a.process == "trace":
        t = load_trace(a.trace)
        return len(t.timestamps) / max(t.timestamps[-1] - t.timestamps[0], 1e-9) * a.time_scale
    return a.mean_rate


def _length_pairs(sc, n: int = 20000, seed: int = 0) -> np.ndarray:
    """Prompt + output lengths of `n` requests drawn as the simulator draws them (tenants by their rates)."""
    rng = np.random.default_rng(seed)
    wl = sc.workload
    if wl.tenants:
        rates = np.array([t.arrival.mean_rate or 1.0 for t in wl.tenants])
        counts = np.maximum(1, np.round(n * rates / rates.sum()).astype(int))
        return np.concatenate([LengthSampler(t.input_tokens, rng).sample(k)
                               + LengthSampler(t.output_tokens, rng).sample(k)
                               + (t.shared_prefix.tokens if t.shared_prefix else 0)
                               for t, k in zip(wl.tenants, counts)])
    if wl.arrival.process == "trace":
        t = load_trace(wl.arrival.trace)
        return np.maximum(t.input_tokens, 1) + np.maximum(t.output_tokens, 1)
    extra = wl.shared_prefix.tokens if wl.shared_prefix else 0
    return LengthSampler(wl.input_tokens, rng).sample(n) + LengthSampler(wl.output_tokens, rng).sample(n) + extra


def share_too_long(sc) -> float:
    """The share of the workload's requests whose prompt + output exceeds max_model_len: the engine rejects
    them whatever the load."""
    return float(np.mean(_length_pairs(sc) > sc.max_model_len))
