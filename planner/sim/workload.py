"""Workload generation: arrival times and request lengths, all drawn from one seeded RNG.

Open-loop processes are generated up front as numpy arrays (fast, and the same
seed gives the same requests whatever the cluster does). A time-varying rate
profile is applied by time-rescaling a unit-rate process through the
cumulative rate, which is exact for Poisson and keeps the gamma CV locally.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contract.traces import load_trace


class LengthSampler:
    """Draws token counts from a LengthDist; values are integers >= 1 (and <= max when set)."""

    def __init__(self, dist, rng: np.random.Generator):
        self.d, self.rng = dist, rng
        if dist.dist == "empirical":
            col = load_trace(dist.trace).column(dist.column)
            self.pool = np.maximum(col, 1)
            if dist.max is not None:
                self.pool = self.pool[self.pool <= dist.max]

    def sample(self, n: int) -> np.ndarray:
        d, r = self.d, self.rng
        if d.dist == "fixed":
            x = np.full(n, round(d.mean), dtype=np.int64)
        elif d.dist == "uniform":
            x = r.integers(d.low, d.high + 1, size=n)
        elif d.dist == "lognormal":
            s2 = math.log(1 + d.cv ** 2)
            x = np.rint(r.lognormal(math.log(d.mean) - s2 / 2, math.sqrt(s2), size=n)).astype(np.int64)
        elif d.dist == "quantiles":  # inverse CDF of the piecewise-linear table
            pct, val = zip(*d.quantiles)
            x = np.rint(np.interp(r.uniform(0, 100, size=n), pct, val)).astype(np.int64)
        else:
            x = r.choice(self.pool, size=n)
        x = np.maximum(x, 1)
        if d.max is not None and d.dist != "empirical":
            bad = x > d.max
            while bad.any():  # redraw (never clamp: clamping would pile mass at the cap)
                x[bad] = self.sample(int(bad.sum()))
                bad = x > d.max
        return x


def rate_multiplier(profile, t: np.ndarray) -> np.ndarray:
    """Instantaneous rate / mean rate. Diurnal: a sinusoid whose peak/mean is `peak_factor`."""
    if profile.kind == "constant":
        return np.ones_like(t)
    if profile.kind == "step":
        return np.where(t < profile.step_at_s, 1.0, profile.step_factor)
    amp = profile.peak_factor - 1.0
    return 1.0 + amp * np.sin(2 * np.pi * t / profile.period_s - np.pi / 2)  # trough at t=0, peak at period/2


def _cum_rate(profile, t: np.ndarray) -> np.ndarray:
    if profile.kind == "constant":
        return t
    if profile.kind == "step":
        a = profile.step_at_s
        return np.where(t < a, t, a + profile.step_factor * (t - a))
    amp, w = profile.peak_factor - 1.0, 2 * np.pi / profile.period_s
    return t + amp * (np.cos(-np.pi / 2) - np.cos(w * t - np.pi / 2)) / w


def open_loop_arrivals(arrival, profile, duration: float, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Arrival times in [0, duration) of a Poisson or gamma process with a rate profile; with `arrival.requests`,
    the first that many arrivals however long they take (a benchmark's fixed count); offline: all at 0."""
    if arrival.process == "offline":
        return np.zeros(arrival.requests)
    if arrival.requests is not None:  # a fixed count: the horizon is wherever the count ends
        duration = math.inf
    rate = arrival.rate * scale
    if profile.kind == "diurnal" and profile.peak_factor > 2:
        raise ValueError("diurnal peak_factor above 2 would need a negative trough rate")
    horizon = float(_cum_rate(profile, np.array([duration]))[0]) * rate  # expected count
    if arrival.requests is not None:
        horizon = float(arrival.requests)
    n = int(horizon + 10 * math.sqrt(horizon + 1) + 20)
    if arrival.process == "poisson":
        gaps = rng.exponential(1.0, size=n)
    else:
        k = 1.0 / arrival.cv ** 2
        gaps = rng.gamma(k, 1.0 / k, size=n)
    u = np.cumsum(gaps)  # unit-rate "operational time"
    while u[-1] < horizon:
        more = rng.exponential(1.0, size=n) if arrival.process == "poisson" else rng.gamma(k, 1.0 / k, size=n)
        u = np.concatenate([u, u[-1] + np.cumsum(more)])
    u = u[u < horizon] / rate if arrival.requests is None else u[: arrival.requests] / rate
    if profile.kind == "constant":
        return u
    grid = np.linspace(0, duration, 20001)
    return np.interp(u, _cum_rate(profile, grid), grid)


@dataclass
class RequestSpecs:
    """The open-loop (or trace) requests of a run, as columns."""

    arrival: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    prefix_id: np.ndarray | None  # which shared system prompt (or -1)
    session: np.ndarray | None
    hash_ids: list | None = None
    tenant: np.ndarray | None = None  # index into scenario.workload.tenants
    prefix_tokens: np.ndarray | None = None
    notes: tuple[str, ...] = ()  # what a report must say about how the requests were read


def generate(sc, rng: np.random.Generator, scale: float = 1.0) -> RequestSpecs | None:
    """Open-loop or trace requests for the scenario; None for closed-loop (generated while running)."""
    wl = sc.workload
    if wl.tenants:
        return _tenants(sc, rng, scale)
    return _one_class(wl, wl.arrival, wl.input_tokens, wl.output_tokens, wl.shared_prefix, sc.sim.duration_s,
                      rng, scale)


def _tenants(sc, rng, scale) -> RequestSpecs:
    """Each tenant's own stream, merged in time order (ties keep tenant order: deterministic)."""
    wl, parts = sc.workload, []
    for i, t in enumerate(wl.tenants):
        p = _one_class(wl, t.arrival, t.input_tokens, t.output_tokens, t.shared_prefix, sc.sim.duration_s, rng, scale)
        p.tenant = np.full(len(p.arrival), i, dtype=np.int64)
        parts.append(p)
    cat = lambda f: np.concatenate([getattr(p, f) for p in parts])  # noqa: E731
    arr = cat("arrival")
    order = np.argsort(arr, kind="stable")
    pre = np.concatenate([p.prefix_id if p.prefix_id is not None else np.full(len(p.arrival), -1) for p in parts])
    ptok = np.concatenate([p.prefix_tokens for p in parts])
    return RequestSpecs(arr[order], cat("input_tokens")[order], cat("output_tokens")[order], pre[order], None,
                        None, cat("tenant")[order], ptok[order], tuple(n for p in parts for n in p.notes))


def _one_class(wl, a, in_dist, out_dist, shared, dur, rng, scale) -> RequestSpecs:
    hashes = None
    if a.process == "closed_loop":
        return None
    if a.process == "trace":
        t = load_trace(a.trace)
        if t.timestamps is None:
            raise ValueError(f"{a.trace} has no timestamps: use it for lengths (dist: empirical), not arrivals")
        ts = t.timestamps / (a.time_scale * scale)
        keep = ts < dur
        arr, ins, outs = ts[keep], t.input_tokens[keep], t.output_tokens[keep]
        notes = []
        for what, col in (("prompt", ins), ("output", outs)):
            if zeros := int((col == 0).sum()):
                notes.append(f"{a.trace}: {zeros} requests have 0 {what} tokens; each is served as 1 (an engine "
                             f"reads at least one token and samples at least one)")
        ins, outs = np.maximum(ins, 1), np.maximum(outs, 1)
        if t.hash_ids is not None:
            hashes = [h for h, k in zip(t.hash_ids, keep) if k]
    else:
        arr = open_loop_arrivals(a, wl.rate_profile, dur, rng, scale)
        ins = LengthSampler(in_dist, rng).sample(len(arr))
        outs = LengthSampler(out_dist, rng).sample(len(arr))
    n = len(arr)
    prefix = None
    ptok = np.zeros(n, dtype=np.int64)
    if shared is not None and shared.tokens > 0:
        prefix = rng.integers(0, shared.count, size=n)
        ins = ins + shared.tokens
        ptok[:] = shared.tokens
    sess = rng.integers(0, wl.sessions, size=n) if wl.sessions else None
    return RequestSpecs(arr, ins.astype(np.int64), outs.astype(np.int64), prefix, sess, hashes, None, ptok,
                        tuple(notes) if a.process == "trace" else ())
