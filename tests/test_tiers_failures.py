"""Tiers under overload, failures without loss, autoscaling on a load step, per-tenant cost."""
import numpy as np
import pytest

from planner.scenario import scenario_from_dict
from planner.sim import simulate
from planner.sim.metrics import columns


def two_tiers(policy="tier_budget", preemption=True, mode="recompute", **fleet):
    return scenario_from_dict({
        "model": "llama-3.1-8b",
        "workload": {"tenants": [
            {"name": "gold", "tier": "premium", "arrival": {"process": "poisson", "rate": 1.0},
             "input_tokens": {"dist": "fixed", "mean": 300}, "output_tokens": {"dist": "fixed", "mean": 50}},
            {"name": "bulk", "tier": "budget", "arrival": {"process": "poisson", "rate": 6.0},
             "input_tokens": {"dist": "fixed", "mean": 300}, "output_tokens": {"dist": "fixed", "mean": 600}}]},
        "tiers": [{"name": "premium", "priority": 0, "sla": {"metric": "ttft", "target_s": 0.5},
                   "token_budget_share": 0.6, "preemptible": False},
                  {"name": "budget", "priority": 2, "sla": {"metric": "ttft", "target_s": 60},
                   "preemptible": True}],
        "fleet": {"gpu": "H100-SXM", "replicas": 1, "max_num_seqs": 16, "max_num_batched_tokens": 2048,
                  "scheduling_policy": policy, "tier_preemption": preemption, "preemption_mode": mode, **fleet},
        "sim": {"duration_s": 600, "warmup_s": 60, "seed": 1}})


def test_under_overload_premium_keeps_its_sla_with_preemption_and_loses_it_without():
    on = simulate(two_tiers(preemption=True))[1]["tiers"]
    off = simulate(two_tiers(preemption=False))[1]["tiers"]
    fcfs = simulate(two_tiers(policy="fcfs", preemption=False))[1]["tiers"]
    assert on["premium"]["attainment"] >= 0.95 and on["premium"]["ttft"]["p95"] < 0.5
    assert off["premium"]["attainment"] < on["premium"]["attainment"] - 0.2
    assert fcfs["premium"]["attainment"] < on["premium"]["attainment"]
    assert on["budget"]["preemptions"] > 0 and on["premium"]["preemptions"] == 0  # budget absorbs the loss
    assert on["budget"]["ttft"]["p95"] > off["budget"]["ttft"]["p95"] * 0.5


def test_swap_preemption_keeps_work_and_charges_the_copy():
    rec = simulate(two_tiers(mode="recompute"))[1]
    swp = simulate(two_tiers(mode="swap"))[1]
    assert swp["tiers"]["premium"]["attainment"] >= 0.95
    # recompute redoes prefill work; swap does not
    assert swp["engine"]["prefill_tokens"] < rec["engine"]["prefill_tokens"]


def failing(mtbf_h=0.1, **kw):
    return scenario_from_dict({
        "model": "llama-3.1-8b", "workload": {"arrival": {"process": "poisson", "rate": 12}},
        "fleet": {"gpu": "H100-SXM", "replicas": 4},
        "failures": {"mtbf_hours_per_gpu": mtbf_h, "health_check_interval_s": 5, "replacement_warmup_s": 60, **kw},
        "sim": {"duration_s": 900, "warmup_s": 60, "seed": 2}})


def test_failures_with_reroutes_lose_no_request():
    cl, s = simulate(failing())
    events = [e["event"] for e in s["events"]]
    assert events.count("failure") >= 3 and "replaced" in events
    assert sum(s["status"].values()) == s["requests"]
    assert s["status"]["unfinished"] == 0
    c = columns(cl.records)
    moved = c["retries"] > 0
    assert moved.any() and (c["status"][moved] == "completed").all()  # retried-then-completed
    assert s["status"]["failed"] == 0


def test_failed_requests_carry_a_reason_when_reroutes_run_out():
    cl, s = simulate(failing(mtbf_h=0.005, max_reroutes=0))
    failed = [r for r in cl.records if r.status == "failed"]
    assert failed and all(r.reason in ("replica failure: reroutes exhausted", "no replica up") for r in failed)
    assert any("replica failure" in r.reason for r in failed)
    assert sum(s["status"].values()) == s["requests"]


def test_autoscaler_adds_replicas_after_a_load_step_thresholds_and_warmup():
    sc = scenario_from_dict({
        "model": "llama-3.1-8b",
        "workload": {"arrival": {"process": "poisson", "rate": 4},
                     "rate_profile": {"kind": "step", "step_at_s": 300, "step_factor": 8}},
        "fleet": {"gpu": "H100-SXM", "replicas": 1, "max_num_seqs": 32},
        "autoscaling": {"enabled": True, "scale_up_threshold": 4, "scale_down_threshold": 0.5,
                        "interval_s": 10, "cooldown_s": 30, "min_replicas": 1, "max_replicas": 6, "warmup_s": 90},
        "sim": {"duration_s": 1200, "warmup_s": 60, "seed": 3}})
    cl, s = simulate(sc)
    ser = cl.series
    t, active, serving = np.array(ser.t), np.array(ser.active_replicas), np.array(ser.live_replicas)
    assert active[t < 300].max() == 1  # nothing before the step
    ups = [e["t"] for e in s["events"] if e["event"] == "scale_up"]
    assert ups and ups[0] >= 300 and len(ups) >= 2
    # a replica added at time u serves only from u + warm-up
    assert serving[(t > ups[0]) & (t < ups[0] + 89)].max() < active[(t > ups[0]) & (t < ups[0] + 89)].max()
    assert serving[t > ups[0] + 100].max() >= 2
    # GPU-hours count what was paid for: more than one replica's, less than the max fleet's
    assert 1200 / 3600 < s["cost"]["gpu_hours"] < 6 * s["sim_time_s"] / 3600


def test_tenant_costs_add_up_and_follow_tokens():
    sc = two_tiers()
    _, s = simulate(sc)
    ten = s["tenants"]
    assert sum(v["usd"] for v in ten.values()) == pytest.approx(s["cost"]["usd"], rel=1e-9)
    ratio = ten["bulk"]["usd"] / ten["gold"]["usd"]
    assert ratio == pytest.approx(ten["bulk"]["tokens"] / ten["gold"]["tokens"], rel=1e-9)
    sc.metering.tenant_cost_by = "gpu_time"
    _, g = simulate(sc)
    assert g["tenants"]["bulk"]["usd"] / g["tenants"]["gold"]["usd"] != pytest.approx(ratio, rel=1e-3)
    assert s["tiers"]["premium"]["per_million_tokens"] > 0


def test_reserved_capacity_is_used_only_by_its_tier():
    sc = two_tiers(policy="priority")
    sc.fleet.replicas = 4
    sc.tiers[0].reserved_share = 0.5  # two replicas dedicated to premium
    cl, s = simulate(sc)
    own = {r.idx for r in cl.router.allowed["premium"]} - {r.idx for r in cl.router.allowed["*"]}
    assert len(own) == 2
    assert not any(r.replica in own for r in cl.records if r.tier == "budget")
    assert any(r.replica in own for r in cl.records if r.tier == "premium")
    assert s["tiers"]["premium"]["attainment"] > 0.95


def spot(n_spot, rate=2.0):
    sc = two_tiers(policy="priority")
    sc.fleet.replicas = 2
    sc.fleet.spot_replicas = n_spot
    sc.fleet.spot_preemptions_per_hour = rate
    sc.failures.replacement_warmup_s = 30
    return sc


def test_spot_replicas_serve_only_the_budget_tier_survive_preemption_and_cost_less():
    cl, s = simulate(spot(2))
    spot_ids = {r.idx for r in cl.spot}
    assert not any(r.replica in spot_ids for r in cl.records if r.tier == "premium")
    assert any(r.replica in spot_ids for r in cl.records if r.tier == "budget")
    assert sum(1 for e in s["events"] if e["event"] == "failure") >= 1  # spot preemptions happened
    assert sum(s["status"].values()) == s["requests"] and s["status"]["unfinished"] == 0
    _, ondemand = simulate(two_tiers(policy="priority", replicas=4))
    assert s["cost"]["usd"] < ondemand["cost"]["usd"]  # same four replicas, two of them at the spot price


def test_search_considers_spot_shares_for_tiered_scenarios():
    from planner.search import candidates
    sc = two_tiers()
    sc.search.spot_shares = [0.0, 0.5]
    sc.search.tensor_parallel_sizes = [1]
    sc.search.quantizations = ["bf16"]
    assert {c.spot_share for c in candidates(sc)} == {0.0, 0.5}
