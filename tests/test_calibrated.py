"""The calibrated cost model: fitting and composition, on synthetic and on committed real profiles."""
import functools
from pathlib import Path

import numpy as np
import pytest

from contract.catalog import GPUS, MODELS
from contract.profile import AttnRow, GemmRow, Profile, StepRow, token_buckets
from planner.cost import RooflineCostModel
from planner.cost.calibrated import CalibratedCostModel, _interp_log
from tests.conftest import ROOT

M8, H100, H200 = MODELS["llama-3.1-8b"], GPUS["H100-SXM"], GPUS["H200"]
MS = (1, 4, 16, 64, 256, 1024, 4096)


def synthetic_profile(overhead=2e-4, per_token=1e-7) -> Profile:
    """Tables filled with the roofline's own operator times, and steps = roofline + a known overhead."""
    r = RooflineCostModel(M8, H100, step_overhead_s=0)
    gemm = []
    for n, k in r.gemms + [(M8.vocab_size, M8.hidden_size)]:
        for m in MS:
            t = max(2.0 * m * n * k / r.flops, (n * k * 2 + m * (n + k) * 2) / r.bw)
            gemm.append(GemmRow(m=m, n=n, k=k, seconds=t))
    attn = []
    for b in (1, 4, 16, 64, 256):
        for c in (128, 512, 2048, 8192):
            attn.append(AttnRow(kind="decode", heads=32, kv_heads=8, head_dim=128, a=b, context=c,
                                seconds=b * c * r.decode_attn_per_ctx / r.L))
    for n in (16, 64, 256, 1024, 4096):
        for p in (0, 1024, 4096):
            attn.append(AttnRow(kind="prefill", heads=32, kv_heads=8, head_dim=128, a=n, context=p,
                                seconds=r._prefill_attn([(n, p)]) / r.L))
    steps = []
    for b in (1, 8, 64, 256):
        for c in (256, 1024):
            steps.append(StepRow(model=M8.name, kind="decode", batch=b, tokens=b, context=c,
                                 seconds=r.decode_time(b, b * c) + overhead + per_token * b))
    for t in (128, 512, 2048, 8192):
        steps.append(StepRow(model=M8.name, kind="prefill", batch=1, tokens=t, context=0,
                             seconds=r.time(t, 1, 0, [(t, 0)]) + 5 * overhead + per_token * t))
    return Profile(gpu="H100-SXM", device_name="synthetic", gemm=gemm, attention=attn, steps=steps)


def test_log_interpolation_is_exact_on_power_laws():
    import numpy as np
    xs = np.array([1.0, 10.0, 100.0])
    assert _interp_log(xs, 3 * xs ** 1.5, 31.6) == pytest.approx(3 * 31.6 ** 1.5, rel=1e-9)


def test_calibrated_reproduces_the_model_its_profile_was_made_from():
    prof = synthetic_profile()
    roof = RooflineCostModel(M8, H100, step_overhead_s=0)
    cal = CalibratedCostModel(prof, M8, H100)
    # the fit absorbs what the composition leaves out: the fixed overhead, and per token the planted
    # 1e-7 s plus the elementwise traffic the roofline charges
    assert cal.ovh_a == pytest.approx(2e-4, rel=0.05)
    assert cal.ovh_b == pytest.approx(1e-7 + roof.elem_bytes_per_token / roof.bw, rel=0.1)
    for b, ctx in [(1, 300), (32, 700), (200, 3000)]:
        want = roof.decode_time(b, b * ctx) + 2e-4 + 1e-7 * b
        assert cal.decode_time(b, b * ctx) == pytest.approx(want, rel=0.03)
    pre = cal.time(2048, 1, 0, [(2048, 0)])
    assert cal.ovh["prefill"][0] == pytest.approx(1e-3, abs=3e-4)  # eager steps: their own fixed cost
    assert pre == pytest.approx(roof.time(2048, 1, 0, [(2048, 0)]) + 1e-3 + 1e-7 * 2048, rel=0.03)


def test_extrapolation_to_another_gpu_scales_by_the_bounding_resource_and_says_so():
    prof = synthetic_profile(overhead=0, per_token=0)
    h200 = CalibratedCostModel(prof, M8, H200)
    assert "EXTRAPOLATED from H100-SXM" in h200.description
    cal = CalibratedCostModel(prof, M8, H100)
    # batch-1 decode is bandwidth-bound: H200/H100 = 3350/4800 of the time
    ratio = h200.decode_time(1, 500) / cal.decode_time(1, 500)
    assert ratio == pytest.approx(3350 / 4800, rel=0.05)


def test_extrapolation_scales_the_roofline_part_and_keeps_each_operators_latency():
    """Every GEMM row measured 20 us above its roofline time (launch latency, tails): on the H200 the roofline
    part shrinks by the bandwidth ratio and the 20 us per GEMM stay -- the whole time scaled by the ratio
    would put a small-batch decode step ~6% too fast."""
    prof = synthetic_profile(overhead=0, per_token=0)
    slow = prof.model_copy(update={"gemm": [g.model_copy(update={"seconds": g.seconds + 2e-5}) for g in prof.gemm]})
    base100 = CalibratedCostModel(prof, M8, H100).decode_time(1, 500)
    base200 = CalibratedCostModel(prof, M8, H200).decode_time(1, 500)
    lat = 2e-5 * (4 * M8.num_layers + 1)  # four GEMM groups per layer and the LM head
    assert CalibratedCostModel(slow, M8, H100).decode_time(1, 500) == pytest.approx(base100 + lat, rel=1e-3)
    assert CalibratedCostModel(slow, M8, H200).decode_time(1, 500) == pytest.approx(base200 + lat, rel=1e-3)


def test_fast_forward_sums_match_step_sums_for_the_calibrated_model():
    cal = CalibratedCostModel(synthetic_profile(), M8, H100)
    for b, s, k in [(3, 900, 40), (64, 64 * 700, 100)]:
        assert cal.decode_run_time(b, s, k) == pytest.approx(sum(cal.decode_time(b, s + j * b) for j in range(k)),
                                                             rel=1e-9)


PROFILES = sorted((ROOT / "planner" / "data" / "profiles").glob("*.json*"))


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_committed_profile_predicts_its_own_serving_iterations(path):
    """The overhead is fitted to the engine's serving iterations (schedule to next schedule, a rate-ramp
    replay in `engine calibrate`), so the composed model must reproduce them: their total within 2% per kind
    (the simulator adds them up), the typical one within 10% (decode) and 15% (with a prefill; committed
    H100 profile: decode 6.2% / 5.8%, prefill 9.2% / 3.7% for the 1B / 8B)."""
    prof = Profile.load(path)
    assert prof.iterations, "profile without serving iterations"
    # a TP engine's iterations by the TP model, an FP8 engine's by the FP8 model
    for name, tp, q in {(r.model, r.tp, r.quantization) for r in prof.iterations}:
        cal = CalibratedCostModel(prof, MODELS[name], GPUS[prof.gpu], tp=tp, quantization=q,
                                  max_num_batched_tokens=prof.iterations[0].max_num_batched_tokens)
        assert cal.overhead_source == "iterations"
        for mixed, typical in ((False, 0.10), (True, 0.15)):
            its = [r for r in prof.iterations
                   if r.model == name and r.tp == tp and r.quantization == q and (r.chunks > 0) == mixed]
            pred = np.array([cal.time(r.tokens, r.decodes + r.chunks, r.decode_ctx,
                                      [((r.tokens - r.decodes) // r.chunks, r.prefill_ctx // r.chunks)] * r.chunks)
                             if mixed else cal.decode_time(r.decodes, r.decode_ctx) for r in its])
            meas = np.array([r.seconds for r in its])
            assert abs(pred.sum() / meas.sum() - 1) < 0.02, (name, tp, q, mixed, pred.sum() / meas.sum())
            assert np.median(np.abs(pred - meas) / meas) < typical, (name, tp, q, mixed)


def test_overhead_falls_back_to_isolated_steps_without_iterations():
    """A profile without serving iterations (older ones) still fits its overhead, from the whole steps."""
    prof = Profile.load(PROFILES[0]).model_copy(update={"iterations": []})
    cal = CalibratedCostModel(prof, M8, H100)
    assert cal.overhead_source == "steps" and cal.fit_points == 2
    assert all(v >= 0 for v in cal.ovh["decode"] + cal.ovh["prefill"])


VALIDATION = ROOT / "lab" / "validation" / "h100"


@functools.lru_cache(maxsize=None)
def validated(runs: str) -> list:
    """planner validate on a committed folder of engine runs (about 45 s each; shared by the tests below)."""
    from planner.validate import validate
    data = ROOT / "lab" / "validation" / runs
    if not any(data.glob("*.meta.json")) or not PROFILES:
        pytest.skip("no committed engine runs")
    return validate(data, str(ROOT / "planner" / "data" / "profiles" / "h100.json.gz"))


@pytest.mark.parametrize("runs", ["h100", "h200"])
def test_calibration_beats_the_roofline_on_the_committed_engine_runs(runs):
    """On the engine's real replays (H100, and H200 predicted from the H100 profile), the calibrated
    simulator's P50 end-to-end error is smaller than the roofline's on every run below saturation and in
    the median over all runs, and its throughput error stays under 25%. (Above saturation a few % of
    iteration time decides whether a queue builds: the 1B at 1.3x load is off several-fold either way.)"""
    rows = validated(runs)
    assert all(r["extrapolated"] == (runs == "h200") for r in rows)
    assert len(rows) >= 4
    cal = [abs(r["calibrated_err"]["e2e_p50"]) for r in rows]
    roof = [abs(r["roofline_err"]["e2e_p50"]) for r in rows]
    for r, c, f in zip(rows, cal, roof):
        if r["load"] < 1:
            assert c < f, (r["model"], r["run"], c, f)
        assert abs(r["calibrated_err"]["throughput_tok_s"]) < 0.25
    assert np.median(cal) < np.median(roof)


@pytest.mark.parametrize("runs,at_least", [("h100", 40), ("h200", 40)])
def test_snapshot_in_sample_validation_of_the_committed_runs(runs, at_least):
    """SNAPSHOT of an in-sample result (the runs share the calibration's knobs, lengths and models; the held-out
    result is lab/validation/heldout/h200/score_v1.md): it pins committed outputs, not the method. The targets on the committed runs (nine runs of each H100 trace on seven H100 machines, twelve of
    each H200 trace on six H200 machines; the reference is each metric's median): E2E P50/P95 and throughput
    within 5% below saturation (10% on the H200) and 10% above, TTFT P50/P95 within 10%, for the 1B and the 8B.
    Product profile (serving iterations of nine H100 calibrations pooled): 40 of 40 on the H100 and 40 of 40 on
    the H200 predicted from it. The H200's closest cell, the 8B's TTFT P95 at 0.82 load (-8.6%), is one whose
    runs spread by 74%: with ten runs it was -11.1%, a miss inside the median's interval, which any miss here
    must be."""
    from planner.validate import misses, target_cells, target_count
    rows = validated(runs)
    assert {r["model"] for r in rows} == {"llama-3.2-1b", "llama-3.1-8b"}
    assert all(len(r["engine_replays"]) >= 4 for r in rows)
    assert any(r["load"] > 1 for r in rows) and any(r["load"] < 0.5 for r in rows)
    ok, cells = target_count(rows)
    assert cells == 40 and ok >= at_least, (ok, cells)
    # no cell is far off: the misses are near their limits or in near-saturation TTFT P95, and each lies
    # inside the engine's own variation (a median in its distribution-free interval would meet the limit)
    assert all(abs(e) <= 2.5 * lim for _, _, e, lim in target_cells(rows))
    assert all(x["within_noise"] for x in misses(rows)), misses(rows)
    assert all(abs(r["calibrated_err"]["throughput_tok_s"]) <= 0.05 for r in rows)


def test_tp_cost_uses_the_measured_allreduce_table_when_the_profile_has_one():
    """TP=2 on the profile's own GPU: a table 10x slower than the link model moves the step by exactly
    2 all-reduces per layer of the interpolated difference; another TP degree carries the table by the degree
    rule (marked EXTRAPOLATED)."""
    from contract.profile import AllReduceRow
    spec, gpu = MODELS["llama-3.1-8b"], GPUS["H100-SXM"]
    base = synthetic_profile()
    plain = CalibratedCostModel(base, spec, gpu, tp=2)
    T = 64
    nbytes = T * spec.hidden_size * 2
    table = [AllReduceRow(bytes=b, tp=2, seconds=1e-3 * (b / nbytes) ** 0.5) for b in (4096, nbytes, 256 << 20)]
    timed = CalibratedCostModel(base.model_copy(update={"allreduce": table}), spec, gpu, tp=2)
    diff = timed.time(T, T, T * 512) - plain.time(T, T, T * 512)
    expect = 2 * spec.num_layers * (1e-3 - plain.roof._allreduce(T) / (2 * spec.num_layers))
    assert diff == pytest.approx(expect, rel=1e-6)
    other_tp = CalibratedCostModel(base.model_copy(update={"allreduce": table}), spec, gpu, tp=4)
    # rows for TP=2 only: TP=4 carries the measured table by the degree rule, and says so
    assert other_tp._allreduce(T) > 0 and other_tp._allreduce(T) != other_tp.roof._allreduce(T)
    assert "all-reduce at TP=4 EXTRAPOLATED from TP=2" in other_tp.description  # said once the table is built


def test_allreduce_at_an_unmeasured_degree_follows_the_exponent_of_the_measured_ones():
    """A profile with in-graph tables at TP=2 and TP=4 that grow as ((n-1)/(m-1))^0.4: its exponent is recovered
    and TP=8 is carried from TP=4 by it; a profile with one degree takes the default exponent, which is the
    committed H100 profile's own (TP=2/TP=4, median over message sizes)."""
    from contract.profile import AllReduceRow
    from planner.cost.calibrated import DEFAULT_DEGREE_EXPONENT, degree_exponent
    spec, gpu = MODELS["llama-3.1-8b"], GPUS["H100-SXM"]
    sizes = (4096, 1 << 20, 64 << 20)
    base_t = {b: 1e-5 + b / 300e9 for b in sizes}
    table = [AllReduceRow(bytes=b, tp=n, seconds=base_t[b] * (n - 1) ** 0.4, graph=True) for b in sizes for n in (2, 4)]
    assert degree_exponent(table)[0] == pytest.approx(0.4)
    prof = synthetic_profile().model_copy(update={"allreduce": table})
    tp8 = CalibratedCostModel(prof, spec, gpu, tp=8)
    _, _, rows = tp8._allreduce_table()
    assert dict(rows) == pytest.approx({b: base_t[b] * 7 ** 0.4 for b in sizes}, rel=1e-9)
    assert "EXTRAPOLATED from TP=4" in tp8.description
    one = [r for r in table if r.tp == 2]
    assert degree_exponent(one)[0] == DEFAULT_DEGREE_EXPONENT
    assert degree_exponent(_h100_profile().allreduce)[0] == pytest.approx(DEFAULT_DEGREE_EXPONENT, abs=5e-4)


def test_token_buckets_bound_the_padding_and_end_at_the_budget():
    from contract.profile import token_buckets
    for budget in (100, 2048, 5000, 16384):
        b = token_buckets(budget)
        assert b == sorted(set(b)) and b[-1] == budget and all(x <= budget for x in b)
        for t in range(129, budget + 1, 37):
            pad = next(x for x in b if x >= t)
            assert pad / t <= 1.25 if t > 2048 else pad - t < 128 if t <= 1024 else pad - t < 256


def test_piecewise_profile_charges_gemms_at_the_padded_token_bucket():
    """The engine runs a 641-token prefill step as its 768-token graph: the calibrated model charges the
    GEMMs at 768 (attention at the real 641)."""
    prof = Profile.load(PROFILES[0])
    assert prof.piecewise_max_tokens > 0
    padded = CalibratedCostModel(prof, M8, H100, max_num_batched_tokens=2048)
    plain = CalibratedCostModel(prof.model_copy(update={"piecewise_max_tokens": 0}), M8, H100)
    assert padded._ops(641, 1, 0, [(641, 0)]) == pytest.approx(plain._ops(768, 1, 0, [(641, 0)]), rel=1e-12)
    assert padded._ops(641, 1, 0, [(641, 0)]) > plain._ops(641, 1, 0, [(641, 0)])
    assert padded._ops(5, 5, 1000, ()) == plain._ops(5, 5, 1000, ())  # decode steps are not padded


def test_binned_decode_overhead_fits_small_batches_of_the_committed_profile():
    """The linear decode overhead put batch 1-3 iterations 6-10% high on the H100 (the whole of a low-load
    trace's TPOT error); the per-bin correction brings each power-of-two batch bin's total within 3% (bf16 and FP8;
    the INT8 engine's iterations within 4%: its 8-15 bin reads 0.966 in the committed profile, not diagnosed)."""
    prof = Profile.load(PROFILES[0])
    for name, q in {(r.model, r.quantization) for r in prof.iterations}:
        cal = CalibratedCostModel(prof, MODELS[name], GPUS[prof.gpu], quantization=q, max_num_batched_tokens=2048)
        assert cal._dec_bins is not None
        its = [r for r in prof.iterations
               if r.model == name and r.chunks == 0 and r.tp == 1 and r.quantization == q]
        k = np.floor(np.log2([r.decodes for r in its])).astype(int)
        for b in np.unique(k):
            sel = [r for r, kk in zip(its, k) if kk == b]
            if len(sel) < 30:
                continue
            pred = sum(cal.decode_time(r.decodes, r.decode_ctx) for r in sel)
            meas = sum(r.seconds for r in sel)
            assert abs(pred / meas - 1) < (0.04 if q == "int8" else 0.03), (name, q, 2 ** b, pred / meas)


def test_decode_graph_padding_charges_the_graphs_batch_and_matches_the_engines_graph_sizes():
    """With decode_graph_padding on (the default since grid 16), a decode step's GEMMs and LM head are charged at the smallest captured graph
    batch holding it (20 sequences run 32 rows; past 512 none is padded), its attention at the real sequences;
    the graph sizes are the engine's own (engine.model_runner imports them from the contract); the stack presets
    stay unpadded (their engines capture other sizes)."""
    from contract.profile import DECODE_GRAPH_BATCHES, decode_graph_rows
    from planner.cost.stack import StackCostModel
    assert [decode_graph_rows(b) for b in (1, 3, 5, 8, 9, 20, 33, 512, 513)] == [1, 4, 8, 8, 16, 32, 64, 512, 513]
    try:
        from engine import model_runner
    except ImportError:  # torch missing: the planner's side alone
        model_runner = None
    if model_runner is not None:
        assert model_runner.GRAPH_BATCHES == DECODE_GRAPH_BATCHES
    prof = Profile.load(ROOT / "planner" / "data" / "profiles" / "h200.json.gz")
    m, g = MODELS["llama-3.1-8b"], GPUS["H200"]
    assert CalibratedCostModel.decode_graph_padding is True and StackCostModel.decode_graph_padding is False
    on = CalibratedCostModel(prof, m, g, quantization="fp8")
    try:
        CalibratedCostModel.decode_graph_padding = False
        off = CalibratedCostModel(prof, m, g, quantization="fp8")
    finally:
        CalibratedCostModel.decode_graph_padding = True
    b20, b32 = on.breakdown(20, 20, 20 * 500), on.breakdown(32, 32, 32 * 500)
    assert b20.gemm == pytest.approx(b32.gemm) and b20.lm_head == pytest.approx(b32.lm_head)
    assert b20.attention < b32.attention  # the padding rows attend to one token: not charged
    assert off.breakdown(20, 20, 20 * 500).gemm != pytest.approx(b32.gemm)
    assert on.breakdown(600, 600, 600 * 500).gemm == pytest.approx(off.breakdown(600, 600, 600 * 500).gemm)


def test_answers_say_which_shapes_the_profile_never_timed():
    """A model whose projection shapes or attention layout the profile has no table for is costed from the nearest
    measured one; its description says so (EXTRAPOLATED), and a model the profile did time says nothing of it."""
    prof = Profile.load(ROOT / "planner" / "data" / "profiles" / "h200.json.gz")
    qwen = CalibratedCostModel(prof, MODELS["qwen2.5-32b"], GPUS["H200"]).description
    assert "4 of 4 projection shapes not in the profile's bf16 GEMM table" in qwen
    assert "attention layout 40/8 heads x 128 not in the profile" in qwen
    for timed in ("llama-3.1-8b", "qwen2.5-7b"):  # the engine's own model; a shape measured for a plan (round 48)
        own = CalibratedCostModel(prof, MODELS[timed], GPUS["H200"]).description
        assert "projection shapes not in" not in own and "attention layout" not in own
    from planner.cost.stack import StackCostModel  # a stack preset's answer keeps the warning
    from planner.stacks import load_stack
    st = StackCostModel(prof, MODELS["qwen2.5-32b"], GPUS["H200"], load_stack("vllm"))
    assert "4 of 4 projection shapes not in the profile's bf16 GEMM table" in st.description


def test_binned_prefill_overhead_fits_steps_of_few_tokens_of_the_committed_h200_profile():
    """The linear prefill overhead (a + b x tokens + ...) leaves the H200's steps of 128-256 tokens 4-9% high (bf16
    and FP8 iterations); the per-token-bin correction (CalibratedCostModel.prefill_token_bins, off by default since
    grid 15 did not confirm it) brings each power-of-two token bin's total within 3%, and is no worse than the
    linear fit alone in any bin."""
    prof = Profile.load(ROOT / "planner" / "data" / "profiles" / "h200.json.gz")
    m = MODELS["llama-3.1-8b"]
    assert CalibratedCostModel.prefill_token_bins is False
    for q in ("bf16", "fp8"):
        lin = CalibratedCostModel(prof, m, GPUS["H200"], quantization=q, max_num_batched_tokens=2048)
        assert lin._pre_bins is None
        try:
            CalibratedCostModel.prefill_token_bins = True
            cal = CalibratedCostModel(prof, m, GPUS["H200"], quantization=q, max_num_batched_tokens=2048)
        finally:
            CalibratedCostModel.prefill_token_bins = False
        assert cal._pre_bins is not None
        its = [r for r in prof.iterations if r.model == m.name and r.chunks > 0 and r.tp == 1
               and r.quantization == q and r.max_num_batched_tokens == 2048]
        k = np.floor(np.log2([r.tokens for r in its])).astype(int)
        for b in np.unique(k):
            sel = [r for r, kk in zip(its, k) if kk == b]
            if len(sel) < 30:
                continue

            def total(model):
                return sum(model.time(r.tokens, r.decodes + r.chunks, r.decode_ctx,
                                      [((r.tokens - r.decodes) // r.chunks, r.prefill_ctx // r.chunks)] * r.chunks)
                           for r in sel) / sum(r.seconds for r in sel)
            binned, linear = total(cal), total(lin)
            assert abs(binned - 1) < 0.03, (q, 2 ** b, binned)
            assert abs(binned - 1) <= abs(linear - 1) + 0.005, (q, 2 ** b, binned, linear)


def _jitter_scenario(step_jitter: bool, seed: int = 0):
    import json

    from planner.validate import scenario_for
    stem = VALIDATION / "llama-3.1-8b_H100-SXM_poisson-0.8"
    meta = json.loads(Path(f"{stem}.meta.json").read_text())
    cm = {"kind": "calibrated", "profile": str(PROFILES[0]), "step_jitter": step_jitter}
    return scenario_for(meta, Path(f"{stem}.trace.csv"), cm, seed), meta


def test_step_jitter_keeps_the_mean_step_and_widens_the_tail():
    """Ratios drawn from the profile's measured iterations have mean 1: over many steps the jittered time
    matches the deterministic one within 2%, while single steps spread as the measured iterations did."""
    from planner.cost.jitter import JitteredCostModel
    prof = Profile.load(PROFILES[0])
    cal = CalibratedCostModel(prof, M8, H100, max_num_batched_tokens=2048)
    jit = JitteredCostModel(cal, cal.jitter_ratios, np.random.default_rng(1))
    d = np.array([jit.decode_time(32, 32 * 600) for _ in range(4000)]) / cal.decode_time(32, 32 * 600)
    p = np.array([jit.time(700, 33, 32 * 600, [(668, 0)]) for _ in range(4000)]) / cal.time(700, 33, 32 * 600, [(668, 0)])
    assert abs(d.mean() - 1) < 0.02 and abs(p.mean() - 1) < 0.02
    for draws, kind in ((d, "decode"), (p, "prefill")):
        r = cal.jitter_ratios[kind] / cal.jitter_ratios[kind].mean()
        # as often above the measured P99 as the measured iterations were (binomial: 40 +- 6 of 4000); the
        # value of a P99 is a poor check where the measured distribution has a step there
        assert 0.006 < np.mean(draws > np.percentile(r, 99)) < 0.014
        assert np.percentile(draws, 99) > 1.04 and np.percentile(draws, 1) < 0.96
    with pytest.raises(RuntimeError):
        jit.decode_run_time(32, 32 * 600, 10)  # fast-forward's closed form has no place under jitter


def test_step_jitter_is_seeded_keeps_the_arrivals_and_turns_fast_forward_off():
    from planner.sim import simulate
    from planner.sim.metrics import columns
    if not PROFILES or not (VALIDATION / "llama-3.1-8b_H100-SXM_poisson-0.8.meta.json").exists():
        pytest.skip("no committed runs")
    runs = {}
    for key, (j, seed) in {"plain": (False, 0), "a": (True, 0), "b": (True, 0), "c": (True, 1)}.items():
        sc, meta = _jitter_scenario(j, seed)
        cl, summary = simulate(sc, num_blocks=meta["num_blocks"])
        c = columns(cl.records)
        order = np.argsort(c["rid"])  # records are kept in completion order
        runs[key] = ({k: v[order] for k, v in c.items()}, summary)
    pa, a, b, c = (runs[k][0] for k in ("plain", "a", "b", "c"))
    assert np.array_equal(a["finish"], b["finish"])  # same seed, same run
    assert not np.array_equal(a["finish"], c["finish"])  # another seed, another step sequence
    assert np.array_equal(pa["arrival"], a["arrival"])  # jitter draws from its own stream
    assert runs["a"][1]["engine"]["fast_forward_jumps"] == 0 < runs["plain"][1]["engine"]["fast_forward_jumps"]
    assert "step jitter" in runs["a"][1]["cost_model"]
    assert len(a["rid"]) == len(pa["rid"]) and (a["status"] == "completed").all()


def test_step_jitter_needs_a_calibrated_model():
    from contract.errors import InputError
    from planner.scenario import scenario_from_dict
    with pytest.raises(InputError, match="step_jitter"):
        scenario_from_dict({"model": "llama-3.1-8b", "cost_model": {"kind": "roofline", "step_jitter": True}})


def test_decode_per_sequence_overhead_stays_on_another_gpu_and_prefill_per_token_moves_with_bandwidth():
    """A decode step's per-sequence overhead (Python per sequence, latency-bound kernels of tens of tokens)
    is not memory traffic: the H200 gets the H100's; a prefill step's per-token part scales by bandwidth."""
    prof = Profile.load(PROFILES[0])
    src = CalibratedCostModel(prof, M8, H100, max_num_batched_tokens=2048)
    dst = CalibratedCostModel(prof, M8, H200, max_num_batched_tokens=2048)
    assert src.ovh["decode"][1] > 0
    assert dst.ovh["decode"] == pytest.approx(src.ovh["decode"], rel=1e-12)
    bw = src.roof.bw / dst.roof.bw
    assert dst.ovh["prefill"][1] == pytest.approx(src.ovh["prefill"][1] * bw, rel=1e-9)


def test_committed_profile_times_decode_attention_like_a_serving_batch_on_a_dense_grid():
    """Decode attention rows: contexts spread around the mean (as a running batch's are) and no gap in the
    context grid wider than x1.5 from 256 to 4096 -- the kernel's time steps with its partition count, and the
    old x4 grid's log interpolation put 650-token attention 16-42% low on the H100. Older rows load with
    spread 0."""
    prof = Profile.load(PROFILES[0])
    dec = [r for r in prof.attention if r.kind == "decode"]
    assert all(r.spread == pytest.approx(0.8) for r in dec if r.a > 1)
    ctx = sorted({r.context for r in dec if 256 <= r.context <= 4096})
    assert max(b / a for a, b in zip(ctx, ctx[1:])) <= 1.5
    assert {1, 2, 4, 8, 16, 32, 64} <= {r.a for r in dec}
    old = AttnRow(kind="decode", heads=32, kv_heads=8, head_dim=128, a=4, context=512, seconds=1e-5)
    assert old.spread == 0.0


def test_spread_lengths_keep_the_mean_and_stay_in_range():
    torch = pytest.importorskip("torch")  # engine.calibrate imports torch
    from engine.calibrate import decode_tables, spread_lengths
    rng = np.random.default_rng(0)
    for b, c in [(8, 650), (64, 2048), (256, 64)]:
        lens = spread_lengths(b, c, 0.8, rng)
        assert len(lens) == b and abs(lens.mean() - c) <= 1
        assert lens.min() >= 1 and lens.max() <= 2.0 * c  # [0.2, 1.8] x c, rescaled to the mean
        assert lens.std() > 0.2 * c
    assert list(spread_lengths(1, 650, 0.8, rng)) == [650]
    assert list(spread_lengths(4, 650, 0.0, rng)) == [650] * 4
    with pytest.raises(ValueError, match="do not fit"):
        decode_tables(np.array([1600] * 4), 16, 300, 1, True, rng)
    del torch


def test_engine_reference_is_the_median_over_replays_and_reports_their_spread():
    from planner.validate import METRICS, reference_metrics
    runs = [{m: v for m in METRICS} | {"completed": 10} for v in (1.0, 1.3, 1.1)]
    med, spread = reference_metrics(runs)
    assert all(med[m] == pytest.approx(1.1) for m in METRICS)
    assert all(spread[m] == pytest.approx(0.3 / 1.1) for m in METRICS)
    med1, spread1 = reference_metrics(runs[:1])
    assert med1["e2e_p50"] == 1.0 and spread1["e2e_p50"] == 0.0


def test_decode_attention_extrapolated_to_the_h200_matches_the_paired_measurements():
    """The committed serving-like attention measurements on an H100 and an H200 (bench/attention_layout.py):
    the H100 times carried to the H200 by the model's rule land within 5% RMS and 13% at worst; the additive
    rule (the whole roofline part moves, the rest stays) was ~10% RMS fast."""
    import json

    from planner.cost.calibrated import DECODE_ATTN_P
    res = ROOT / "lab" / "studies" / "attention_layout"
    h100 = json.loads((res / "attention_layout_h100.json").read_text())["rows"]
    h200 = {(r["model"], r["batch"], r["context"], r["variant"]): r["seconds"]
            for r in json.loads((res / "attention_layout_h200.json").read_text())["rows"]}
    prof = Profile.load(PROFILES[0])
    built: dict = {}  # one model per architecture: building fits the overhead over every serving iteration
    errs = {1.0: [], DECODE_ATTN_P: []}
    for r in h100:
        key = (r["model"], r["batch"], r["context"], r["variant"])
        if r["variant"] != "cold+scattered+spread" or key not in h200:
            continue
        cal = built.get(r["model"]) or built.setdefault(r["model"], CalibratedCostModel(prof, MODELS[r["model"]], H200))
        for p in errs:
            t = cal._extrapolate(r["seconds"], r["kv_bytes"] / cal.src_roof.bw, "bandwidth", True, p)
            errs[p].append(t / h200[key] - 1)
    assert len(errs[1.0]) >= 20
    rms = {p: float(np.sqrt(np.mean(np.square(e)))) for p, e in errs.items()}
    assert rms[DECODE_ATTN_P] < 0.05 and max(abs(e) for e in errs[DECODE_ATTN_P]) < 0.13
    assert rms[1.0] > 1.5 * rms[DECODE_ATTN_P]


def test_gemms_extrapolated_to_the_h200_match_the_paired_cold_measurements():
    """engine calibrate on an H100 and on an H200 (bench/results/profile_h200.json.gz), weights read cold: each
    model's per-layer GEMMs at decode token counts (M <= 128), carried from the H100 table to the H200 by the
    model's rule, land within 7% of the H200's own table; over every bf16 shape both measured, 8% RMS. Timed warm
    (one weight back to back, the tables before this fix), the 1B's projections fit in L2, ran 1.13x faster
    on the H200 where the rule says 1.33x, and the 1B's GEMMs came out 15% fast."""
    from planner.cost.calibrated import GEMM_P
    src = Profile.load(ROOT / "planner" / "data" / "profiles" / "h100.json.gz")
    dst = Profile.load(ROOT / "lab" / "calibration" / "profile_h200.json.gz")
    assert (src.gpu, dst.gpu) == ("H100-SXM", "H200")
    for name in ("llama-3.2-1b", "llama-3.1-8b"):
        x, y = CalibratedCostModel(src, MODELS[name], H200), CalibratedCostModel(dst, MODELS[name], H200)
        for M in (1, 4, 16, 64, 128):
            pred = sum(x.gemm_on_target(M, n, k, x._gemm_time(M, n, k)) for n, k in x.roof.gemms)
            meas = sum(y._gemm_time(M, n, k) for n, k in y.roof.gemms)
            assert abs(pred / meas - 1) < 0.07, (name, M, pred / meas)
    h200 = {(r.n, r.k, r.m): r.seconds for r in dst.gemm if r.quantization == "bf16"}
    cal = CalibratedCostModel(src, M8, H200)
    errs = [cal.gemm_on_target(r.m, r.n, r.k, r.seconds, p=GEMM_P) / h200[(r.n, r.k, r.m)] - 1
            for r in src.gemm if r.quantization == "bf16" and r.m <= 128 and (r.n, r.k, r.m) in h200]
    assert len(errs) >= 400 and float(np.sqrt(np.mean(np.square(errs)))) < 0.08


def test_targets_are_the_issues_limits_and_markdown_marks_the_misses():
    from planner.validate import METRICS, limit, markdown, target_cells
    zero = {m: 0.0 for m in METRICS}
    below = {"model": "m", "run": "poisson-0.4", "load": 0.4, "offered_req_s": 1.0, "extrapolated": False,
             "calibrated_err": zero | {"e2e_p50": 0.06, "ttft_p95": 0.09, "tpot_p50": 0.3},
             "engine": zero | {"completed": 1}, "engine_replays": [zero], "engine_spread": zero}
    above = below | {"run": "poisson-1.3", "load": 1.3}
    other_gpu = below | {"extrapolated": True}
    assert (limit(below, "e2e_p50"), limit(below, "ttft_p50"), limit(above, "e2e_p95"),
            limit(other_gpu, "throughput_tok_s")) == (0.05, 0.10, 0.10, 0.10)
    cells = target_cells([below, above, other_gpu])
    assert len(cells) == 15  # TPOT is reported, not a target
    assert [(r["load"], r["extrapolated"], m) for r, m, e, lim in cells if abs(e) > lim] == [(0.4, False, "e2e_p50")]
    md = markdown([below, above, other_gpu])
    assert md.count("**+6.0%**") == 1 and "+30.0%" in md and "**+30.0%**" not in md
    assert "14 of 15 target cells within their limits." in md


def test_per_replay_targets_count_each_replay_alone():
    from planner.validate import METRICS, per_replay_targets
    one = {m: 1.0 for m in METRICS}
    row = {"model": "m", "run": "r", "load": 0.5, "calibrated": one,
           "engine_replays": [one, {m: 1.2 for m in METRICS}, one]}
    # the simulator equals replays 0 and 2; replay 1 is 20% higher: every target cell (TTFT 10%, rest 5%) misses
    assert per_replay_targets([row]) == [(5, 5), (0, 5), (5, 5)]


def test_median_interval_is_the_order_statistics_whose_binomial_coverage_reaches_the_level():
    from scipy.stats import binom

    from planner.validate import median_interval
    vals = [9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0, 10.0]  # n = 10, sorted 1..10
    lo, hi, cover = median_interval(vals, 0.90)
    # (3rd, 8th) covers 1 - 2 P(Bin(10, 1/2) <= 2) = 89.1% < 90%: the interval is (2nd, 9th), 97.9%
    assert (lo, hi) == (2.0, 9.0) and cover == pytest.approx(1 - 2 * binom.cdf(1, 10, 0.5))
    assert median_interval(vals, 0.85)[:2] == (3.0, 8.0)
    # too few runs for the level: the whole range, with the coverage it has
    lo, hi, cover = median_interval([1.0, 2.0, 3.0], 0.9)
    assert (lo, hi) == (1.0, 3.0) and cover == pytest.approx(0.75)
    # the coverage is real: draws from a skewed law, the true median inside at least 90% of the time
    rng = np.random.default_rng(0)
    inside = [lo <= np.log(2) <= hi for lo, hi, _ in (median_interval(rng.exponential(size=10)) for _ in range(4000))]
    assert np.mean(inside) >= 0.95
    with pytest.raises(ValueError, match="level"):
        median_interval(vals, 1.5)


def test_a_miss_is_within_noise_only_when_a_median_inside_the_interval_would_meet_the_limit():
    from planner.validate import METRICS, miss_lines, misses
    eng = [{m: v / 1e3 for m in METRICS} for v in (80.0, 85.0, 90.0, 95.0, 100.0, 105.0, 110.0, 115.0, 120.0, 200.0)]
    med = {m: 0.1025 for m in METRICS}

    def row(sim):
        return {"model": "m", "run": "r", "load": 0.8, "engine_replays": eng, "engine": med,
                "calibrated": {m: sim for m in METRICS},
                "calibrated_err": {m: (sim - 0.1025) / 0.1025 for m in METRICS}}
    # 88 ms is 14% under the median (a TTFT miss at 10%), but a median of 85-97.8 ms (inside 85-120) would pass
    near = [x for x in misses([row(0.088)]) if x["metric"] == "ttft_p95"][0]
    assert near["within_noise"] is True and (near["low"], near["high"]) == (0.085, 0.120)
    # 60 ms would need a median of at most 66.7 ms: below every run in the interval
    far = [x for x in misses([row(0.060)]) if x["metric"] == "ttft_p95"][0]
    assert far["within_noise"] is False
    assert misses([row(0.1025)]) == []
    # the line the CLI, the Markdown and the dashboard print for each miss
    near_line = [x for x in miss_lines([row(0.088)], "calibrated") if "ttft p95" in x][0]
    assert "simulated 88 ms, engine median 102 ms (-14.1%, limit 10%)" in near_line
    assert "98% interval over 10 runs 85-120 ms: inside the engine's own variation" in near_line
    assert "outside the engine's own variation" in [x for x in miss_lines([row(0.060)], "calibrated") if "ttft p95" in x][0]


@pytest.mark.parametrize("runs,result", [("h100", "validate_h100.json"),
                                         ("h200", "validate_h200_from_h100_profile.json")])
def test_committed_validation_results_are_what_validate_computes_now(runs, result):
    """The README's tables and the dashboard's panel read bench/results/validate_*.json: they must be what
    `planner validate --json` gives on the committed runs and profile today (the simulation is deterministic)."""
    import json
    committed = json.loads((ROOT / "planner" / "data" / "evidence" / result).read_text())
    fresh = validated(runs)
    assert [(r["model"], r["run"]) for r in committed] == [(r["model"], r["run"]) for r in fresh]
    for c, f in zip(committed, fresh):
        for cm in ("calibrated_err", "roofline_err"):
            for m, v in f[cm].items():
                assert c[cm][m] == pytest.approx(v, rel=1e-6, abs=1e-9), (c["model"], c["run"], cm, m)


def test_host_share_of_serving_iterations_is_reported_when_the_profile_times_the_gpu():
    from contract.profile import IterRow
    its = [IterRow(model=M8.name, tokens=b, decodes=b, chunks=0, decode_ctx=b * 500, prefill_ctx=0,
                   seconds=0.010, gpu_seconds=0.009) for b in (1, 8, 32, 64) for _ in range(10)]
    its += [IterRow(model=M8.name, tokens=600, decodes=88, chunks=1, decode_ctx=88 * 500, prefill_ctx=0,
                    seconds=0.030, gpu_seconds=0.024) for _ in range(10)]
    prof = synthetic_profile().model_copy(update={"iterations": its})
    cal = CalibratedCostModel(Profile.model_validate_json(prof.model_dump_json()), M8, H100)
    assert cal.host_share == {"decode": pytest.approx(0.10), "prefill": pytest.approx(0.20)}
    assert "host 10% of decode iterations, 20% of prefill iterations" in cal.description
    # profiles measured before the field: nothing claimed
    old = prof.model_copy(update={"iterations": [r.model_copy(update={"gpu_seconds": None}) for r in its]})
    assert CalibratedCostModel(old, M8, H100).host_share == {}


@pytest.mark.parametrize("name", ["llama-3.2-1b", "llama-3.1-8b"])
def test_decode_step_the_simulator_charges_is_the_composed_step_at_every_context(name):
    """The simulator charges decode steps by decode_time (piecewise linear in the total context, for
    fast-forward's closed-form sums); it must be the composed step it approximates. One line through two
    contexts lay 2-4% under it at 600-2000 tokens per sequence, biasing every simulated TPOT fast."""
    prof = Profile.load(ROOT / "planner" / "data" / "profiles" / "h100.json.gz")
    for gpu in (H100, H200):
        cal = CalibratedCostModel(prof, MODELS[name], gpu, max_num_batched_tokens=2048)
        for b in (1, 3, 8, 16, 24, 48, 64):
            for c in (5, 100, 300, 600, 1000, 1500, 2000, 3000, 6000, 12000):
                assert cal.decode_time(b, b * c) == pytest.approx(cal.time(b, b, b * c), rel=0.003), (gpu.name, b, c)


def test_pooled_profile_keeps_the_base_tables_and_every_calibrations_iterations():
    from contract.profile import pool_iterations
    a, b = synthetic_profile(), synthetic_profile(overhead=3e-4)
    its = Profile.load(ROOT / "lab" / "calibration" / "profile_h100_machine5.json.gz").iterations[:50]
    a = a.model_copy(update={"iterations": its[:20], "created": "A"})
    b = b.model_copy(update={"iterations": its[20:], "created": "B"})
    pooled = pool_iterations(a, [b])
    assert pooled.gemm == a.gemm and pooled.steps == a.steps
    assert pooled.iterations == its
    assert [s.split()[-1] for s in pooled.iteration_sources] == ["A", "B"]
    assert len(pool_iterations(pooled, [b]).iteration_sources) == 3  # a pool joins as its sources


@pytest.mark.parametrize("field,value", [("gpu", "H200"), ("kernels", True), ("piecewise_max_tokens", 4096)])
def test_pooling_refuses_calibrations_of_another_gpu_or_engine_setup_naming_the_field(field, value):
    from contract.profile import pool_iterations
    its = Profile.load(ROOT / "lab" / "calibration" / "profile_h100_machine5.json.gz").iterations[:10]
    base = synthetic_profile().model_copy(update={"iterations": its})
    other = base.model_copy(update={field: value})
    with pytest.raises(ValueError, match=f"other.json: {field} is"):
        pool_iterations(base, [other], ["other.json"])
    with pytest.raises(ValueError, match="no serving iterations"):
        pool_iterations(base, [base.model_copy(update={"iterations": []})])


def test_host_speed_warning_fires_on_a_host_slow_for_most_of_the_ramps_not_on_one_stall():
    from contract.profile import host_speed_spread, host_speed_warning
    assert host_speed_spread([2.0, 3.0, 2.5]) == pytest.approx(0.25)  # median 2.5 over fastest 2.0
    # machine 7's eight samples: one 5.51 ms stall, its profile fine -- no warning
    assert host_speed_warning([3.07e-3, 3.24e-3, 5.51e-3, 3.93e-3, 3.45e-3, 3.04e-3, 3.02e-3, 2.96e-3]) is None
    w = host_speed_warning([3.17e-3, 4.6e-3, 4.85e-3, 5.8e-3])  # slow through the ramps
    assert w is not None and "49% slower" in w and "median 4.72 ms" in w and "3.17-5.80 ms" in w
    assert "pool-profiles" in w
    assert host_speed_warning([3.17e-3, 4.6e-3, 4.85e-3, 5.8e-3], tolerance=0.6) is None
    with pytest.raises(ValueError, match="positive"):
        host_speed_spread([])
    with pytest.raises(ValueError, match="positive"):
        host_speed_spread([0.0, 1.0])


def test_profile_refuses_a_non_positive_host_benchmark_sample():
    from pydantic import ValidationError
    prof = Profile.load(PROFILES[0])
    with pytest.raises(ValidationError, match="host_bench_samples_s"):
        Profile.model_validate(prof.model_dump() | {"host_bench_samples_s": [3e-3, 0.0]})


H100_EXTRAS = ["h100x4_allreduce_graph.json.gz", "h100_shapes_qwen2.5-3b.json.gz", "h100_shapes_qwen2.5-7b.json.gz",
               "h100_shapes_qwen2.5-32b.json.gz", "h100_shapes_llama-70b-8b.json.gz",
               "h100x4_tp2_iterations_8b.json.gz", "h100x4_tp4_iterations.json.gz", "h100_fp8_int8_gemms.json.gz",
               "h100_attention_fp8kv.json.gz", "h100x4_tp2_iterations_8b_mns256.json.gz",
               "h100x4_tp4_iterations_8b_mns256.json.gz", "h100_fp8_int8_gemms_v3.json.gz",
               "h100_fp8_int8_gemms_v4.json.gz", "h100_fp8_int8_gemms_v5.json.gz",
               "h100_fp8_iterations_8b.json.gz", "h100_int8_iterations_8b.json.gz"]


def test_product_profile_is_the_pool_of_the_committed_h100_calibrations():
    """data/profiles/h100.json.gz = `planner pool-profiles` of the nine committed H100 calibrations (the first
    cold one's operator tables, every calibration's serving iterations), then `planner profile-add` of the
    extra tables in H100_EXTRAS, in that order (docs/validation_protocol.md, grids 3 and 4); v3, the FP8/INT8
    GEMMs of the engine's 8-bit-weight kernels (lab/device/round20), replaces the first FP8/INT8 table, and v4
    (round 25: INT8 dequantizes for cuBLAS from 256 rows) replaces v3's INT8 table, and v5 (round 28: split-K
    partials added inside the 8-bit-weight GEMM) replaces both; round 31 added the 8B's FP8 and INT8 serving
    iterations."""
    from contract.profile import add_tables, pool_iterations
    res = ROOT / "lab" / "calibration"
    names = ["first_cold", "warm_gemms", "second_machine", "third_machine", "machine4_run1", "machine4_run2",
             "machine5", "machine6", "machine7"]
    parts = [Profile.load(res / f"profile_h100_{n}.json.gz") for n in names]
    product = Profile.load(ROOT / "planner" / "data" / "profiles" / "h100.json.gz")
    expected = pool_iterations(parts[0], parts[1:])
    for extra in H100_EXTRAS:
        expected = add_tables(expected, Profile.load(res / "extra" / extra))
    assert product == expected
    assert len(product.iteration_sources) == 9 + len(H100_EXTRAS) and len({p.created for p in parts}) == 9


H200_EXTRAS = ["h200x4_fp8_int8_gemms.json.gz", "h200x4_allreduce.json.gz", "h200x2_allreduce_graph.json.gz",
               "h200x4_tp2_iterations_8b_mns256.json.gz", "h200_fp8_int8_gemms_v4.json.gz",
               "h200x4_allreduce_v2.json.gz", "h200_fp8_int8_gemms_v5.json.gz", "h200x4_tp4_iterations_8b_mns256.json.gz",
               "h200_fp8_iterations_8b.json.gz", "h200_int8_iterations_8b.json.gz", "h200_fp8_int8_gemms_v6.json.gz",
               ("h200_fp8_iterations_8b_v2.json.gz", "replace"), "h200_fp8_int8_gemms_v7.json.gz",
               ("h200_fp8_iterations_8b_v3.json.gz", "replace"), "h200_shapes_qwen2.5-7b.json.gz",
               "h200x2_fp8_tp2_iterations_8b.json.gz"]


def test_product_h200_profile_is_the_pool_of_the_committed_h200_calibrations():
    """data/profiles/h200.json.gz = `planner pool-profiles` of the three committed H200 calibrations, then
    `planner profile-add` of the extra tables in H200_EXTRAS, in that order; the TP=2 iterations were timed on an
    H200 host by a call whose command line said H100 (lab/device/round13_h200/), relabelled, never pooled as H100;
    round 24 (4x H200) added FP8/INT8 tables of the kernels of that day (replacing the first) and the in-graph TP=4
    all-reduce rows (its TP=2 and eager rows repeat tables the profile has and are not added); round 29 the tables
    of the kernels that add split-K partials in-kernel (replacing round 24's); round 33 (4x H200) the 8B's TP=4
    serving iterations (ramp to 256 sequences) and its FP8 and INT8 serving iterations; round 37 the FP8/INT8
    tables with FP8 W8A8 at 17-64 rows and the FP8 serving iterations of that engine, replacing round 33's; round
    42 the same two with W8A8 from 8 rows, replacing round 37's; round 48 the Qwen2.5-7B shape's bf16 GEMMs and
    attention layouts (grid 18's miss: a shape the profile had no table for); round 50 the 8B's FP8 serving
    iterations at TP=2 (kept by grid 21's registered rule)."""
    from contract.profile import add_tables, pool_iterations
    res = ROOT / "lab" / "calibration"
    parts = [Profile.load(res / f"profile_h200{n}.json.gz") for n in ("", "_machine3", "_warm_gemms")]
    expected = pool_iterations(parts[0], parts[1:])
    for extra in H200_EXTRAS:
        extra, how = extra if isinstance(extra, tuple) else (extra, "pool")
        x = Profile.load(res / "extra" / extra)
        assert x.gpu == "H200" and "H200" in x.device_name
        expected = add_tables(expected, x, replace_iterations=how == "replace")
    assert Profile.load(ROOT / "planner" / "data" / "profiles" / "h200.json.gz") == expected
    assert {(r.tp, r.graph) for r in expected.allreduce} == {(2, False), (4, False), (2, True), (4, True)}


def _planted_iterations(base: CalibratedCostModel, its, dec_true, pre_true, **update) -> list:
    """Serving iterations made of `base`'s own composed operators plus a known overhead (decode a + b x
    sequences; prefill a + b x tokens + c x chunks + d x sequences)."""
    planted = []
    for r in its:
        if r.chunks == 0:
            ops = base._ops_no_comm(r.decodes, r.decodes, r.decode_ctx, (), scaled=False)
            extra = dec_true[0] + dec_true[1] * r.decodes
        else:
            k = r.chunks
            pre = [((r.tokens - r.decodes) // k, r.prefill_ctx // k)] * k
            b = token_buckets(r.max_num_batched_tokens) if base._fit_buckets else None
            ops = base._ops_no_comm(r.tokens, r.decodes + k, r.decode_ctx, pre, scaled=False, buckets=b)
            a, pt, pc, ps = pre_true
            extra = a + pt * r.tokens + pc * k + ps * (r.decodes + k)
        planted.append(r.model_copy(update={"seconds": ops + extra, **update}))
    return planted


def test_overhead_fit_recovers_planted_overheads():
    """The method, not a snapshot: serving iterations made of the profile's own composed operators plus a
    known overhead must give that overhead back."""
    prof = Profile.load(PROFILES[0])
    name = "llama-3.1-8b"
    base = CalibratedCostModel(prof, MODELS[name], GPUS[prof.gpu],
                               max_num_batched_tokens=prof.iterations[0].max_num_batched_tokens)
    dec_true, pre_true = (2.0e-3, 1.5e-5), (4.0e-3, 2.0e-6, 3.0e-4, 2.5e-5)
    its = [r for r in prof.iterations if r.model == name and r.tp == 1]
    planted = _planted_iterations(base, its[::7], dec_true, pre_true)
    fit = CalibratedCostModel(prof.model_copy(update={"iterations": planted}), MODELS[name], GPUS[prof.gpu],
                              max_num_batched_tokens=prof.iterations[0].max_num_batched_tokens)
    assert fit.ovh["decode"] == pytest.approx(dec_true, rel=0.03, abs=1e-7)
    assert fit.ovh["prefill"] == pytest.approx(pre_true, rel=0.05, abs=1e-7)
    assert fit._dec_corr(1) == pytest.approx(0.0, abs=2e-5) and fit._dec_corr(64) == pytest.approx(0.0, abs=2e-5)


def test_quantized_serving_iterations_fit_the_quantized_overhead_and_leave_bf16_alone():
    """The method: FP8 serving iterations made of the profile's own FP8 operators plus a planted overhead (other
    than bf16's) give that overhead back to an FP8 prediction, which says what it was fitted on; the bf16 model
    keeps its fit; with fewer than 50 FP8 iterations an FP8 prediction falls back to the bf16 iterations' fit;
    `profile-add` keeps single-GPU FP8 iterations (and still not single-GPU bf16 ones)."""
    prof = _bf16_iterations_only(_h100_profile())
    name, gpu = "llama-3.1-8b", GPUS["H100-SXM"]
    its = [r for r in prof.iterations if r.model == name and r.tp == 1]
    mnbt = its[0].max_num_batched_tokens
    fp8 = CalibratedCostModel(prof, MODELS[name], gpu, quantization="fp8", max_num_batched_tokens=mnbt)
    bf16 = CalibratedCostModel(prof, MODELS[name], gpu, max_num_batched_tokens=mnbt)
    assert "overhead from bf16 serving iterations" in fp8.description
    dec_true, pre_true = (3.0e-3, 2.0e-5), (5.0e-3, 1.0e-6, 4.0e-4, 3.0e-5)
    planted = _planted_iterations(fp8, its[::9], dec_true, pre_true, quantization="fp8")
    assert len(planted) >= 50
    with_fp8 = prof.model_copy(update={"iterations": list(prof.iterations) + planted})
    fit = CalibratedCostModel(with_fp8, MODELS[name], gpu, quantization="fp8", max_num_batched_tokens=mnbt)
    assert fit.iteration_quant == "fp8" and f"fitted on {len(planted)} fp8 serving iterations" in fit.description
    assert fit.ovh["decode"] == pytest.approx(dec_true, rel=0.03, abs=1e-7)
    assert fit.ovh["prefill"] == pytest.approx(pre_true, rel=0.05, abs=1e-7)
    same = CalibratedCostModel(with_fp8, MODELS[name], gpu, max_num_batched_tokens=mnbt)
    assert same.ovh == bf16.ovh and same.iteration_quant == "bf16"
    few = prof.model_copy(update={"iterations": list(prof.iterations) + planted[:49]})
    back = CalibratedCostModel(few, MODELS[name], gpu, quantization="fp8", max_num_batched_tokens=mnbt)
    assert back.iteration_quant == "bf16" and back.ovh == fp8.ovh
    from contract.profile import add_tables
    extra = prof.model_copy(update={"gemm": [], "attention": [], "allreduce": [], "iterations": planted + its[:5]})
    merged = add_tables(prof, extra)
    assert len(merged.iterations) == len(prof.iterations) + len(planted)


def test_tp_overhead_fit_does_not_count_the_all_reduces_twice():
    """TP=2 serving iterations made of the profile's TP=2 operators, its all-reduces (the measured table) and a
    planted host overhead: the fit gives the planted overhead back, and a decode step is predicted as its
    iteration took. Fitting against the operators without the all-reduces (the defect this pins) put every TP
    decode step 0.8-1.1 ms too slow on the H100."""
    from planner.cost.calibrated import _pad
    prof = Profile.load(ROOT / "planner" / "data" / "profiles" / "h100.json.gz")
    name, gpu = "llama-3.1-8b", GPUS["H100-SXM"]
    its = [r for r in prof.iterations if r.model == name and r.tp == 2]
    assert len(its) >= 50 and any(r.graph for r in prof.allreduce)
    base = CalibratedCostModel(prof, MODELS[name], gpu, tp=2, max_num_batched_tokens=its[0].max_num_batched_tokens)
    dec_true, pre_true = (1.5e-3, 1.0e-5), (3.0e-3, 1.0e-6, 2.0e-4, 2.0e-5)
    planted = []
    for r in its[::5]:
        if r.chunks == 0:
            ops = base._ops_no_comm(r.decodes, r.decodes, r.decode_ctx, (), scaled=False) + base._allreduce(r.decodes)
            extra = dec_true[0] + dec_true[1] * r.decodes
        else:
            k = r.chunks
            pre = [((r.tokens - r.decodes) // k, r.prefill_ctx // k)] * k
            b = token_buckets(r.max_num_batched_tokens) if base._fit_buckets else None
            ops = base._ops_no_comm(r.tokens, r.decodes + k, r.decode_ctx, pre, scaled=False, buckets=b) \
                + base._allreduce(_pad(r.tokens, b))
            a, pt, pc, ps = pre_true
            extra = a + pt * r.tokens + pc * k + ps * (r.decodes + k)
        planted.append(r.model_copy(update={"seconds": ops + extra}))
    keep = [r for r in prof.iterations if r.tp == 1]
    fit = CalibratedCostModel(prof.model_copy(update={"iterations": keep + planted}), MODELS[name], gpu, tp=2,
                              max_num_batched_tokens=its[0].max_num_batched_tokens)
    assert fit.ovh["decode"] == pytest.approx(dec_true, rel=0.03, abs=1e-7)
    dec = [r for r in planted if r.chunks == 0 and r.decodes >= 8][:20]
    assert dec and all(fit.decode_time(r.decodes, r.decode_ctx) == pytest.approx(r.seconds, rel=0.03) for r in dec)


@pytest.mark.parametrize("name", ["llama-3.1-8b", "llama-3.2-1b"])
def test_roofline_decode_attention_is_near_the_measured_kernel_at_serving_contexts(name):
    """A direct check of the roofline's attention term (a planted 2x slowdown or speedup fails it): over the
    measured decode-attention rows of the H100 profile whose batch holds >= 32k context tokens (where the
    kernel streams K/V at a steady rate), the roofline's time over the measured time has a median in
    [0.6, 1.1] (measured: 0.86 for the 8B, 0.77 for the 1B -- the roofline is a bound, so at most a little
    above 1)."""
    prof = Profile.load(ROOT / "planner" / "data" / "profiles" / "h100.json.gz")
    m = MODELS[name]
    roof = RooflineCostModel(m, GPUS["H100-SXM"])
    rows = [a for a in prof.attention if a.kind == "decode" and a.heads == m.num_attention_heads
            and a.kv_heads == m.num_key_value_heads and a.head_dim == m.hd and a.a * a.context >= 32768]
    assert len(rows) >= 10
    ratio = np.median([a.a * a.context * roof.decode_attn_per_ctx / m.num_layers / a.seconds for a in rows])
    assert 0.6 <= ratio <= 1.1, ratio


def test_uncalibrated_model_takes_a_calibrated_models_overhead_scaled_by_shape():
    """A model the engine never ran (no iterations, no steps in the profile) takes the overhead of the nearest
    calibrated model: per-layer parts scaled by the layer count, per-sequence parts as measured, jitter ratios
    borrowed, and the description says TRANSFERRED."""
    prof = Profile.load(ROOT / "planner" / "data" / "profiles" / "h200.json.gz")
    q, m8 = MODELS["qwen2.5-7b"], MODELS["llama-3.1-8b"]
    donor = CalibratedCostModel(prof, m8, H200, max_num_batched_tokens=2048)
    cal = CalibratedCostModel(prof, q, H200, max_num_batched_tokens=2048)
    assert cal.overhead_from == "llama-3.1-8b" and "TRANSFERRED from llama-3.1-8b" in cal.description
    rl = q.num_layers / m8.num_layers
    assert cal.ovh["decode"][0] == pytest.approx(donor.ovh["decode"][0] * rl)
    assert cal.ovh["decode"][1] == pytest.approx(donor.ovh["decode"][1])
    assert cal.ovh["prefill"][3] == pytest.approx(donor.ovh["prefill"][3])
    assert set(cal.jitter_ratios) == {"decode", "prefill"}
    # a calibrated model keeps its own fit
    assert donor.overhead_from is None and donor.overhead_source == "iterations"


@functools.lru_cache(maxsize=None)
def _h100_profile() -> Profile:
    return Profile.load(ROOT / "planner" / "data" / "profiles" / "h100.json.gz")


def _bf16_iterations_only(prof: Profile) -> Profile:
    """The profile as if its FP8/INT8 engines had never been timed serving: their predictions then take the bf16
    iterations' overhead, so a change to an 8-bit table shows in the whole step."""
    return prof.model_copy(update={"iterations": [r for r in prof.iterations if r.quantization == "bf16"]})


def test_fp8_kv_decode_uses_its_own_measured_table_and_bf16_never_does():
    """An FP8 cache's decode attention comes from the profile's FP8 table where there is one (no halving on top),
    from the bf16 table with the bytes halved where there is none; a bf16 cache never reads FP8 rows."""
    from contract.profile import add_tables
    base = _h100_profile().model_copy(update={"attention": [r for r in _h100_profile().attention
                                                            if r.kv_dtype == "bf16"]})
    m, gpu = MODELS["llama-3.1-8b"], GPUS["H100-SXM"]
    # an FP8 table that reads exactly as slowly as bf16 does: the model must then predict no gain at all
    same = [r.model_copy(update={"kv_dtype": "fp8"}) for r in base.attention if r.kind == "decode"]
    extra = base.model_copy(update={"attention": same, "gemm": [], "allreduce": [], "iterations": []})
    with_fp8 = add_tables(base, extra)
    assert sum(r.kv_dtype == "fp8" for r in with_fp8.attention) == len(same)  # kept beside the bf16 rows
    ctx = 64 * 2000
    bf16 = CalibratedCostModel(base, m, gpu).decode_time(64, ctx)
    halved = CalibratedCostModel(base, m, gpu, kv_cache_dtype="fp8").decode_time(64, ctx)
    measured = CalibratedCostModel(with_fp8, m, gpu, kv_cache_dtype="fp8")
    assert "measured FP8 table" in measured.description
    # the host overhead is fitted on the serving iterations as they ran (bf16 cache), whatever is predicted
    assert measured.ovh == CalibratedCostModel(with_fp8, m, gpu).ovh
    assert CalibratedCostModel(base, m, gpu, kv_cache_dtype="fp8").ovh == measured.ovh
    assert measured.decode_time(64, ctx) == pytest.approx(bf16, rel=1e-9)
    assert halved < 0.9 * bf16  # the extrapolation: about half the attention's bytes saved
    # a slower FP8 table is charged as measured; the bf16 cache's prediction does not move with FP8 rows present
    slow = [r.model_copy(update={"seconds": 2 * r.seconds}) for r in same]
    slower = add_tables(base, extra.model_copy(update={"attention": slow}))
    assert CalibratedCostModel(slower, m, gpu, kv_cache_dtype="fp8").decode_time(64, ctx) > 1.2 * bf16
    assert CalibratedCostModel(slower, m, gpu).decode_time(64, ctx) == pytest.approx(bf16, rel=1e-9)
    # a serving stack's FP8-KV kernels are costed by bytes, not by this engine's FP8 table
    from planner.cost.stack import StackCostModel
    from planner.stacks import load_stack
    st = load_stack("trtllm")
    by_bytes = StackCostModel(base, m, gpu, st, kv_cache_dtype="fp8").decode_time(64, ctx)
    assert StackCostModel(slower, m, gpu, st, kv_cache_dtype="fp8").decode_time(64, ctx) == pytest.approx(by_bytes)


def test_re_measured_serving_iterations_of_a_format_replace_the_older_ones():
    """Serving iterations of one (weight format, TP degree) measured again pool with the profile's by default
    (another ramp of the same engine) and replace them when asked (the engine's kernels changed between them);
    the bf16 TP=1 iterations and the other formats stay either way."""
    from contract.profile import add_tables
    base = _h100_profile()
    fp8 = [r for r in base.iterations if r.quantization == "fp8" and r.tp == 1]
    assert fp8
    newer = [r.model_copy(update={"seconds": r.seconds * 0.9}) for r in fp8[: len(fp8) // 2]]
    extra = base.model_copy(update={"gemm": [], "attention": [], "allreduce": [], "iterations": newer})
    pooled = add_tables(base, extra)
    assert [r for r in pooled.iterations if r.quantization == "fp8" and r.tp == 1] == fp8 + newer
    merged = add_tables(base, extra, replace_iterations=True)
    assert [r for r in merged.iterations if r.quantization == "fp8" and r.tp == 1] == newer
    for key in {(r.quantization, r.tp) for r in base.iterations} - {("fp8", 1)}:
        assert [r for r in merged.iterations if (r.quantization, r.tp) == key] == \
            [r for r in base.iterations if (r.quantization, r.tp) == key]


def test_a_quantized_gemm_table_under_a_new_kernel_name_replaces_the_older_one():
    """One format, one table: re-measured FP8/INT8 GEMMs (the engine's kernels changed) replace the profile's
    earlier table of that format; the bf16 table and the other format stay."""
    from contract.profile import add_tables
    base = _bf16_iterations_only(_h100_profile())
    fp8 = [r for r in base.gemm if r.quantization == "fp8"]
    newer = [r.model_copy(update={"kernel": "newer kernels", "seconds": r.seconds / 2}) for r in fp8]
    extra = base.model_copy(update={"gemm": newer, "attention": [], "allreduce": [], "iterations": []})
    merged = add_tables(base, extra)
    assert {r.kernel for r in merged.gemm if r.quantization == "fp8"} == {"newer kernels"}
    assert sum(r.quantization == "fp8" for r in merged.gemm) == len(newer)
    for q in ("bf16", "int8"):
        assert [r for r in merged.gemm if r.quantization == q] == [r for r in base.gemm if r.quantization == q]
    m, gpu = MODELS["llama-3.1-8b"], GPUS["H100-SXM"]
    old_t = CalibratedCostModel(base, m, gpu, quantization="fp8").decode_time(64, 64 * 500)
    new_t = CalibratedCostModel(merged, m, gpu, quantization="fp8").decode_time(64, 64 * 500)
    assert new_t < old_t
    assert "newer kernels" in CalibratedCostModel(merged, m, gpu, quantization="fp8").description


def test_a_quantized_table_timed_with_replaced_kernels_is_called_so():
    """A profile's FP8/INT8 table is of the engine's current kernels or its answers say it is not (the H100
    profile's FP8 table predates the W8A8 path at 17-64 rows: no H100 was lent to re-measure it); the H200
    profile's are current; relabelled as an older kernel, the H200 table makes an FP8/INT8 answer say its table
    is from kernels the engine has since replaced; bf16 never does."""
    from contract.profile import ENGINE_GEMM_KERNELS
    m = MODELS["llama-3.1-8b"]
    h200 = Profile.load(ROOT / "planner" / "data" / "profiles" / "h200.json.gz")
    older = h200.model_copy(update={"gemm": [r.model_copy(update={"kernel": "w8a16"}) if r.quantization != "bf16"
                                             else r for r in h200.gemm]})
    for q in ("fp8", "int8"):
        assert {r.kernel for r in h200.gemm if r.quantization == q} == {ENGINE_GEMM_KERNELS[q]}
        for prof, gpu in ((_h100_profile(), "H100-SXM"), (h200, "H200")):
            current = {r.kernel for r in prof.gemm if r.quantization == q} == {ENGINE_GEMM_KERNELS[q]}
            said = "since replaced" in CalibratedCostModel(prof, m, GPUS[gpu], quantization=q).description
            assert said == (not current), (gpu, q)
        assert "since replaced" in CalibratedCostModel(older, m, GPUS["H200"], quantization=q).description
    assert "since replaced" not in CalibratedCostModel(older, m, GPUS["H200"]).description


def test_decode_attention_of_an_unmeasured_layout_carried_by_kv_bytes_and_query_heads(monkeypatch):
    """Operator level: the H100 profile's 15 layouts, each predicted from the one the model would stand in for it,
    are closer carried half by KV bytes and half by query heads than by either alone, and so are the H200's 5,
    which did not choose the weight. Serving level, grid 22's registered rule kept KV bytes alone (w = 0: 16 of 17
    TP=2 cells against 15), so that ships; the model's scale is the formula either way."""
    import statistics
    from lab.studies.attention_layouts.layout_transfer import transfer_errors
    med = {}
    for gpu in ("h100", "h200"):
        prof = Profile.load(ROOT / "planner" / "data" / "profiles" / f"{gpu}.json.gz")
        med[gpu] = {x: statistics.median(v[0] for v in transfer_errors(prof, x).values()) for x in (0.0, 0.5, 1.0)}
    assert med["h100"][0.5] < min(med["h100"][0.0], med["h100"][1.0]) and med["h100"][0.5] < 0.05
    assert med["h200"][0.5] < med["h200"][0.0]
    assert CalibratedCostModel.decode_layout_query_weight == 0.0
    prof = Profile.load(ROOT / "planner" / "data" / "profiles" / "h200.json.gz")
    for w in (0.0, 0.5):
        monkeypatch.setattr(CalibratedCostModel, "decode_layout_query_weight", w)
        tp2 = CalibratedCostModel(prof, MODELS["llama-3.1-8b"], GPUS["H200"], tp=2)  # 16/4 heads, from 28/4
        assert tp2.dec[1] == pytest.approx(1.0 ** (1 - w) * (16 / 28) ** w)
