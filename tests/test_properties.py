"""Property-based tests over the scenario schema (hypothesis): valid scenarios are sized and simulated without an
exception, every request ends accounted for exactly once, and the analytic capacity is not contradicted by a
simulation at half of it; invalid ones exit 2 naming the field, without a traceback."""
from __future__ import annotations

import json
import math

import pytest

hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from contract.errors import InputError  # noqa: E402
from planner.cli import app  # noqa: E402
from planner.scenario import scenario_from_dict  # noqa: E402
from planner.sim import simulate  # noqa: E402
from planner.sizing import size  # noqa: E402

STATUSES = {"completed", "rejected", "timed_out", "failed", "unfinished"}
SETTINGS = dict(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def scenarios(draw):
    mns = draw(st.sampled_from([8, 32, 128, 256]))
    doc = {
        "model": draw(st.sampled_from(["llama-3.2-1b", "llama-3.1-8b"])),
        "stack": draw(st.sampled_from(["vllm", "sglang", "trtllm", "this-engine"])),
        "cost_model": {"kind": draw(st.sampled_from(["stack", "roofline"]))},
        "workload": {"arrival": {"process": draw(st.sampled_from(["poisson", "gamma"])),
                                 "rate": draw(st.floats(0.5, 20))},
                     "input_tokens": {"dist": "uniform", "low": draw(st.integers(1, 200)),
                                      "high": draw(st.integers(200, 1500))},
                     "output_tokens": {"dist": draw(st.sampled_from(["fixed", "lognormal"])),
                                       "mean": draw(st.integers(1, 300))}},
        "fleet": {"gpu": draw(st.sampled_from(["H100-SXM", "H200", "A100-80GB"])),
                  "replicas": draw(st.integers(1, 3)), "max_num_seqs": mns,
                  "max_num_batched_tokens": draw(st.sampled_from([2048, 4096, 8192])),
                  "enable_chunked_prefill": draw(st.booleans()), "enable_prefix_caching": draw(st.booleans()),
                  "block_size": draw(st.sampled_from([8, 16, 32])), "max_model_len": 8192,
                  "quantization": draw(st.sampled_from(["bf16", "fp8", "int8"])),
                  "kv_admission": draw(st.sampled_from(["on_demand", "reserve_full"])),
                  "preemption_mode": draw(st.sampled_from(["recompute", "swap"]))},
        "router": {"policy": draw(st.sampled_from(["round_robin", "least_outstanding_tokens"]))},
        "slas": [{"metric": draw(st.sampled_from(["ttft", "tpot", "e2e"])),
                  "percentile": draw(st.sampled_from([50, 90, 95, 99, 99.9])), "target_s": 5.0}],
        "sim": {"duration_s": 15, "warmup_s": 2, "seed": draw(st.integers(0, 2**31))},
    }
    if doc["fleet"]["enable_chunked_prefill"] is False:
        doc["fleet"]["max_num_batched_tokens"] = 8192
    if draw(st.booleans()):
        doc["failures"] = {"mtbf_hours_per_gpu": draw(st.floats(0.01, 1.0)), "replacement_warmup_s": 2.0}
    if doc["workload"]["arrival"]["process"] == "gamma":
        doc["workload"]["arrival"]["cv"] = draw(st.floats(0.3, 3))
    return doc


def _load(doc):
    try:
        return scenario_from_dict(doc)
    except InputError as e:  # a drawn combination the schema refuses, for a stated reason
        assert all(f for f, _ in e.problems)
        assume(False)


@settings(**SETTINGS)
@given(scenarios())
def test_valid_scenarios_size_and_simulate_and_account_for_every_request(doc):
    sc = _load(doc)
    rep = size(sc, with_alternatives=False)
    assert rep.instance.capacity_req_s > 0 and math.isfinite(rep.instance.capacity_req_s)
    cl, summ = simulate(sc)
    ids = [r.rid for r in cl.records]
    assert len(ids) == len(set(ids))  # each request recorded exactly once
    assert {r.status for r in cl.records} <= STATUSES
    assert sum(summ["status_in_window"].values()) <= len(cl.records)
    json.dumps(summ, default=float)


@settings(**{**SETTINGS, "max_examples": 8})
@given(scenarios())
def test_half_the_analytic_capacity_is_served_in_simulation(doc):
    """At half of `size`'s capacity a simulated replica keeps up: it serves at least 80% of the offered
    tokens in the window (a capacity 2x too optimistic would show here as a growing queue)."""
    doc.pop("failures", None)
    doc["fleet"]["replicas"] = 1
    sc = _load(doc)
    cap = size(sc, with_alternatives=False).instance.capacity_req_s
    doc["workload"]["arrival"] = {"process": "poisson", "rate": 0.5 * cap}
    doc["sim"] = {"duration_s": 30, "warmup_s": 5, "seed": 1}
    sc = _load(doc)
    assume(0.5 * cap * 25 >= 20)  # enough requests for a throughput to mean something
    cl, summ = simulate(sc)
    done = summ["status_in_window"].get("completed", 0)
    assert done >= 0.8 * sum(summ["status_in_window"].values())


BAD = [("fleet.replicas", -1), ("fleet.replicas", "two"), ("fleet.max_num_seqs", 0), ("fleet.block_size", 2.5),
       ("fleet.gpu", "H900"), ("workload.arrival.rate", -3), ("workload.arrival.rate", "nan"),
       ("sim.duration_s", 0), ("sim.seed", -1), ("fleet.gpu_memory_utilization", 1.5), ("model", "llama-9"),
       ("fleet.quantization", "int3"), ("stack", "tgi"), ("slas", "fast"), ("fleet.enable_chunked_prefill", "maybe")]


@settings(**{**SETTINGS, "max_examples": 15})
@given(scenarios(), st.sampled_from(BAD))
def test_invalid_scenarios_exit_2_naming_the_field(tmp_path_factory, doc, bad):
    key, value = bad
    node = doc
    *path, last = key.split(".")
    for p in path:
        node = node.setdefault(p, {})
    node[last] = float(value) if value == "nan" else value
    f = tmp_path_factory.mktemp("bad") / "s.json"
    f.write_text(json.dumps(doc, allow_nan=True))
    res = CliRunner().invoke(app, ["size", str(f)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert last in res.output or key.split(".")[0] in res.output, res.output
