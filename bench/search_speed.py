"""Search throughput and what pruning buys, on the seed's cost scenario.

    python bench/search_speed.py [--duration 30] [--workers 2] [--out bench/results/search_speed.json]

Runs `planner search` twice on the same space -- with the analytic lower bound (pruned) and starting every
bisection at one replica (unpruned) -- and prints candidates and simulations per minute, and the speedup.
Both must find the same optimum.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from planner.cli import _load
from planner.search import search


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="seed-optimize-cost")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    sc = _load(a.scenario)
    sc.search.sim_duration_s = a.duration
    rows = {}
    for label, prune in (("pruned", True), ("unpruned", False)):
        t = time.perf_counter()
        res = search(sc, backend="process", workers=a.workers, prune=prune)
        wall = time.perf_counter() - t
        b = res["best"]
        rows[label] = {"wall_s": wall, "candidates": res["fit"], "simulations": res["evaluations"],
                       "candidates_per_min": res["fit"] / wall * 60, "simulations_per_min": res["evaluations"] / wall * 60,
                       "best": b and {**b["candidate"], "replicas": b["replicas"], "gpus": b["gpus"],
                                      "per_hour": b["per_hour"], "per_million_tokens": b["per_million_tokens"],
                                      "e2e_p95": b["e2e_p95"]},
                       "ranked": [{**r["candidate"], "replicas": r["replicas"], "gpus": r["gpus"],
                                   "per_hour": r["per_hour"], "e2e_p95": r["e2e_p95"]} for r in res["ranked"][:10]]}
        print(f"{label:9} {res['fit']} candidates, {res['evaluations']} simulations in {wall:.0f} s = "
              f"{rows[label]['candidates_per_min']:.1f} candidates/min; best: {rows[label]['best']}", flush=True)
    same = rows["pruned"]["best"] == rows["unpruned"]["best"]
    print(f"pruning speedup: {rows['unpruned']['wall_s'] / rows['pruned']['wall_s']:.2f}x wall, "
          f"{rows['unpruned']['simulations'] / rows['pruned']['simulations']:.2f}x simulations; same optimum: {same}")
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
