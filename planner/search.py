"""`planner search`: the cheapest fleet that meets every SLA at peak load.

Candidates are GPU x TP x quantization x max_num_seqs x prefix caching from the scenario's `search`
section. Pruning, in order: the model must fit (memory plan); the analytic capacity bound gives each
candidate's smallest plausible replica count, from which the search starts (discounted by `bound_slack`, so
an optimistic analytic estimate cannot skip the true optimum); then the smallest replica count meeting the
SLAs is found by simulation with bisection (SLA attainment only improves with replicas at a fixed load).
Candidates are independent simulations: a local process pool by default, Ray with `backend="ray"`.
Every evaluation is a pure function of (scenario, candidate, replicas), so every backend gives the same
answer.
"""
from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict

from planner.sim import simulate
from planner.sizing import size
from planner.space import Candidate, candidates, configure, fits


def lower_bound(sc, c: Candidate, slack: float) -> tuple[int, list[str]]:
    """Replicas below which peak demand exceeds the analytic capacity (discounted by `slack`), and what
    binds for this candidate according to the analytic model."""
    rep = size(configure(sc, c), with_alternatives=False, bound=False)
    peak = rep.demand["peak_req_s"]
    return max(1, math.floor(peak / (rep.instance.capacity_req_s / slack))), rep.binding


def completed_all(summ: dict) -> bool:
    """Every request that arrived in the simulated window completed."""
    return summ["status_in_window"]["completed"] == sum(summ["status_in_window"].values())


def meets_slas(summ: dict) -> bool:
    """The bar `search`, `max-rate` and `tiers` hold a simulation to: every request that arrived in the window
    completed, and every SLA is met."""
    return completed_all(summ) and all(r["met"] for r in summ["sla_results"])


def evaluate(sc, c: Candidate, replicas: int) -> dict:
    """Simulate the candidate with `replicas` at peak load: does it meet every SLA?"""
    s = configure(sc, c, replicas)
    s.sim.duration_s = sc.search.sim_duration_s
    s.sim.warmup_s = min(s.sim.warmup_s, s.sim.duration_s / 5)
    try:
        _, summ = simulate(s, load_scale=sc.workload.rate_profile.peak_factor)
    except ValueError as e:  # e.g. too few replicas to honour the tiers' reservations
        return {"meets": False, "reason": str(e), "per_hour": None, "per_million_tokens": None, "e2e_p95": None,
                "sla_values": {}}
    p95 = {f"{r['tier']}:{r['metric']}": r["value"] for r in summ["sla_results"]}
    return {"meets": meets_slas(summ), "per_hour": summ["cost"]["per_hour"],
            "per_million_tokens": summ["cost"]["per_million_tokens"],
            "e2e_p95": summ["e2e_s"]["p95"], "sla_values": p95}


def smallest(sc, c: Candidate, lo: int, hi_cap: int) -> dict:
    """Bisection for the smallest replica count meeting the SLAs, starting from the analytic bound."""
    evals = 0
    n, hi, best = lo, None, None
    while True:  # double until it meets
        r = evaluate(sc, c, n)
        evals += 1
        if r["meets"]:
            hi, best = n, r
            break
        if n >= hi_cap:
            return {"candidate": asdict(c), "replicas": None, "evaluations": evals}
        lo, n = n + 1, min(hi_cap, n * 2)
    while lo < hi:
        mid = (lo + hi) // 2
        r = evaluate(sc, c, mid)
        evals += 1
        if r["meets"]:
            hi, best = mid, r
        else:
            lo = mid + 1
    return {"candidate": asdict(c), "replicas": hi, "gpus": hi * c.tp, "evaluations": evals, **best}


def _job(args):
    sc, c, lo, cap, binding = args
    return {**smallest(sc, c, lo, cap), "binding": binding}


def search(sc, backend: str = "process", workers: int | None = None, address: str | None = None,
           prune: bool = True, bound_slack: float = 1.5, progress=None) -> dict:
    cands = candidates(sc)
    fit = [c for c in cands if fits(sc, c)]
    jobs = []
    for c in fit:
        lo, binding = lower_bound(sc, c, bound_slack)
        jobs.append((sc, c, lo if prune else 1, sc.search.max_replicas, binding))
    if backend == "ray":
        import ray
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=workers if address is None else None, include_dashboard=False,
                     log_to_driver=False, ignore_reinit_error=True)
        remote = ray.remote(_job)
        results = ray.get([remote.remote(j) for j in jobs])
    elif backend == "process" and (workers or 2) > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers or 2) as ex:
            results = []
            for r in ex.map(_job, jobs):
                results.append(r)
                if progress:
                    progress(len(results), len(jobs))
    elif backend in ("process", "serial"):
        results = []
        for j in jobs:
            results.append(_job(j))
            if progress:
                progress(len(results), len(jobs))
    else:
        raise ValueError(f"backend '{backend}': choose process, serial or ray")
    feasible = sorted([r for r in results if r["replicas"]], key=lambda r: (r["per_hour"], r["gpus"]))
    # Pareto frontier of $/hour vs P95 end-to-end: nothing both cheaper and faster
    frontier, best_p95 = [], math.inf
    for r in feasible:
        if r["e2e_p95"] is not None and r["e2e_p95"] < best_p95:
            frontier.append(r)
            best_p95 = r["e2e_p95"]
    return {"scenario": sc.name, "candidates": len(cands), "fit": len(fit),
            "evaluations": sum(r["evaluations"] for r in results), "results": results, "ranked": feasible,
            "pareto": frontier, "best": feasible[0] if feasible else None}


def plot_pareto(res: dict, path) -> None:
    """Cost vs P95 end-to-end for every feasible fleet, the Pareto frontier drawn through."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    pts = res["ranked"]
    ax.scatter([r["e2e_p95"] for r in pts], [r["per_hour"] for r in pts], s=18, alpha=0.6, label="feasible fleets")
    fr = res["pareto"]
    ax.plot([r["e2e_p95"] for r in fr], [r["per_hour"] for r in fr], "r-o", label="Pareto frontier")
    for r in fr:
        c = r["candidate"]
        ax.annotate(f"{r['replicas']}x {c['gpu']} TP{c['tp']} {c['quantization']}", (r["e2e_p95"], r["per_hour"]),
                    fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("P95 end-to-end at peak (s)")
    ax.set_ylabel("$ / hour")
    ax.set_title(f"{res['scenario']}: cost vs latency")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
