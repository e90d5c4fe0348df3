"""Everything a report shows, computed from the request records and the sampled time series.

Statistics cover requests that *arrived* in the measurement window
[warm-up, duration); throughput counts tokens of requests completed in it.
"""
from __future__ import annotations

import math

import numpy as np

from contract.records import STATUSES
from planner.memory import WEIGHT_BYTES

PCTS = (50, 95, 99)


def columns(records) -> dict[str, np.ndarray]:
    """Records as numpy columns (NaN where a time does not exist)."""
    def col(f, dtype=float):
        return np.array([f(r) for r in records], dtype=dtype)
    nan = math.nan
    return {
        "rid": col(lambda r: r.rid, np.int64),
        "arrival": col(lambda r: r.arrival),
        "first_token": col(lambda r: r.first_token if r.first_token is not None else nan),
        "finish": col(lambda r: r.finish if r.finish is not None else nan),
        "scheduled": col(lambda r: r.scheduled if r.scheduled is not None else nan),
        "input_tokens": col(lambda r: r.prompt_len, np.int64),
        "output_tokens": col(lambda r: r.output_len, np.int64),
        "status": np.array([r.status for r in records], dtype=object),
        "reason": np.array([r.reason for r in records], dtype=object),
        "tier": np.array([r.tier for r in records], dtype=object),
        "tenant": np.array([r.tenant for r in records], dtype=object),
        "replica": col(lambda r: r.replica, np.int64),
        "preemptions": col(lambda r: r.preemptions, np.int64),
        "retries": col(lambda r: r.retries, np.int64),
        "prefix_hit_tokens": col(lambda r: r.prefix_hit_tokens, np.int64),
    }


def latencies(c: dict) -> dict[str, np.ndarray]:
    done = c["status"] == "completed"
    ttft = c["first_token"] - c["arrival"]
    e2e = c["finish"] - c["arrival"]
    out = c["output_tokens"].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (c["finish"] - c["first_token"]) / (out - 1), np.nan)
    return {"ttft": np.where(done, ttft, np.nan), "tpot": np.where(done, tpot, np.nan),
            "e2e": np.where(done, e2e, np.nan)}


def pct(x: np.ndarray) -> dict:
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return {f"p{p}": None for p in PCTS} | {"mean": None}
    return {f"p{p}": float(np.percentile(x, p)) for p in PCTS} | {"mean": float(x.mean())}


def sla_results(sc, c: dict, lat: dict, inw: np.ndarray) -> list[dict]:
    """Each SLA (scenario-wide, then each tier's) at its own percentile -- any value in (0, 100) -- of its
    metric over the requests it covers that arrived in the window, and whether the target is met."""
    out = []
    for sla in sc.all_slas():
        sel = inw if sla.tier == "default" or not sc.tiers else inw & (c["tier"] == sla.tier)
        x = lat[sla.metric][sel]
        x = x[~np.isnan(x)]
        v = float(np.percentile(x, sla.percentile)) if len(x) else None
        out.append(sla.model_dump() | {"value": v, "met": v is not None and v <= sla.target_s})
    return out


def meets_sla(lat: dict, slas) -> np.ndarray:
    """Per request: completed and within every SLA's target on its metric."""
    ok = ~np.isnan(lat["e2e"])
    for s in slas:
        v = lat[s.metric]
        ok &= np.where(np.isnan(v), s.metric == "tpot", v <= s.target_s)  # 1-token outputs have no TPOT
    return ok


def littles_law(c: dict, w0: float, w1: float) -> dict:
    """Time-average number in system vs arrival rate x mean time in system, over [w0, w1)."""
    arr, fin = c["arrival"], np.where(np.isnan(c["finish"]), w1, c["finish"])
    overlap = np.clip(np.minimum(fin, w1) - np.maximum(arr, w0), 0, None)
    L = overlap.sum() / (w1 - w0)
    inw = (arr >= w0) & (arr < w1)
    lam = inw.sum() / (w1 - w0)
    W = float(np.mean(fin[inw] - arr[inw])) if inw.any() else 0.0
    return {"L": float(L), "lambda": float(lam), "W": W, "lambda_W": float(lam * W)}


def summarize(cluster, slas=None) -> dict:
    sc = cluster.sc
    w0, w1 = sc.sim.warmup_s, sc.sim.duration_s
    if cluster.finite:  # a benchmark's fixed count: every request counts, throughput over the makespan
        w0, w1 = 0.0, max(cluster.stop_time, 1e-9) * (1 + 1e-12)
    c = columns(cluster.records)
    lat = latencies(c)
    inw = (c["arrival"] >= w0) & (c["arrival"] < w1)
    counts = {s: int((c["status"] == s).sum()) for s in STATUSES}
    counts_w = {s: int(((c["status"] == s) & inw).sum()) for s in STATUSES}
    done_in = (c["status"] == "completed") & (c["finish"] >= w0) & (c["finish"] < w1)
    window = w1 - w0
    slas = sc.slas if slas is None else slas  # scenario-wide SLAs; tiers are reported per tier below
    ok = meets_sla(lat, slas)
    reps = cluster.replicas + cluster.spot
    busy = sum(r.busy_time for r in reps)
    span = cluster.stop_time
    f = sc.fleet
    gpu_hours = (cluster.gpu_seconds + cluster.spot_seconds) / 3600  # paid time, warm-ups and spot included
    cost = (cluster.gpu_seconds + cluster.spot_seconds * f.spot_price_multiplier) / 3600 * sc.price_per_gpu_hour
    out_tok = float(c["output_tokens"][done_in].sum())
    in_tok = float(c["input_tokens"][done_in].sum())
    per_hour = cost / (span / 3600) if span else 0.0  # average $/hour over the run
    tok_s = (out_tok + in_tok) / window
    summary = {
        "scenario": sc.name,
        "requests": len(cluster.all),
        "status": counts,
        "status_in_window": counts_w,
        "retried_requests": int((c["retries"] > 0).sum()),
        "preemptions": int(c["preemptions"].sum()),
        "ttft_s": pct(lat["ttft"][inw]),
        "tpot_s": pct(lat["tpot"][inw]),
        "e2e_s": pct(lat["e2e"][inw]),
        "throughput": {"requests_s": float(done_in.sum() / window), "input_tok_s": in_tok / window,
                       "output_tok_s": out_tok / window, "total_tok_s": tok_s},
        "goodput_req_s": float((ok & inw).sum() / window),
        "sla_attainment": float((ok & inw).sum() / max(inw.sum(), 1)),
        "slas": [s.model_dump() for s in slas],
        "replica_busy_fraction": busy / (len(reps) * span) if span else 0.0,
        "prefix_hit_token_fraction": float(c["prefix_hit_tokens"][inw].sum() / max(c["input_tokens"][inw].sum(), 1)),
        "littles_law": littles_law(c, w0, w1),
        "cost": {"gpu_hours": gpu_hours, "usd": cost, "per_hour": per_hour,
                 "per_million_tokens": per_hour / (tok_s * 3600) * 1e6 if tok_s else None,
                 "per_million_output_tokens": per_hour / (out_tok / window * 3600) * 1e6 if out_tok else None},
        "engine": {"steps": sum(r.steps for r in reps), "fast_forward_jumps": sum(r.ff_jumps for r in reps),
                   "decode_tokens": sum(r.decode_tokens for r in reps),
                   "prefill_tokens": sum(r.prefill_tokens for r in reps),
                   "kv_blocks_per_replica": cluster.rcfg.num_blocks},
        "sim_time_s": span,
        "warmup_s": w0,
        "duration_s": w1,
        "makespan_s": cluster.stop_time if cluster.finite else None,
        "cost_model": cluster.cost.description,
    }
    summary["sla_results"] = sla_results(sc, c, lat, inw)
    summary["notes"] = list(cluster.notes) + _rejection_notes(c)
    summary["utilization"] = _utilization(cluster, busy)
    summary["tiers"] = _per_tier(sc, c, lat, inw, window)
    summary["tenants"] = _per_tenant(sc, c, lat, inw, cost, cluster)
    for name, t in summary["tiers"].items():
        toks = sum(v["tokens"] for v in summary["tenants"].values() if v["tier"] == name)
        usd = sum(v["usd"] for v in summary["tenants"].values() if v["tier"] == name)
        t["usd"] = usd
        t["per_million_tokens"] = usd / toks * 1e6 if toks else None
    summary["events"] = [{"t": t, "event": e, "replica": i} for t, e, i in cluster.scale_events]
    return summary


def _rejection_notes(c: dict) -> list[str]:
    """Why requests were rejected, counted by reason (a scenario whose requests cannot fit is a configuration
    problem, not load)."""
    rej = c["status"] == "rejected"
    reasons, counts = np.unique(c["reason"][rej], return_counts=True) if rej.any() else ([], [])
    return [f"{n:,} requests rejected: {r}" for r, n in zip(reasons, counts)]


def _per_tenant(sc, c, lat, inw, usd_total: float, cluster) -> dict:
    """Each tenant's share of the run's cost, by tokens processed or by estimated GPU time."""
    names = sorted(set(c["tenant"]))
    done = c["status"] == "completed"
    tok_in = {n: float(c["input_tokens"][(c["tenant"] == n) & done].sum()) for n in names}
    tok_out = {n: float(c["output_tokens"][(c["tenant"] == n) & done].sum()) for n in names}
    if sc.metering.tenant_cost_by == "gpu_time":  # prefill and decode tokens weighted by their step cost
        cm = cluster.cost
        w_p = cm.time(2048, 1, 0, [(2048, 0)]) / 2048
        w_d = cm.decode_time(64, 64 * 1024) / 64
        weight = {n: tok_in[n] * w_p + tok_out[n] * w_d for n in names}
    else:
        weight = {n: tok_in[n] + tok_out[n] for n in names}
    total = sum(weight.values()) or 1.0
    tiers = {t.name: t.tier for t in sc.workload.tenants}
    out = {}
    for n in names:
        sel = inw & (c["tenant"] == n)
        usd = usd_total * weight[n] / total
        toks = tok_in[n] + tok_out[n]
        out[n] = {"tier": tiers.get(n, "default"), "requests": int(sel.sum()), "tokens": toks, "usd": usd,
                  "per_million_tokens": usd / toks * 1e6 if toks else None,
                  "e2e_p95": pct(lat["e2e"][sel])["p95"], "ttft_p95": pct(lat["ttft"][sel])["p95"],
                  "preemptions": int(c["preemptions"][sel].sum())}
    return out


def _per_tier(sc, c, lat, inw, window) -> dict:
    """Each tier's SLA attainment, percentiles of its SLA metric, preemptions and goodput."""
    out = {}
    for t in sc.tiers:
        sel = inw & (c["tier"] == t.name)
        ok = meets_sla(lat, [t.sla]) & sel
        out[t.name] = {"requests": int(sel.sum()), "sla": t.sla.model_dump(),
                       "attainment": float(ok.sum() / max(sel.sum(), 1)),
                       t.sla.metric: pct(lat[t.sla.metric][sel]),
                       "completed": int(((c["status"] == "completed") & sel).sum()),
                       "preemptions": int(c["preemptions"][sel].sum()),
                       "goodput_req_s": float(ok.sum() / window)}
    return out


def _utilization(cluster, busy: float) -> dict:
    """Model FLOP and bandwidth utilization while busy, from the work the engine did."""
    sc = cluster.sc
    m, g, tp = sc.model_spec(), sc.gpu_spec(), sc.fleet.tensor_parallel_size
    reps = cluster.replicas
    dec = sum(r.decode_tokens for r in reps)
    pre = sum(r.prefill_tokens for r in reps)
    lin = m.num_layers * m.linear_params_per_layer + m.vocab_size * m.hidden_size
    flops = 2.0 * lin * (dec + pre)
    wbytes = lin * WEIGHT_BYTES[sc.fleet.quantization]
    steps = sum(r.steps for r in reps)
    bytes_ = wbytes * steps
    if busy <= 0:
        return {"mfu": 0.0, "mbu": 0.0}
    return {"mfu": flops / (busy * tp * g.bf16_tflops * 1e12),
            "mbu_weights": bytes_ / (busy * tp * g.hbm_bandwidth_gbps * 1e9)}
