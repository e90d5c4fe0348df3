"""The command line as a user runs it."""
import json
from pathlib import Path

from typer.testing import CliRunner

from planner.cli import app

runner = CliRunner()


def test_size_answers_the_100_a100_question_and_flags_the_seed_cost_claim():
    res = runner.invoke(app, ["size", "seed-100-a100", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    cost = rep["cost"]
    cap = rep["fleet_given"]["capacity_tok_s"]
    # $/1M tokens is consistent with the report's own throughput and $/GPU-hour
    assert cost["per_million_tokens_at_capacity"] == \
        __import__("pytest").approx(cost["fleet_per_hour"] / (cap * 3600) * 1e6, rel=1e-9)
    claims = {c["claim"]: c for c in rep["claims"]}
    assert claims["$ per 1M tokens"]["verdict"] == "DISAGREES"
    own = claims["$ per 1M tokens vs the claim's own $/hour and tok/s"]
    assert own["planner"] == __import__("pytest").approx(200 / (100000 * 3600) * 1e6)  # $0.556
    assert any("compute" in b for b in rep["binding"])


def test_simulate_writes_records_summary_series_and_plots(tmp_path):
    res = runner.invoke(app, ["simulate", "seed-multi-tenant", "--duration", "120", "--warmup", "10",
                              "--no-progress", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for f in ("requests.csv", "summary.json", "timeseries.csv", "latency_cdf.png", "timeseries.png"):
        assert (tmp_path / f).stat().st_size > 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["tiers"]) == {"premium", "standard", "budget"}
    assert sum(s["status"].values()) == s["requests"]


def test_experiments_run(tmp_path):
    res = runner.invoke(app, ["experiment", "paged", "--json"])
    assert res.exit_code == 0
    rows = json.loads(res.output)["rows"]
    assert all(r["paged_at_finish"] > r["contiguous_max_len"] for r in rows)
    res = runner.invoke(app, ["experiment", "batching", "--duration", "120", "--json"])
    assert res.exit_code == 0
    assert json.loads(res.output)["curves"]["static"]
    res = runner.invoke(app, ["experiment", "nope"])
    assert res.exit_code == 2 and "unknown experiment" in res.output


def test_validate_refuses_a_profile_that_does_not_exist_naming_the_option():
    res = runner.invoke(app, ["validate", "--profile", "no/such/profile.json"])
    assert res.exit_code == 2
    assert "--profile" in res.output and "does not exist" in res.output


def test_pool_profiles_writes_the_pool_and_refuses_another_gpu(tmp_path):
    from contract.profile import Profile
    res_dir = Path(__file__).resolve().parent.parent / "lab" / "calibration"
    a, b = res_dir / "profile_h100_machine4_run1.json.gz", res_dir / "profile_h100_machine5.json.gz"
    out = tmp_path / "pooled.json.gz"
    res = runner.invoke(app, ["pool-profiles", str(a), str(b), "--out", str(out)])
    assert res.exit_code == 0, res.output
    pooled = Profile.load(out)
    assert len(pooled.iterations) == len(Profile.load(a).iterations) + len(Profile.load(b).iterations)
    res = runner.invoke(app, ["pool-profiles", str(a), str(res_dir / "profile_h200.json.gz"), "--out", str(out)])
    assert res.exit_code == 2 and "gpu is 'H200'" in res.output


def test_pool_profiles_warns_about_a_calibration_whose_host_changed_speed(tmp_path):
    from contract.profile import Profile
    res_dir = Path(__file__).resolve().parent.parent / "lab" / "calibration"
    a = Profile.load(res_dir / "profile_h100_machine4_run1.json.gz")
    steady = a.model_copy(update={"host_bench_samples_s": [3.0e-3, 3.1e-3, 3.2e-3]})
    moved = a.model_copy(update={"host_bench_samples_s": [3.17e-3, 4.6e-3, 4.9e-3]})
    steady.save(tmp_path / "steady.json"), moved.save(tmp_path / "moved.json")
    out = tmp_path / "pooled.json"
    res = runner.invoke(app, ["pool-profiles", str(tmp_path / "steady.json"), str(tmp_path / "moved.json"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "moved.json" in text and "steady.json:" not in text
    assert "45% slower" in text and "3.17-4.90 ms" in text
    assert out.exists()  # a warning, not a refusal: pooling is what dilutes such a calibration


def test_validate_with_profile_none_compares_the_roofline_model_alone(tmp_path):
    import shutil
    data = Path(__file__).resolve().parent.parent / "lab" / "validation" / "h100"
    stem = "llama-3.2-1b_H100-SXM_azure-conv"
    for suffix in (".meta.json", ".trace.csv", ".records.csv"):
        shutil.copy(data / f"{stem}{suffix}", tmp_path / f"{stem}{suffix}")
    res = runner.invoke(app, ["validate", "--data", str(tmp_path), "--profile", "none", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 1 and "roofline" in rows[0] and "calibrated" not in rows[0]


def test_size_step_margin_is_checked_and_reported():
    bad = runner.invoke(app, ["size", "seed-multi-tenant", "--step-margin", "-0.1", "--no-alternatives"])
    assert bad.exit_code == 2 and "--step-margin" in bad.output and "Traceback" not in bad.output
    ok = runner.invoke(app, ["size", "seed-multi-tenant", "--step-margin", "0.2", "--no-alternatives", "--json"])
    assert ok.exit_code == 0
    rep = json.loads(ok.output)
    assert rep["margin"]["step_margin"] == 0.2 and rep["margin"]["instances_needed_at_peak"] >= 1


def test_simulate_step_scale_slows_every_step_and_says_so():
    """Same scenario and seed: steps 1.5x as long give a longer TPOT, and the summary names the scaled model."""
    args = ["simulate", "seed-multi-tenant", "--duration", "60", "--warmup", "10", "--json", "--no-progress"]
    base = runner.invoke(app, args)
    slow = runner.invoke(app, args + ["--step-scale", "1.5"])
    assert base.exit_code == 0 and slow.exit_code == 0, slow.output
    b, s = json.loads(base.output), json.loads(slow.output)
    assert "steps x1.5" in s["cost_model"] and "steps x" not in b["cost_model"]
    assert s["tpot_s"]["p50"] > 1.3 * b["tpot_s"]["p50"]
    bad = runner.invoke(app, ["simulate", "seed-multi-tenant", "--step-scale", "0"])
    assert bad.exit_code == 2 and "--step-scale" in bad.output
