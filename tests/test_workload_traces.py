"""Arrival processes, length distributions, trace loading and its errors, block-manager invariants."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from contract.traces import TraceError, load_trace
from planner.cli import app
from planner.scenario import Arrival, LengthDist, RateProfile, scenario_from_dict
from planner.sim import simulate
from planner.sim.block_manager import BlockManager
from planner.sim.workload import LengthSampler, open_loop_arrivals
from tests.conftest import TRACES


def test_poisson_and_gamma_have_the_asked_rate_and_cv():
    rng = np.random.default_rng(0)
    for proc, cv in (("poisson", 1.0), ("gamma", 3.0), ("gamma", 0.5)):
        a = Arrival(process=proc, rate=50, cv=cv)
        t = open_loop_arrivals(a, RateProfile(), 2000, rng)
        gaps = np.diff(t)
        assert len(t) / 2000 == pytest.approx(50, rel=0.03)
        assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.06)


def test_diurnal_profile_peaks_at_the_peak_factor():
    rng = np.random.default_rng(1)
    prof = RateProfile(kind="diurnal", peak_factor=1.8, period_s=1000)
    t = open_loop_arrivals(Arrival(process="poisson", rate=100), prof, 1000, rng)
    h, _ = np.histogram(t, bins=10, range=(0, 1000))
    assert len(t) / 1000 == pytest.approx(100, rel=0.03)
    assert h.max() / h.mean() == pytest.approx(1.8 * 0.97, rel=0.08)  # peak bin vs mean, 10 bins smooth the peak


def test_length_distributions():
    rng = np.random.default_rng(2)
    ln = LengthSampler(LengthDist(dist="lognormal", mean=500, cv=1.0), rng).sample(200000)
    assert ln.mean() == pytest.approx(500, rel=0.03) and ln.std() / ln.mean() == pytest.approx(1.0, rel=0.08)
    u = LengthSampler(LengthDist(dist="uniform", low=10, high=20), rng).sample(10000)
    assert u.min() == 10 and u.max() == 20
    capped = LengthSampler(LengthDist(dist="lognormal", mean=500, cv=2.0, max=800), rng).sample(10000)
    assert capped.max() <= 800 and (capped == 800).mean() < 0.01  # redrawn, not clamped


def test_azure_traces_load_as_published():
    tr = TRACES
    """Snapshot of the vendored slices (tests/data/traces/README.md): every row read, the published columns
    mapped, ISO time stamps turned into seconds from the first request."""
    code = load_trace(str(tr / "azure_code_first10min.csv"))
    conv = load_trace(str(tr / "azure_conv_first5min.csv"))
    assert len(code.input_tokens) == 1482 and len(conv.input_tokens) == 1445
    assert code.input_tokens.mean() == pytest.approx(2077.0, rel=1e-3)
    assert conv.output_tokens.mean() == pytest.approx(254.03, rel=1e-3)
    assert conv.timestamps[0] == 0 and conv.timestamps[-1] < 300
    assert len(conv.timestamps) / conv.timestamps[-1] == pytest.approx(4.82, rel=0.01)
    mc = load_trace(str(tr / "mooncake_conversation_first5min.jsonl"))
    assert mc.hash_ids is not None and len(mc.input_tokens) == 918
    sg = load_trace(str(tr / "sharegpt_lengths_first3000.csv"))
    assert sg.timestamps is None and sg.input_tokens.mean() == pytest.approx(2319.1, rel=1e-3)


def test_trace_replay_and_empirical_lengths(tmp_path):
    tr = TRACES
    sc = scenario_from_dict({"model": "llama-3.1-8b",
                             "workload": {"arrival": {"process": "trace",
                                                      "trace": str(tr / "azure_conv_first5min.csv")}},
                             "fleet": {"gpu": "H100-SXM", "replicas": 4},
                             "sim": {"duration_s": 120, "warmup_s": 10}})
    cl, s = simulate(sc)
    t = load_trace(str(tr / "azure_conv_first5min.csv"))
    assert s["requests"] == int((t.timestamps < 120).sum())
    got = sorted(r.arrival for r in cl.records)
    assert np.allclose(got, t.timestamps[t.timestamps < 120])  # replayed at the trace's own timestamps
    sc2 = scenario_from_dict({"model": "llama-3.1-8b",
                              "workload": {"arrival": {"process": "poisson", "rate": 5},
                                           "input_tokens": {"dist": "empirical", "column": "num_prefill_tokens",
                                                            "trace": str(tr / "sharegpt_lengths_first3000.csv"),
                                                            "max": 8000}},
                              "fleet": {"gpu": "H100-SXM"}, "sim": {"duration_s": 200, "warmup_s": 10}})
    cl, s = simulate(sc2)
    assert s["status"]["completed"] > 0


def test_mooncake_replay_reuses_prefix_blocks():
    tr = TRACES
    sc = scenario_from_dict({"model": "llama-3.1-8b",
                             "workload": {"arrival": {"process": "trace",
                                                      "trace": str(tr / "mooncake_conversation_first5min.jsonl")}},
                             "fleet": {"gpu": "H200", "replicas": 4, "max_model_len": 131072},
                             "router": {"policy": "least_outstanding_tokens"},
                             "sim": {"duration_s": 120, "warmup_s": 10}})
    _, s = simulate(sc)
    assert s["prefix_hit_token_fraction"] > 0.03
    sc.fleet.enable_prefix_caching = False
    _, s = simulate(sc)
    assert s["prefix_hit_token_fraction"] == 0


@pytest.mark.parametrize("content,msg", [
    ("TIMESTAMP,ContextTokens\n2023-11-16 18:00:00,5\n", "missing column(s) GeneratedTokens"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,5,3\n2023-11-16 18:00:01,7,-2\n",
     "line 3: GeneratedTokens is negative"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,five,3\n", "line 2: ContextTokens is not a number"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,5,3\n", "line 2: TIMESTAMP 'yesterday'"),
    ("", "file is empty"),
])
def test_bad_traces_name_the_line_and_column(tmp_path, content, msg):
    p = tmp_path / "t.csv"
    p.write_text(content)
    load_trace.cache_clear()
    with pytest.raises(TraceError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        load_trace(str(p))


def test_bad_trace_through_the_cli_exits_nonzero(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"\xff\xfe\x00garbage")
    sc = tmp_path / "s.yaml"
    sc.write_text(f"model: llama-3.1-8b\nworkload:\n  arrival: {{process: trace, trace: {p}}}\n")
    res = CliRunner().invoke(app, ["simulate", str(sc), "--no-progress"])
    assert res.exit_code == 2 and "unreadable" in res.output and "Traceback" not in res.output


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["alloc", "free", "prefix"]), st.integers(0, 6), st.integers(0, 5)),
                max_size=60))
def test_block_manager_invariants_under_random_schedules(ops):
    bm = BlockManager(24, 16, True)
    live = []  # (private, keys)
    for op, a, b in ops:
        if op == "alloc" and bm.allocate(a):
            live.append([a, []])
        elif op == "prefix":
            keys = [hash(("p", b, i)) for i in range(a)]
            hit = bm.match(keys)
            bm.acquire(keys[:hit])
            seq = [0, list(keys[:hit])]
            for k in keys[hit:]:  # compute the rest privately, then publish
                if not bm.allocate(1):
                    break
                seq[0] += 1
                if bm.register(k):
                    seq[0] -= 1
                    seq[1].append(k)
            live.append(seq)
        elif op == "free" and live:
            p, ks = live.pop(a % len(live))
            bm.release(p, ks)
        bm.check()
        owned = sum(p for p, _ in live)
        assert bm.free + owned + len(bm.ref) == bm.num_blocks  # every block has exactly one owner
    for p, ks in live:
        bm.release(p, ks)
    bm.check()
    assert all(c == 0 for c in bm.ref.values()) and bm.available == bm.num_blocks
