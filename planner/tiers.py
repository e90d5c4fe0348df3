"""`planner tiers`: the multi-tenant question. For each scheduling policy, the smallest fleet that meets
every tier's SLA at peak; then, on that fleet, what each tier gets at twice the peak with and without
preemption of the lower tiers."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from planner.sim import simulate

POLICIES = ("fcfs", "priority", "tier_budget")


def _run(sc, replicas: int, policy: str, preemption: bool, load: float, duration: float):
    s = sc.model_copy(deep=True)
    s.fleet.replicas, s.fleet.scheduling_policy, s.fleet.tier_preemption = replicas, policy, preemption
    s.autoscaling.enabled = False
    s.sim.duration_s, s.sim.warmup_s = duration, min(s.sim.warmup_s, duration / 5)
    _, summ = simulate(s, load_scale=load)
    return summ


def _meets(summ, sc) -> bool:
    """Every tier's SLA met at its own percentile, and every request of each tier completed."""
    met = {r["tier"]: r["met"] for r in summ["sla_results"] if r["tier"] != "default"}
    return all(met.get(t.name, False) and summ["tiers"][t.name]["completed"] >= summ["tiers"][t.name]["requests"]
               for t in sc.tiers)


def smallest_fleet(sc, policy: str, load: float, duration: float, max_replicas: int = 64) -> tuple[int | None, dict]:
    """Bisection on replicas: SLA attainment only improves with more replicas at a fixed load."""
    lo, hi, best = 1, None, None
    n = max(1, sc.fleet.replicas // 2)
    while True:  # grow until it meets
        summ = _run(sc, n, policy, True, load, duration)
        if _meets(summ, sc):
            hi, best = n, summ
            break
        lo = n + 1
        if n >= max_replicas:
            return None, summ
        n = min(max_replicas, n * 2)
    while lo < hi:
        mid = (lo + hi) // 2
        summ = _run(sc, mid, policy, True, load, duration)
        if _meets(summ, sc):
            hi, best = mid, summ
        else:
            lo = mid + 1
    return hi, best


def answer(sc, duration: float = 600.0) -> dict:
    if not sc.tiers:
        raise ValueError("the scenario defines no tiers")
    peak = sc.workload.rate_profile.peak_factor
    fleets = {}
    for pol in POLICIES:
        n, summ = smallest_fleet(sc, pol, peak, duration)
        fleets[pol] = {"replicas": n, "gpus": n * sc.fleet.tensor_parallel_size if n else None,
                       "per_hour": summ["cost"]["per_hour"] if n else None}
    best = min((p for p in POLICIES if fleets[p]["replicas"]), key=lambda p: fleets[p]["replicas"], default=None)
    overload = {}
    if best:
        n = fleets[best]["replicas"]
        for label, pol, pre in (("tier_budget + preemption", "tier_budget", True),
                                ("tier_budget, no preemption", "tier_budget", False), ("fcfs", "fcfs", False)):
            summ = _run(sc, n, pol, pre, 2 * peak, duration)
            overload[label] = {t: {"attainment": v["attainment"], "p95": v[v["sla"]["metric"]]["p95"],
                                   "metric": v["sla"]["metric"], "target": v["sla"]["target_s"],
                                   "preemptions": v["preemptions"]} for t, v in summ["tiers"].items()}
    return {"scenario": sc.name, "peak_factor": peak, "fleets": fleets, "best_policy": best,
            "overload_2x_peak": overload}


def render(res: dict, con: Console) -> None:
    con.rule(f"planner tiers {res['scenario']}")
    t = Table(title=f"smallest fleet meeting every tier's SLA at peak ({res['peak_factor']:g}x average)")
    for c in ("policy", "replicas", "GPUs", "$/hour"):
        t.add_column(c)
    for pol, f in res["fleets"].items():
        t.add_row(pol, str(f["replicas"] or "none within 64"), str(f["gpus"] or "-"),
                  f"{f['per_hour']:,.2f}" if f["per_hour"] else "-")
    con.print(t)
    if res["overload_2x_peak"]:
        n = res["fleets"][res["best_policy"]]["replicas"]
        t = Table(title=f"each tier at 2x peak on that fleet ({n} replicas): SLA attainment (P95 of its metric)")
        t.add_column("tier")
        cols = list(res["overload_2x_peak"])
        for c in cols:
            t.add_column(c)
        tiers = list(next(iter(res["overload_2x_peak"].values())))
        for tier in tiers:
            cells = []
            for c in cols:
                v = res["overload_2x_peak"][c][tier]
                p95 = "-" if v["p95"] is None else (f"{v['p95'] * 1e3:.0f} ms" if v["p95"] < 1 else f"{v['p95']:.1f} s")
                cells.append(f"{v['attainment'] * 100:.1f}% ({p95})")
            t.add_row(f"{tier} (P95 {next(iter(res['overload_2x_peak'].values()))[tier]['metric']} < "
                      f"{next(iter(res['overload_2x_peak'].values()))[tier]['target']} s)", *cells)
        con.print(t)
