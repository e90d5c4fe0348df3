"""The seeds' claims as experiments: continuous vs static batching, paged vs contiguous KV allocation."""
from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from planner.memory import memory_plan
from planner.sim import simulate
from planner.sim.workload import LengthSampler
from planner.sizing import size


def _one_instance(sc, batching: str, rate: float, duration: float):
    s = sc.model_copy(deep=True)
    s.fleet.replicas = 1
    s.fleet.batching = batching
    s.client.timeout_s = s.client.server_timeout_s = None  # measure latency, not give-ups
    s.client.max_retries = 0
    wl = s.workload
    if wl.arrival is not None and wl.arrival.process == "closed_loop":
        wl.arrival = wl.arrival.model_copy(update={"process": "poisson", "rate": rate, "users": None,
                                                   "think_time_s": None})
    else:
        wl.arrival = wl.arrival.model_copy(update={"rate": rate})
    s.sim.duration_s, s.sim.warmup_s = duration, duration * 0.1
    s.sim.drain_limit_s = duration
    _, summ = simulate(s)
    return summ


def batching(sc, duration: float = 600.0, points: int = 9, cv: float | None = None) -> dict:
    """Throughput vs P95 end-to-end latency for one instance under each policy, swept over load, and the
    highest throughput each sustains within several P95 budgets (the seed: continuous gives 2-3x).
    `cv` replaces fixed lengths with lognormal ones of the same means and that coefficient of variation."""
    if sc.workload.tenants:
        raise ValueError("the batching experiment needs a single-class workload")
    if cv is not None:
        sc = sc.model_copy(deep=True)
        wl = sc.workload
        for attr in ("input_tokens", "output_tokens"):
            d = getattr(wl, attr)
            setattr(wl, attr, d.model_copy(update={"dist": "lognormal", "mean": d.expected, "cv": cv,
                                                   "max": min(sc.max_model_len // 2, int(d.expected * 20))}))
    rep = size(sc, with_alternatives=False, bound=False)  # reads the capacity and the given fleet only
    cap = rep.instance.capacity_req_s
    rates = cap * np.linspace(0.1, 1.2, points)
    curves = {}
    for mode in ("continuous", "static"):
        curves[mode] = []
        for r in rates:
            s = _one_instance(sc, mode, float(r), duration)
            curves[mode].append({"offered_req_s": float(r), "throughput_tok_s": s["throughput"]["total_tok_s"],
                                 "output_tok_s": s["throughput"]["output_tok_s"], "p95_e2e_s": s["e2e_s"]["p95"],
                                 "p50_e2e_s": s["e2e_s"]["p50"], "unfinished": s["status"]["unfinished"]})
    target = next((x.target_s for x in sc.slas if x.metric == "e2e"), None) or rep.fleet_given["avg"]["e2e_s"] * 2
    budgets = [target * k for k in (1, 2, 4, 8)] + [float("inf")]
    best = {}
    for mode, pts in curves.items():
        best[mode] = [max([p["throughput_tok_s"] for p in pts if p["p95_e2e_s"] is not None
                           and p["p95_e2e_s"] <= b and p["unfinished"] == 0] or [0.0]) for b in budgets]
    ratio = [c / s if s else None for c, s in zip(best["continuous"], best["static"])]
    return {"scenario": sc.name, "instance": f"{rep.model} on {rep.tp}x {rep.gpu} ({rep.quantization})",
            "max_num_seqs": sc.fleet.max_num_seqs, "duration_s": duration, "curves": curves,
            "p95_budgets_s": budgets, "best_tok_s": best, "ratio_continuous_over_static": ratio,
            "length_cv": cv, "seed_claim": "2-3x"}


def paged(sc, samples: int = 20000) -> dict:
    """How many sequences of the workload's length mix fit in one instance's KV pool: paged (blocks of
    block_size on demand) vs contiguous reservation of max_model_len per sequence (the seed: 7-8x)."""
    mem = memory_plan(sc)
    rng = np.random.default_rng(sc.sim.seed)
    wl = sc.workload
    src = wl if wl.arrival is not None else wl.tenants[0]
    lin = LengthSampler(src.input_tokens, rng).sample(samples)
    lout = LengthSampler(src.output_tokens, rng).sample(samples)
    final = lin + lout  # a sequence's footprint when it finishes
    mid = lin + lout // 2  # its average footprint over its life
    rows = []
    for max_len in sorted({2048, 4096, 8192, sc.max_model_len}):
        if max_len > sc.model_spec().max_position_embeddings:
            continue
        contiguous = int(mem.kv_budget_bytes // (max_len * mem.kv_bytes_per_token_gpu))
        per_request = int(mem.kv_budget_bytes // (float(np.mean(final)) * mem.kv_bytes_per_token_gpu))
        rows.append({"max_model_len": max_len, "contiguous_max_len": contiguous,
                     "contiguous_own_max": per_request,
                     "paged_at_finish": mem.sequences_that_fit(final.tolist()),
                     "paged_on_average": mem.sequences_that_fit(mid.tolist())})
    for r in rows:
        r["ratio_at_finish"] = r["paged_at_finish"] / max(r["contiguous_max_len"], 1)
        r["ratio_on_average"] = r["paged_on_average"] / max(r["contiguous_max_len"], 1)
    bs = sc.fleet.block_size
    waste = float(np.mean((-(-final // bs)) * bs - final) / np.mean(final))
    return {"scenario": sc.name, "kv_blocks": mem.num_blocks, "block_size": bs,
            "kv_gib_per_gpu": mem.kv_budget_bytes / 2**30, "mean_tokens_at_finish": float(np.mean(final)),
            "paging_internal_waste": waste, "rows": rows, "seed_claim": "7-8x"}


def render(name: str, res: dict, con: Console) -> None:
    if name == "batching":
        lengths = "fixed lengths" if res.get("length_cv") is None else f"lognormal lengths, CV {res['length_cv']}"
        con.rule(f"continuous vs static batching, one instance: {res['instance']}, {lengths}")
        t = Table(title="best throughput (tokens/s in+out) with P95 end-to-end within the budget")
        t.add_column("P95 budget")
        for c in ("continuous", "static", "continuous / static"):
            t.add_column(c)
        for b, c, s, r in zip(res["p95_budgets_s"], res["best_tok_s"]["continuous"], res["best_tok_s"]["static"],
                              res["ratio_continuous_over_static"]):
            t.add_row(f"{b:.1f} s" if b != float("inf") else "none (peak)", f"{c:,.0f}", f"{s:,.0f}",
                      f"{r:.2f}x" if r else "-")
        con.print(t)
        t = Table(title="the curves")
        for c in ("offered req/s", "cont. tok/s", "cont. P95", "static tok/s", "static P95"):
            t.add_column(c)
        for a, b in zip(res["curves"]["continuous"], res["curves"]["static"]):
            t.add_row(f"{a['offered_req_s']:.2f}", f"{a['throughput_tok_s']:,.0f}",
                      f"{a['p95_e2e_s']:.2f} s" if a["p95_e2e_s"] else "-", f"{b['throughput_tok_s']:,.0f}",
                      f"{b['p95_e2e_s']:.2f} s" if b["p95_e2e_s"] else "-")
        con.print(t)
        con.print(f"seed claim: continuous batching gives {res['seed_claim']} the throughput of static batching")
    else:
        con.rule(f"paged vs contiguous KV: {res['scenario']}")
        con.print(f"KV pool {res['kv_gib_per_gpu']:.1f} GiB/GPU = {res['kv_blocks']:,} blocks of {res['block_size']}; "
                  f"mean sequence at finish {res['mean_tokens_at_finish']:.0f} tokens; paging wastes "
                  f"{res['paging_internal_waste'] * 100:.1f}% to block rounding")
        t = Table(title="sequences that fit in one instance")
        for c in ("max_model_len", "contiguous (max_model_len each)", "paged, at finish", "paged, on average",
                  "ratio at finish", "ratio on average"):
            t.add_column(c)
        for r in res["rows"]:
            t.add_row(str(r["max_model_len"]), f"{r['contiguous_max_len']:,}", f"{r['paged_at_finish']:,}",
                      f"{r['paged_on_average']:,}", f"{r['ratio_at_finish']:.1f}x", f"{r['ratio_on_average']:.1f}x")
        con.print(t)
        con.print(f"seed claim: paging gives {res['seed_claim']} memory efficiency")
