"""The arithmetic under every answer: memory, KV, and the roofline step cost."""
import pytest

from contract.catalog import GPUS, MODELS
from planner.cost import Batch, RooflineCostModel
from planner.memory import kv_bytes_per_token, plan, weight_bytes_per_gpu

M8, H100 = MODELS["llama-3.1-8b"], GPUS["H100-SXM"]


def test_kv_bytes_per_token_llama31_8b_bf16():
    assert kv_bytes_per_token(M8, "bf16") == 131072  # 2 x 32 layers x 8 heads x 128 x 2 bytes
    assert kv_bytes_per_token(M8, "fp8") == 65536
    assert kv_bytes_per_token(M8, "bf16", tp=2) == 65536


def test_catalog_parameter_counts_match_published_sizes():
    for name, billions in [("llama-2-7b", 6.74), ("llama-2-70b", 68.98), ("llama-3.1-8b", 8.03),
                           ("llama-3.1-70b", 70.55), ("llama-3.1-405b", 405.85)]:
        assert MODELS[name].num_params / 1e9 == pytest.approx(billions, abs=0.01)
    assert 215e9 < MODELS["gpt4-scale-220b"].num_params < 225e9


def test_quantization_shrinks_weights_with_scales_counted():
    bf16 = weight_bytes_per_gpu(M8, "bf16")
    assert bf16 == pytest.approx(M8.num_params * 2, rel=1e-9)
    lin = M8.num_layers * M8.linear_params_per_layer
    assert weight_bytes_per_gpu(M8, "int8") - bf16 == pytest.approx(lin * (1 + 2 / 128 - 2), rel=1e-9)
    assert weight_bytes_per_gpu(M8, "int4") < weight_bytes_per_gpu(M8, "fp8") < bf16


def test_tp2_halves_per_gpu_weights():
    one, two = weight_bytes_per_gpu(M8, "bf16", 1), weight_bytes_per_gpu(M8, "bf16", 2)
    norms = M8.norm_params * 2
    assert two - norms == pytest.approx((one - norms) / 2, rel=1e-9)


def _plan(**kw):
    args = dict(tp=1, quantization="bf16", kv_cache_dtype="auto", gpu_memory_utilization=0.9, block_size=16,
                max_num_batched_tokens=8192, max_num_seqs=256, max_model_len=8192, workspace_gib=1.5)
    return plan(M8, H100, **(args | kw))


def test_kv_blocks_follow_memory_left_over():
    p = _plan()
    assert p.num_blocks == int(p.kv_budget_bytes // (131072 * 16))
    assert _plan(gpu_memory_utilization=0.5).num_blocks < p.num_blocks
    assert _plan(kv_cache_dtype="fp8").num_blocks == pytest.approx(2 * p.num_blocks, abs=1)


def test_paged_fits_more_sequences_than_max_length_reservation():
    p = _plan()
    paged = p.sequences_that_fit([350])
    assert paged == p.num_blocks // 22  # 350 tokens -> 22 blocks of 16
    assert p.contiguous_sequences(8192) < paged / 20


def roofline(tp=1, **kw):
    return RooflineCostModel(M8, H100, tp=tp, **kw)


def test_batch1_decode_is_weight_bytes_over_achievable_bandwidth():
    c = roofline()
    weights_read = (M8.num_layers * M8.linear_params_per_layer + M8.vocab_size * M8.hidden_size) * 2
    expect = weights_read / (H100.hbm_bandwidth_gbps * 1e9 * 0.866)
    t = c.step_time(Batch(decode=(512,)))
    assert t == pytest.approx(expect, rel=0.05)
    assert t > expect  # KV, activations and overhead only add


def test_step_time_grows_with_batch_and_context():
    c = roofline()
    ts = [c.step_time(Batch(decode=(1000,) * b)) for b in (1, 8, 64, 256)]
    assert ts == sorted(ts) and ts[-1] > ts[0]
    cs = [c.step_time(Batch(decode=(ctx,) * 32)) for ctx in (100, 1000, 10000)]
    assert cs == sorted(cs) and cs[-1] > 1.2 * cs[0]


def test_long_prefill_is_compute_bound_and_short_decode_bandwidth_bound():
    c = roofline()
    assert c.gemm_bound(4096) == "compute"
    assert c.gemm_bound(4) == "bandwidth"
    # a compute-bound prefill scales ~linearly with tokens
    t1, t2 = c.step_time(Batch(prefill=((2048, 0),))), c.step_time(Batch(prefill=((4096, 0),)))
    assert 1.9 < t2 / t1 < 2.3


def test_tp2_halves_weight_time_and_adds_allreduce():
    one, two = roofline(1), roofline(2)
    b = Batch(decode=(512,))
    assert two.step_breakdown(b).allreduce > 0 and one.step_breakdown(b).allreduce == 0
    assert two.step_breakdown(b).gemm == pytest.approx(one.step_breakdown(b).gemm / 2, rel=0.02)
    assert one.step_time(b) / 2 < two.step_time(b) < one.step_time(b)


def test_decode_run_time_is_the_exact_sum_of_steps():
    c = roofline()
    for b, s, k in [(1, 300, 1), (7, 7 * 900, 33), (64, 64 * 2000, 500)]:
        assert c.decode_run_time(b, s, k) == pytest.approx(sum(c.decode_time(b, s + j * b) for j in range(k)),
                                                           rel=1e-12)
        total = c.decode_run_time(b, s, k)
        j = c.decode_steps_within(b, s, k, total * 0.5)
        assert c.decode_run_time(b, s, j) <= total * 0.5 < c.decode_run_time(b, s, j + 1)


def test_scaled_cost_model_scales_every_answer_by_its_factor():
    """The margin check's model: each step, its breakdown and a decode run's closed form, all x factor."""
    from planner.cost.base import ScaledCostModel
    base = RooflineCostModel(MODELS["llama-3.1-8b"], GPUS["H100-SXM"])
    slow = ScaledCostModel(base, 1.25)
    args = (300, 45, 40 * 700, [(256, 0)])
    assert slow.time(*args) == pytest.approx(1.25 * base.time(*args))
    assert slow.breakdown(*args).total == pytest.approx(1.25 * base.breakdown(*args).total)
    assert slow.breakdown(*args).gemm == pytest.approx(1.25 * base.breakdown(*args).gemm)
    assert slow.decode_run_time(32, 32 * 500, 20) == pytest.approx(1.25 * base.decode_run_time(32, 32 * 500, 20))
    with pytest.raises(ValueError):
        ScaledCostModel(base, 0.0)


def test_margin_check_needs_more_instances_for_slower_steps_and_none_more_for_none():
    """A throughput-bound plan: with no margin the check gives back the answer itself; with steps 30% slower the
    capacity per instance falls by that factor and more instances are needed."""
    from planner.scenario import scenario_from_dict
    from planner.sizing import size
    sc = scenario_from_dict({"name": "margin", "model": "llama-3.1-8b",
                             "fleet": {"gpu": "H100-SXM", "replicas": 4},
                             "workload": {"arrival": {"process": "poisson", "rate": 40.0},
                                          "input_tokens": {"dist": "fixed", "mean": 512},
                                          "output_tokens": {"dist": "fixed", "mean": 256}},
                             "slas": [{"metric": "e2e", "percentile": 95, "target_s": 60.0}],
                             "cost_model": {"kind": "roofline"}})
    rep0 = size(sc, with_alternatives=False, step_margin=1e-9)
    assert rep0.margin["instances_needed_at_peak"] == rep0.needed["with_sla_at_peak"]
    rep = size(sc, with_alternatives=False, step_margin=0.3)
    assert rep.margin["capacity_req_s"] == pytest.approx(rep.instance.capacity_req_s / 1.3, rel=1e-6)
    assert rep.margin["instances_needed_at_peak"] > rep.needed["with_sla_at_peak"]
    assert "30% slower" in " ".join(rep.notes)
    assert size(sc, with_alternatives=False, step_margin=0.0).margin is None
