"""`planner max-rate`: the highest Poisson request rate one replica sustains while meeting every SLA (MLPerf
Inference's server scenario, and the number a capacity plan divides peak demand by).

Bisection on the rate, each point a simulation of the scenario on one replica at that rate: SLA attainment only
falls as the rate rises, so the largest rate that meets every SLA (and completes every request that arrived in
the window) is bracketed and narrowed to a relative tolerance.
"""
from __future__ import annotations

import copy

from contract.errors import InputError
from planner.search import completed_all, meets_slas
from planner.sim import simulate
from planner.sizing import size


def _at(sc, rate: float) -> dict:
    s = copy.deepcopy(sc)
    s.fleet.replicas = 1
    s.workload.arrival.rate = rate
    _, summ = simulate(s)
    return {"rate": rate, "meets": meets_slas(summ), "completed_all": completed_all(summ),
            "sla": [{k: r[k] for k in ("tier", "metric", "percentile", "target_s", "value", "met")}
                    for r in summ["sla_results"]],
            "throughput_tok_s": summ.get("throughput", {}).get("output_tok_s"),
            "per_million_tokens": summ["cost"]["per_million_tokens"]}


def max_rate(sc, rel_tol: float = 0.02, progress=None) -> dict:
    if not sc.slas and not sc.tiers:
        raise InputError([("slas", "max-rate needs at least one SLA (the rate is the highest that meets them)")])
    if sc.workload.arrival.process not in ("poisson", "gamma") or sc.workload.tenants:
        raise InputError([("workload.arrival.process", "max-rate varies an open-loop rate: use poisson or gamma "
                           "(one traffic class)")])
    if not 0 < rel_tol < 1:
        raise InputError([("--tol", f"{rel_tol} is not a relative tolerance in (0, 1)")])
    one = copy.deepcopy(sc)
    one.fleet.replicas = 1
    cap = size(one, with_alternatives=False, bound=False).instance.capacity_req_s
    evals, lo, hi = [], None, None
    r = cap
    while hi is None or lo is None:  # bracket: the analytic capacity, then halve or double
        e = _at(sc, r)
        evals.append(e)
        if progress:
            progress(len(evals), r, e["meets"])
        if e["meets"]:
            lo = e
            r *= 2
        else:
            hi = e
            r /= 2
        if len(evals) > 40 or r < 1e-6:
            break
    if lo is None:
        return {"max_rate_req_s": 0.0, "analytic_capacity_req_s": cap, "evaluations": evals, "at_max": None,
                "note": "no rate tried meets the SLAs: they are out of reach for one replica"}
    while hi is not None and hi["rate"] / lo["rate"] > 1 + rel_tol:
        mid = (lo["rate"] * hi["rate"]) ** 0.5
        e = _at(sc, mid)
        evals.append(e)
        if progress:
            progress(len(evals), mid, e["meets"])
        lo, hi = (e, hi) if e["meets"] else (lo, e)
    return {"max_rate_req_s": lo["rate"], "analytic_capacity_req_s": cap, "tolerance": rel_tol,
            "gpus_per_replica": sc.fleet.tensor_parallel_size,
            "per_gpu_req_s": lo["rate"] / sc.fleet.tensor_parallel_size, "at_max": lo,
            "first_miss": hi, "evaluations": evals}
