"""The engine on the CPU: token-for-token equal to transformers, and paging, prefix hits, preemption
and chunked prefill each leave the output unchanged."""
import tempfile

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st

from engine.block_manager import BlockManager  # noqa: E402
from engine.config import tiny  # noqa: E402
from engine.llm import LLM, EngineConfig, records  # noqa: E402
from engine.model import decode_attention, prefill_attention  # noqa: E402
from engine.quant import dequantize_int8, quantize_int8, quantize_model  # noqa: E402
from engine.sequence import SamplingParams, Sequence  # noqa: E402
from engine.weights import build_model, save_checkpoint  # noqa: E402

LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}
PROMPTS = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [5, 6, 7], list(range(30, 100)), [9] * 40]


@pytest.fixture(scope="module")
def model():
    m = build_model(tiny(rope_scaling=LLAMA3), seed=1, dtype=torch.float32)
    with torch.no_grad():  # larger weights than the 0.02 init, so greedy choices are not near-ties
        for n, p in m.named_parameters():
            if not n.endswith("norm.weight"):
                p.mul_(5)
    return m


def engine(model, **kw):
    cfg = dict(model="tiny", dtype="float32", num_blocks=256, block_size=4, max_num_batched_tokens=512)
    return LLM(EngineConfig(**(cfg | kw)), model=model)


def gen(model, prompts=PROMPTS, n=20, **kw):
    return [s.output for s in engine(model, **kw).generate(prompts, SamplingParams(max_tokens=n))]


def test_greedy_tokens_equal_transformers_llama(model):
    transformers = pytest.importorskip("transformers")
    d = tempfile.mkdtemp()
    save_checkpoint(model, d)
    hf = transformers.LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()
    ours = gen(model)
    for p, o in zip(PROMPTS, ours):
        ref = hf.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                          max_new_tokens=20, do_sample=False)[0, len(p):].tolist()
        assert o == ref
    # logits too, for the first prompt's first step
    llm = engine(model)
    s = llm.add(PROMPTS[2], SamplingParams(max_tokens=1))
    logits, _ = llm.runner.forward(llm.sched.schedule())
    with torch.no_grad():
        ref = hf(torch.tensor([PROMPTS[2]])).logits[0, -1]
    assert torch.allclose(logits[0], ref, atol=1e-4, rtol=1e-4)


def test_checkpoint_round_trip_loads_the_same_model(model):
    d = tempfile.mkdtemp()
    save_checkpoint(model, d)
    llm = LLM(EngineConfig(model=d, checkpoint=d, dtype="float32", num_blocks=256, block_size=4))
    assert [s.output for s in llm.generate(PROMPTS, SamplingParams(max_tokens=20))] == gen(model)


def test_padding_the_flat_batch_changes_nothing(model):
    assert gen(model, pad_tokens_to=64) == gen(model)


def test_chunked_prefill_and_whole_prefill_agree(model):
    ref = gen(model, max_num_batched_tokens=512)
    assert gen(model, max_num_batched_tokens=8) == ref
    assert gen(model, enable_chunked_prefill=False, max_num_batched_tokens=512) == ref


def test_prefix_cache_hit_leaves_output_unchanged(model):
    llm = engine(model)
    shared = list(range(200, 240))
    a = llm.generate([shared + [1, 2, 3]], SamplingParams(max_tokens=10))[0]
    b = llm.generate([shared + [7, 8]], SamplingParams(max_tokens=10))[0]
    assert b.prefix_hit_tokens == 40  # ten full blocks of 4
    fresh = engine(model, enable_prefix_caching=False).generate([shared + [7, 8]], SamplingParams(max_tokens=10))[0]
    assert b.output == fresh.output and a.output


def test_preemption_and_recompute_leave_output_unchanged(model):
    ref = gen(model, n=30)
    llm = engine(model, num_blocks=30)  # 29 usable blocks of 4 tokens: cannot hold all four sequences
    seqs = llm.generate(PROMPTS, SamplingParams(max_tokens=30))
    assert llm.sched.preemptions > 0
    assert [s.output for s in seqs] == ref
    llm.bm.check()
    assert llm.bm.available == llm.bm.num_blocks - 1


def test_async_decode_gives_the_same_tokens_and_launches_ahead(model):
    lens = [20, 7, 1, 33]  # sequences leave at different steps; one samples only its prefill token
    params = [SamplingParams(max_tokens=n) for n in lens]
    ref = [s.output for s in engine(model).generate(PROMPTS, params)]
    llm = engine(model, async_decode=True)
    assert [s.output for s in llm.generate(PROMPTS, params)] == ref
    assert llm.ahead_steps > 0
    assert llm.bm.available == llm.bm.num_blocks - 1
    # with preemptions (29 usable blocks) and prefix-cache hits on a second pass
    tight = engine(model, num_blocks=30, async_decode=True)
    for _ in range(2):
        assert [s.output for s in tight.generate(PROMPTS, SamplingParams(max_tokens=30))] == gen(model, n=30)
    assert tight.sched.preemptions > 0 and tight.ahead_steps > 0
    tight.bm.check()
    assert tight.bm.available == tight.bm.num_blocks - 1


def test_async_decode_admits_a_request_that_arrives_while_a_step_is_in_flight(model):
    llm = engine(model, async_decode=True)
    first = [llm.add(p, SamplingParams(max_tokens=12)) for p in PROMPTS[:2]]
    while llm._ahead is None:
        llm.step()
    late = llm.add(PROMPTS[2], SamplingParams(max_tokens=12))
    while llm.sched.has_work:
        llm.step()
    assert [s.output for s in first + [late]] == gen(model, PROMPTS[:3], n=12)
    assert all(s.status == "completed" for s in first + [late])


def test_two_pass_greedy_is_argmax_with_first_index_ties():
    from engine.model_runner import greedy
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 256 * 20, generator=g)
    x[0, 700] = x[0, 3000] = 9.0  # tie across chunks: the earlier wins
    x[1, 300] = x[1, 301] = 9.0  # tie inside a chunk
    x[2, 5119] = 9.0  # last element
    x[3] = 1.0  # all equal
    assert greedy(x).tolist() == x.argmax(-1).tolist() == [700, 300, 5119, 0, int(x[4].argmax())]
    assert greedy(x.to(torch.bfloat16)).tolist() == x.to(torch.bfloat16).argmax(-1).tolist()


def test_graph_decode_inputs_pack_ids_positions_slots_lengths_and_tables():
    """The one host array a decode graph replay copies in: laid out as the graph's static views expect, padding
    rows at slot 0 with length 1, and device-fed ids left to the device copy."""
    from engine.model_runner import ModelRunner

    class Replay:
        def replay(self):
            pass

    class Runner(ModelRunner):  # the packing only: no model, no CUDA graph
        def __init__(self):
            self.bs, self.graphs, self.widths, self.device = 4, {}, [], torch.device("cpu")

        def _capture(self, gb, width):
            p = torch.zeros(4 * gb + gb * width, dtype=torch.long)
            self.graphs[(gb, width)] = {"graph": Replay(), "static": {"packed": p, "ids": p[:gb]},
                                        "out": torch.zeros(gb, 3)}
            return self.graphs[(gb, width)]

    seqs = []
    for i, n in enumerate((5, 13, 20)):
        s = Sequence(list(range(100 + i, 100 + i + n)), SamplingParams())
        s.block_table = [7 * i + b + 1 for b in range(-(-n // 4))]
        s.num_computed = n - 1
        seqs.append(s)
    r = Runner()
    r._graph_decode(seqs)
    (gb, width), g = next(iter(r.graphs.items()))
    assert (gb, width) == (4, 16)
    v = g["static"]["packed"].tolist()
    assert v[:gb] == [s.tokens[-1] for s in seqs] + [0]
    assert v[gb:2 * gb] == [4, 12, 19, 0]
    assert v[2 * gb:3 * gb] == [s.block_table[(s.num_computed) // 4] * 4 + s.num_computed % 4 for s in seqs] + [0]
    assert v[3 * gb:4 * gb] == [5, 13, 20, 1]
    tabs = torch.tensor(v[4 * gb:]).view(gb, width).tolist()
    assert tabs == [s.block_table + [0] * (width - len(s.block_table)) for s in seqs] + [[0] * width]
    seqs[1].block_table.append(99)
    seqs[1].table_np = None  # as the block manager does whenever it changes a table
    r._graph_decode(seqs, dec_ids=torch.tensor([1, 2, 3]))
    v = g["static"]["packed"].tolist()
    assert v[:gb] == [1, 2, 3, 0] and torch.tensor(v[4 * gb:]).view(gb, width)[1, 4] == 99


def test_decode_graph_widths_double_up_to_the_longest_context():
    from engine.model_runner import width_buckets
    assert width_buckets(1024) == [16, 32, 64, 128, 256, 512, 1024]
    assert width_buckets(600) == [16, 32, 64, 128, 256, 512, 608]
    assert width_buckets(5) == [16]


def test_block_manager_keeps_cached_tables_and_hash_chains_true():
    """The host caches the runner and prefix cache lean on: a sequence's numpy table is dropped whenever its
    block table changes, and its cached hash chain equals a fresh one."""
    import numpy as np

    from engine.block_manager import block_hash
    bm = BlockManager(64, 4, True)
    s = Sequence(list(range(30)), SamplingParams())
    assert bm.allocate(s, 10)
    s.table_np = np.asarray(s.block_table)
    s.num_computed = 10
    assert bm.allocate(s, 2) and s.table_np is not None  # no new block (12 tokens in 3 blocks)
    s.num_computed = 12
    assert bm.allocate(s, 3) and s.table_np is None  # a fourth block
    s.num_computed = 15
    bm.commit(s)
    assert bm.allocate(s, 14)
    s.num_computed = 29
    bm.commit(s)
    h, fresh = None, []
    for i in range(7):
        h = block_hash(h, tuple(s.tokens[4 * i:4 * i + 4]))
        fresh.append(h)
    assert s.block_hashes == fresh
    s.table_np = np.asarray(s.block_table)
    bm.free_seq(s)
    assert s.table_np is None and s.block_hashes == fresh  # tokens are unchanged: the chain stays valid
    t = Sequence(list(range(30)) + [5], SamplingParams())
    assert bm.match_prefix(t) == 28 and t.table_np is None


def test_paged_attention_equals_contiguous():
    torch.manual_seed(0)
    bs, nblk, kvh, hd, qh = 4, 32, 2, 16, 4
    kc, vc = torch.randn(nblk, bs, kvh, hd), torch.randn(nblk, bs, kvh, hd)
    perm = torch.randperm(nblk - 1)[:10] + 1  # a scattered block table
    L = 37
    table = perm[: -(-L // bs)]
    k = kc[table].flatten(0, 1)[:L]
    v = vc[table].flatten(0, 1)[:L]
    q = torch.randn(1, qh, hd)
    ref = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(0, 1)[:, :, :], k.repeat_interleave(2, 1).transpose(0, 1), v.repeat_interleave(2, 1).transpose(0, 1))
    out = decode_attention(q, kc, vc, table[None, :], torch.tensor([L]), hd ** -0.5)
    assert torch.allclose(out[0], ref[:, 0], atol=1e-5)
    qs = torch.randn(5, qh, hd)  # a 5-token chunk after 32 cached tokens
    outp = prefill_attention(qs, kc, vc, table, L, L - 5, hd ** -0.5)
    kk, vv = k.repeat_interleave(2, 1).transpose(0, 1), v.repeat_interleave(2, 1).transpose(0, 1)
    mask = torch.arange(L)[None, :] <= torch.arange(L - 5, L)[:, None]
    refp = torch.nn.functional.scaled_dot_product_attention(qs.transpose(0, 1), kk, vv, attn_mask=mask)
    assert torch.allclose(outp, refp.transpose(0, 1), atol=1e-5)


def test_int8_quantization_is_close_and_halves_weights(model):
    w = torch.randn(64, 256)
    q, s = quantize_int8(w)
    assert q.dtype == torch.int8 and s.shape == (64, 2)
    assert (dequantize_int8(q, s) - w).abs().max() <= s.max() / 2 + 1e-6
    m = build_model(tiny(hidden=256, ffn=512), seed=2, dtype=torch.bfloat16)
    rep = quantize_model(m)
    assert 0.3 < rep["saved_fraction"] < 0.5  # embeddings and LM head stay 16-bit in this tiny shape


def test_bad_requests_fail_alone(model):
    llm = engine(model, max_model_len=64)
    good = llm.add([1, 2, 3], SamplingParams(max_tokens=5))
    bad = [llm.add([], SamplingParams(max_tokens=5)), llm.add([10**6], SamplingParams(max_tokens=5)),
           llm.add(list(range(100)), SamplingParams(max_tokens=5))]
    while llm.sched.has_work:
        llm.step()
    assert good.status == "completed" and len(good.output) == 5
    assert [b.status for b in bad] == ["failed"] * 3
    assert "empty prompt" in bad[0].reason and "out of range" in bad[1].reason and "max_model_len" in bad[2].reason
    huge = engine(model, num_blocks=8, max_model_len=4096)
    h = huge.add(list(range(60)), SamplingParams(max_tokens=5))
    ok = huge.add([4, 5], SamplingParams(max_tokens=3))
    while huge.sched.has_work:
        huge.step()
    assert h.status == "failed" and "KV" in h.reason and ok.status == "completed"


def test_sampling_is_seeded(model):
    p = SamplingParams(max_tokens=12, temperature=0.8, top_p=0.9, seed=5)
    a = engine(model).generate([PROMPTS[0]], p)[0].output
    b = engine(model).generate([PROMPTS[0]], p)[0].output
    assert a == b


def test_replay_records_have_the_simulators_columns(model):
    llm = engine(model)
    seqs = llm.replay([0.0, 0.01, 0.02], [5, 9, 3], [4, 6, 2])
    recs = records(seqs)
    from planner.sim.metrics import columns  # noqa: F401 (same names)
    assert all(r["status"] == "completed" for r in recs)
    assert all(r["arrival"] <= r["first_token"] <= r["finish"] for r in recs)
    assert [r["output_tokens"] for r in recs] == [4, 6, 2]


def test_replay_clock_starts_after_the_collectors_start_up_pass(model, monkeypatch):
    """The replay's t=0 is after quiet_gc's full collection: a slow collection (here 0.3 s) must not show up
    as queueing of the first requests in an idle engine (it did: 60-280 ms on the H100 runs)."""
    import contextlib
    import time as _time

    import engine.llm as L
    real = L.quiet_gc

    @contextlib.contextmanager
    def slow_gc():
        _time.sleep(0.3)
        with real():
            yield
    monkeypatch.setattr(L, "quiet_gc", slow_gc)
    llm = engine(model)
    llm.log_steps = True
    seqs = llm.replay([0.0, 0.001], [5, 9], [3, 3])
    assert max(s.scheduled - s.arrival for s in seqs) < 0.25
    for row in llm.step_log:  # start <= issued <= end, schedule before start; no GPU time off CUDA
        start, end, sched, issued, gpu = row[0], row[1], row[8], row[10], row[11]
        assert sched <= start <= issued <= end and gpu != gpu


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.sampled_from([0, 1, 2])), min_size=1, max_size=25))
def test_block_manager_never_double_owns_and_refcounts_return_to_zero(ops):
    bm = BlockManager(20, 4, True)
    live = []
    for n, prefix in ops:
        s = Sequence([prefix] * 8 + list(range(n)), SamplingParams())
        bm.match_prefix(s)
        if bm.allocate(s, s.uncomputed):
            s.num_computed = s.num_tokens
            bm.commit(s)
            live.append(s)
        else:
            bm.free_seq(s)
        if len(live) > 3:
            bm.free_seq(live.pop(0))
        bm.check()
        owned = [b for s in live for b in s.block_table]
        for b in set(owned):
            assert bm.ref[b] == owned.count(b)
    for s in live:
        bm.free_seq(s)
    bm.check()
    assert all(r == 0 for r in bm.ref) and bm.available == 19


def test_piecewise_pieces_compose_to_the_whole_model(model):
    """The piecewise-graph path (here its pieces run without capture) gives the eager forward's tokens on
    steps mixing decodes with several prompt chunks, padding to token buckets included."""
    from engine.piecewise import PiecewiseGraphs
    want = gen(model, max_num_batched_tokens=48)
    llm = engine(model, max_num_batched_tokens=48)
    llm.runner.piecewise = PiecewiseGraphs(model, llm.runner.kv, 48, graphs=False)
    got = [s.output for s in llm.generate(PROMPTS, SamplingParams(max_tokens=20))]
    assert llm.runner.piecewise.runs >= 3  # prompt chunks at 48 tokens: several steps took this path
    assert got == want


def test_prefill_pack_gathers_every_chunks_context_and_itself(model):
    """Two prompt chunks in one step, one continuing a prompt already half in the cache: each chunk's keys
    are exactly its sequence's slots 0..end, chunk after chunk, and the offsets line up."""
    llm = engine(model, max_num_batched_tokens=1000)
    a = llm.add(list(range(1, 31)), SamplingParams(max_tokens=2))
    b = llm.add(list(range(40, 52)), SamplingParams(max_tokens=2))
    llm.bm.allocate(a, 30)
    llm.bm.allocate(b, 12)
    a.num_computed = 18  # 18 tokens cached, 12 to go
    _, _, meta, _, _ = llm.runner.prepare([(a, 12), (b, 12)])
    p = meta.prefill
    bs = llm.cfg.block_size
    want = [a.block_table[i // bs] * bs + i % bs for i in range(30)] + \
        [b.block_table[i // bs] * bs + i % bs for i in range(12)]
    assert p.kv_slots.tolist() == want
    assert p.cu_q.tolist() == [0, 12, 24] and p.cu_k.tolist() == [0, 30, 42]
    assert (p.max_q, p.max_k, p.tokens) == (12, 30, 24)
    assert p.spans == [(0, 12, 0, 30), (12, 12, 30, 12)]


def test_prepare_packs_decodes_chunks_padding_and_sampled_rows_into_one_buffer(model):
    """One transfer carries the whole step: decode rows first (their newest token, position, slot, length
    and block table), then each chunk's tokens, positions and slots, then padding (token 0 into slot 0);
    the sampled rows are every decode and each chunk that ends its prompt."""
    llm = engine(model, max_num_batched_tokens=1000)
    a = llm.add(list(range(1, 31)), SamplingParams(max_tokens=2))
    b = llm.add(list(range(40, 52)), SamplingParams(max_tokens=2))
    c = llm.add([7, 8, 9, 10, 11, 12], SamplingParams(max_tokens=5))
    for s, n in ((a, 30), (b, 12), (c, 6)):
        llm.bm.allocate(s, n)
    a.num_computed, c.num_computed = 18, 5  # a: a middle chunk of 8; c: one decode at position 5
    ids, pos, meta, rows, samplers = llm.runner.prepare([(c, 1), (a, 8), (b, 12)], pad_to=32)
    bs = llm.cfg.block_size

    def slot(s, i):
        return s.block_table[i // bs] * bs + i % bs
    assert ids.tolist() == [12] + list(range(19, 27)) + list(range(40, 52)) + [0] * 11
    assert pos.tolist() == [5] + list(range(18, 26)) + list(range(12)) + [0] * 11
    assert meta.slot_mapping.tolist() == [slot(c, 5)] + [slot(a, i) for i in range(18, 26)] + \
        [slot(b, i) for i in range(12)] + [0] * 11
    assert rows.tolist() == [0, 20] and samplers == [c, b]  # a's chunk ends mid-prompt: nothing to sample
    assert meta.n_decode == 1 and meta.context_lens.tolist() == [6]
    assert meta.block_tables.tolist() == [c.block_table]
    assert meta.prefill.cu_q.tolist() == [0, 8, 20] and meta.prefill.cu_k.tolist() == [0, 26, 38]
    with pytest.raises(ValueError, match="pad_to"):
        llm.runner.prepare([(c, 1), (a, 8), (b, 12)], pad_to=16)


def test_serving_iterations_are_timed_schedule_to_schedule_and_leave_gpu_time_empty_off_cuda():
    """engine calibrate's ramp replay on the CPU with the tiny model: every iteration has its batch and a
    positive wall time; the forward's GPU time is only recorded where CUDA events exist."""
    from engine.calibrate import measure_iterations
    m = build_model(tiny(), seed=1, dtype=torch.bfloat16)
    rows = measure_iterations(m, 0.05, seconds=1.0, repeats=1, log=lambda *_: None)
    assert len(rows) > 50
    assert all(r.seconds > 0 and r.tokens >= r.decodes for r in rows)
    assert all(r.tokens == r.decodes for r in rows if not r.chunks)  # a decode-only step: one token each
    assert any(r.chunks for r in rows) and any(r.decodes and not r.chunks for r in rows)
    assert all(r.gpu_seconds is None for r in rows)


def test_gemm_calibration_cycles_enough_weight_copies_to_miss_l2():
    from engine.calibrate import COLD_BYTES, weight_copies
    assert weight_copies(2048, 8192) * 2048 * 8192 * 2 >= COLD_BYTES  # the 1B's down projection: 34 MB
    assert weight_copies(128256, 4096) == 1  # an lm_head is larger than the L2 on its own
    assert weight_copies(2048, 8192, elem_bytes=1) * 2048 * 8192 >= COLD_BYTES > weight_copies(2048, 8192) * 2048 * 8192
    assert weight_copies(16, 16) == 256  # capped: a tiny weight needs not a million copies


def test_calibrate_refuses_zero_ramps_naming_the_option():
    from typer.testing import CliRunner

    from engine.calibrate import calibrate
    from engine.cli import app
    res = CliRunner().invoke(app, ["calibrate", "--gpu", "H100-SXM", "--ramps", "0"])
    assert res.exit_code == 2 and "--ramps" in res.output
    with pytest.raises(ValueError, match="ramps must be at least 1"):
        calibrate("H100-SXM", ramps=0)


def test_host_benchmark_runs_a_fixed_workload_and_refuses_zero_repeats():
    """The same Python every time (its checksum is fixed), so its time says how fast the host is."""
    from engine.host_speed import _workload, host_benchmark
    assert _workload() == _workload() and _workload(n_seqs=8, steps=10) != _workload()
    assert host_benchmark(repeats=3) > 0
    with pytest.raises(ValueError, match="repeats"):
        host_benchmark(repeats=0)


def test_iteration_ramps_take_the_engine_batch_limit_and_weight_format_they_are_given(monkeypatch):
    """--ramp-max-seqs reaches the ramp's engine (and scales its rate with it), so a TP ramp can time the batches
    of 128-256 a plan uses instead of extrapolating the per-sequence host cost from 64; --quantization reaches it
    too (the rows say which format ran: the planner fits an FP8 engine's overhead on FP8 iterations)."""
    import engine.calibrate as cal
    from contract.profile import IterRow
    seen = []

    class Stop(Exception):
        pass

    def fake_llm(cfg, model=None):
        seen.append((cfg.max_num_seqs, cfg.quantization))
        raise Stop

    monkeypatch.setattr(cal, "LLM", fake_llm)
    monkeypatch.setattr(cal, "ramp_trace", lambda rate, seconds, seed: seen.append(rate) or {})
    for mns, q in ((None, "bf16"), (256, "fp8")):
        with pytest.raises(Stop):
            cal.measure_iterations(None, 0.01, repeats=1, log=lambda *_: None, name="llama-3.2-1b", max_num_seqs=mns,
                                   quantization=q)
    (rate64, cfg64), (rate256, cfg256) = seen[:2], seen[2:]
    assert (cfg64, cfg256) == ((64, "bf16"), (256, "fp8")) and rate256 == pytest.approx(4 * rate64)
    assert IterRow(model="m", tokens=1, decodes=1, chunks=0, decode_ctx=5, prefill_ctx=0,
                   seconds=1e-3).quantization == "bf16"


def test_timed_decode_steps_are_the_full_batch_decode_only_steps(model):
    """What the decode benchmarks time: schedule-to-schedule seconds of the steps with no prompt tokens at the full
    batch, each followed by another such step; the prefill step and the log switch are left as they were."""
    llm = engine(model)
    prompts = [[3, 4, 5, 6], [7, 8, 9], [10, 11], [12, 13, 14, 15, 16]]
    its, lg = llm.timed_decode_steps(prompts, 7)
    assert not llm.log_steps and len(lg) == len(llm.step_log)
    full = [r for r in lg if r[2] == 0 and r[3] == len(prompts)]
    assert any(r[2] > 0 for r in lg)  # the prompts' step is logged but not timed
    assert len(its) == len(full) - 1 >= 4 and all(t > 0 for t in its)
