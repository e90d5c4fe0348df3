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

from planner.sim.traces import load_trace


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
    amp = profile.peak_factor - 1.0
    return 1.0 + amp * np.sin(2 * np.pi * t / profile.period_s - np.pi / 2)  # trough at t=0, peak at period/2


def _cum_rate(profile, t: np.ndarray) -> np.ndarray:
    if profile.kind == "constant":
        return t
    amp, w = profile.peak_factor - 1.0, 2 * np.pi / profile.period_s
    return t + amp * (np.cos(-np.pi / 2) - np.cos(w * t - np.pi / 2)) / w


def open_loop_arrivals(arrival, profile, duration: float, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Arrival times in [0, duration) of a Poisson or gamma process with a rate profile."""
    rate = arrival.rate * scale
    if profile.kind == "diurnal" and profile.peak_factor > 2:
        raise ValueError("diurnal peak_factor above 2 would need a negative trough rate")
    horizon = float(_cum_rate(profile, np.array([duration]))[0]) * rate  # expected count
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
    u = u[u < horizon] / rate
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


def generate(sc, rng: np.random.Generator, scale: float = 1.0) -> RequestSpecs | None:
    """Open-loop or trace requests for the scenario; None for closed-loop (generated while running)."""
    wl, dur = sc.workload, sc.sim.duration_s
    a = wl.arrival
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
        ins, outs = np.maximum(ins, 1), np.maximum(outs, 1)
        if t.hash_ids is not None:
            hashes = [h for h, k in zip(t.hash_ids, keep) if k]
    else:
        arr = open_loop_arrivals(a, wl.rate_profile, dur, rng, scale)
        ins = LengthSampler(wl.input_tokens, rng).sample(len(arr))
        outs = LengthSampler(wl.output_tokens, rng).sample(len(arr))
    n = len(arr)
    prefix = None
    if wl.shared_prefix is not None and wl.shared_prefix.tokens > 0:
        prefix = rng.integers(0, wl.shared_prefix.count, size=n)
        ins = ins + wl.shared_prefix.tokens
    sess = rng.integers(0, wl.sessions, size=n) if wl.sessions else None
    return RequestSpecs(arr, ins.astype(np.int64), outs.astype(np.int64), prefix, sess, hashes)
