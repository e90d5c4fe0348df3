"""The configuration search: same optimum as brute force, pruning keeps it, backends agree; max-rate brackets the
highest rate that meets the SLAs."""
import pytest

from planner.scenario import scenario_from_dict
from planner.search import candidates, evaluate, fits, search


@pytest.fixture(scope="module")
def small():
    return scenario_from_dict({
        "name": "small", "model": "llama-3.1-8b",
        "workload": {"arrival": {"process": "poisson", "rate": 30},
                     "rate_profile": {"peak_factor": 1.5},
                     "input_tokens": {"dist": "fixed", "mean": 400}, "output_tokens": {"dist": "fixed", "mean": 120}},
        "fleet": {"gpu": "H100-SXM"}, "slas": [{"metric": "e2e", "percentile": 95, "target_s": 2.5}],
        "search": {"gpus": ["H100-SXM", "L40S", "L4"], "tensor_parallel_sizes": [1, 2],
                   "quantizations": ["bf16", "fp8"], "max_replicas": 12, "sim_duration_s": 15},
        "sim": {"duration_s": 15, "warmup_s": 3}})


def brute_force(sc):
    """Every fitting candidate at every replica count: the true cheapest feasible fleet."""
    best = None
    for c in candidates(sc):
        if not fits(sc, c):
            continue
        for n in range(1, sc.search.max_replicas + 1):
            r = evaluate(sc, c, n)
            if r["meets"]:
                if best is None or (r["per_hour"], n * c.tp) < (best[0], best[2]):
                    best = (r["per_hour"], c, n * c.tp, n)
                break
    return best


def test_search_finds_the_brute_force_optimum_and_pruning_keeps_it(small):
    bf = brute_force(small)
    assert bf is not None
    pruned = search(small, backend="serial")
    full = search(small, backend="serial", prune=False)
    for res in (pruned, full):
        b = res["best"]
        assert b["per_hour"] == pytest.approx(bf[0]) and b["gpus"] == bf[2]
        assert b["candidate"]["gpu"] == bf[1].gpu and b["replicas"] == bf[3]
    assert pruned["evaluations"] < full["evaluations"]  # pruning saves simulations


def test_process_pool_and_ray_give_identical_results(small):
    ray = pytest.importorskip("ray")
    local = search(small, backend="process", workers=2)
    try:
        viaray = search(small, backend="ray", workers=2)
    finally:
        ray.shutdown()
    key = lambda res: [(r["candidate"], r["replicas"], r.get("per_hour"), r.get("e2e_p95")) for r in res["results"]]  # noqa
    assert key(local) == key(viaray)


def test_pareto_frontier_is_cheaper_or_faster(small):
    res = search(small, backend="serial")
    fr = res["pareto"]
    assert fr and all(a["per_hour"] <= b["per_hour"] and a["e2e_p95"] > b["e2e_p95"] for a, b in zip(fr, fr[1:]))


def test_search_cli_writes_results_and_a_pareto_plot(small, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from planner.cli import app
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(small.model_dump(mode="json", exclude_none=True)))
    res = CliRunner().invoke(app, ["search", str(f), "--backend", "serial", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "pareto.png").stat().st_size > 5000
    assert "binds (analytic)" in res.output


def _rate_scenario(**over):
    doc = {"name": "rate", "model": "llama-3.1-8b",
           "workload": {"arrival": {"process": "poisson", "rate": 5}, "input_tokens": {"dist": "fixed", "mean": 400},
                        "output_tokens": {"dist": "fixed", "mean": 120}},
           "fleet": {"gpu": "H100-SXM", "max_num_seqs": 64},
           "slas": [{"metric": "ttft", "percentile": 99, "target_s": 1.0},
                    {"metric": "tpot", "percentile": 99, "target_s": 0.05}],
           "sim": {"duration_s": 30, "warmup_s": 0}}
    doc.update(over)
    return doc


def test_max_rate_brackets_the_highest_rate_that_meets_every_sla():
    """The method: the answer meets every SLA and completes what arrived, the next rate tried above it does not,
    and the two are within the tolerance; a looser SLA never gives a lower rate."""
    from planner.max_rate import max_rate
    sc = scenario_from_dict(_rate_scenario())
    res = max_rate(sc, rel_tol=0.05)
    assert res["at_max"]["meets"] and res["at_max"]["completed_all"]
    assert not res["first_miss"]["meets"] or not res["first_miss"]["completed_all"]
    assert res["max_rate_req_s"] < res["first_miss"]["rate"] <= res["max_rate_req_s"] * 1.05 + 1e-9
    loose = _rate_scenario(slas=[{"metric": "ttft", "percentile": 99, "target_s": 4.0},
                                 {"metric": "tpot", "percentile": 99, "target_s": 0.2}])
    assert max_rate(scenario_from_dict(loose), rel_tol=0.05)["max_rate_req_s"] >= res["max_rate_req_s"] * 0.95


def test_max_rate_cli_names_bad_input_and_shows_the_presets_evidence(tmp_path):
    import json as _json

    import yaml
    from typer.testing import CliRunner

    from planner.cli import app
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_rate_scenario()))
    runner = CliRunner()
    res = runner.invoke(app, ["max-rate", str(path), "--tol", "0.1", "--json"])
    assert res.exit_code == 0, res.output
    out = _json.loads(res.output)
    assert out["max_rate_req_s"] > 0 and out["evidence"]["stack"] == "vllm" and out["evidence"]["gpu"] == "H100-SXM"
    assert "capacity" in out["evidence"]
    text = runner.invoke(app, ["max-rate", str(path), "--tol", "0.1"], env={"COLUMNS": "200"}).output
    assert "evidence: published vllm results on H100-SXM" in text
    bad = runner.invoke(app, ["max-rate", str(path), "--tol", "1.5"])
    assert bad.exit_code == 2 and "--tol" in bad.output
    path.write_text(yaml.safe_dump(_rate_scenario(slas=[])))
    bad = runner.invoke(app, ["max-rate", str(path)])
    assert bad.exit_code == 2 and "slas" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(app, ["max-rate", "seed-100-a100"])  # its arrivals are not an open-loop rate
    assert bad.exit_code == 2 and "workload.arrival.process" in bad.output
