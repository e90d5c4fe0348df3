"""Simulator speed: simulated seconds and requests per wall-second, with and without fast-forward.

    python bench/sim_speed.py [--duration 3600] [--out bench/results/sim_speed.json]

Runs the seed's 100-A100 scenario for one simulated hour three ways: as stated (10,000 closed-loop users;
the fleet is overloaded, requests time out and retry), as open-loop Poisson at the same offered rate
(10,000/60 req/s -- about 600,000 requests), and that open-loop load on a fleet that can carry it
(H200, FP8, same 50 x TP2). Each with fast-forward on and off; single-threaded Python, one core.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from planner.cli import _load
from planner.sim import simulate


def variant(name: str, duration: float):
    sc = _load("seed-100-a100")
    sc.sim.duration_s, sc.sim.warmup_s = duration, min(300.0, duration / 10)
    if name != "as stated":
        sc.workload.arrival = sc.workload.arrival.model_copy(
            update={"process": "poisson", "rate": 10000 / 60, "users": None, "think_time_s": None})
    if name.startswith("open loop, H200 FP8"):
        sc.fleet.gpu, sc.fleet.quantization, sc.fleet.price_per_gpu_hour = "H200", "fp8", None
    if name == "open loop, H200 FP8, 3 tiers":  # the same load split premium/standard/budget, tier budgets on
        from planner.scenario import Tenant, Tier
        wl = sc.workload
        a = wl.arrival
        wl.tenants = [Tenant(name=n, tier=n, arrival=a.model_copy(update={"rate": a.rate * f}),
                             input_tokens=wl.input_tokens, output_tokens=wl.output_tokens)
                      for n, f in (("premium", 0.2), ("standard", 0.3), ("budget", 0.5))]
        wl.arrival = None
        sc.tiers = [Tier(name="premium", priority=0, sla={"metric": "ttft", "target_s": 0.5}, token_budget_share=0.6),
                    Tier(name="standard", priority=1, sla={"metric": "ttft", "target_s": 2}, token_budget_share=0.9,
                         preemptible=True),
                    Tier(name="budget", priority=2, sla={"metric": "ttft", "target_s": 5}, preemptible=True)]
        sc.fleet.scheduling_policy = "tier_budget"
    return sc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=3600.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--variants", default="as stated,open loop,open loop, H200 FP8,open loop, H200 FP8, 3 tiers")
    a = ap.parse_args()
    rows = []
    print(f"{'variant':30} {'ff':>3} {'requests':>9} {'wall s':>7} {'sim s/wall s':>12} {'req/wall s':>10} "
          f"{'steps':>9} {'ff jumps':>8}", flush=True)
    names = ["as stated", "open loop", "open loop, H200 FP8", "open loop, H200 FP8, 3 tiers"]
    for name in [n for n in names if n in a.variants]:
        for ff in (True, False):
            sc = variant(name, a.duration)
            sc.sim.fast_forward = ff
            t = time.perf_counter()
            cl, s = simulate(sc)
            wall = time.perf_counter() - t
            row = {"variant": name, "fast_forward": ff, "requests": s["requests"], "wall_s": wall,
                   "sim_s_per_wall_s": s["sim_time_s"] / wall, "requests_per_wall_s": s["requests"] / wall,
                   "steps": s["engine"]["steps"], "ff_jumps": s["engine"]["fast_forward_jumps"],
                   "status": s["status"], "p95_e2e_s": s["e2e_s"]["p95"]}
            rows.append(row)
            print(f"{name:30} {'on' if ff else 'off':>3} {row['requests']:9,} {wall:7.1f} "
                  f"{row['sim_s_per_wall_s']:12.1f} {row['requests_per_wall_s']:10,.0f} {row['steps']:9,} "
                  f"{row['ff_jumps']:8,}", flush=True)
        on, off = rows[-2], rows[-1]
        print(f"{'':30} fast-forward speedup: {off['wall_s'] / on['wall_s']:.2f}x", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
