"""The held-out runner (lab/heldout.py) end to end on the CPU with a tiny model: the grid's traces are a pure
function of the run id, two replicas serve the same requests, merge lays them out as `planner validate` reads
them and refuses replicas that served different traces."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from contract.catalog import MODELS, ModelSpec  # noqa: E402
from lab import heldout  # noqa: E402

TINY = ModelSpec(name="tiny-heldout", num_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, vocab_size=256, max_position_embeddings=512)


@pytest.fixture
def grid(monkeypatch):
    monkeypatch.setitem(MODELS, TINY.name, TINY)
    return {"duration_s": 1.0, "replicas": 2,
            "defaults": {"max_num_seqs": 8, "max_num_batched_tokens": 256, "enable_chunked_prefill": True,
                         "enable_prefix_caching": True, "max_model_len": 256},
            "lengths": {"short": {"input_tokens": {"dist": "uniform", "low": 8, "high": 24},
                                  "output_tokens": {"dist": "uniform", "low": 2, "high": 6}}},
            "runs": [{"id": "tiny-a", "list": "x", "model": TINY.name, "lengths": "short", "load": 0.002},
                     {"id": "tiny-b", "list": "y", "model": TINY.name, "lengths": "short", "load": 0.002}]}


def test_trace_is_a_function_of_the_run(grid):
    a, cap = heldout.trace_for(grid, grid["runs"][0])
    b, cap2 = heldout.trace_for(grid, grid["runs"][0])
    assert cap == cap2 > 0
    assert (a["t"] == b["t"]).all() and (a["in"] == b["in"]).all() and (a["out"] == b["out"]).all()
    assert (a["in"] + a["out"] <= grid["defaults"]["max_model_len"]).all()


def test_outputs_that_cannot_fit_are_refused_not_cut(grid):
    grid["lengths"]["short"]["output_tokens"] = {"dist": "fixed", "mean": 400}
    grid["runs"][0]["load"] = 0.1
    with pytest.raises(ValueError, match="max_model_len"):
        heldout.trace_for(grid, grid["runs"][0])


def test_two_replicas_served_and_merged(grid, tmp_path):
    for r in (0, 1):
        heldout.serve(grid, "x", r, tmp_path / f"lane{r}", deadline_s=600, log=lambda *_: None)
    heldout.serve(grid, "y", 0, tmp_path / "lane0", deadline_s=-1, log=lambda *_: None)  # past its deadline
    status = json.loads((tmp_path / "lane0" / "lane_y_r0.status.json").read_text())
    assert status == [{"id": "tiny-b", "status": "not run: deadline"}]
    meta = json.loads((tmp_path / "lane1" / "tiny-a.r1.meta.json").read_text())
    assert meta["completed"] == meta["requests"] > 0 and meta["knobs"]["max_num_seqs"] == 8
    kept = heldout.merge([tmp_path / "lane0", tmp_path / "lane1"], tmp_path / "merged", replicas=2)
    assert kept == ["tiny-a"]
    names = sorted(p.name for p in (tmp_path / "merged").iterdir())
    assert "tiny-a.records.csv.gz" in names and "tiny-a.replay1.records.csv.gz" in names
    assert "tiny-a.trace.csv" in names and "tiny-a.meta.json" in names
    # a replica that served another trace is not a replay of the same run
    t = tmp_path / "lane1" / "tiny-a.r1.trace.csv"
    t.write_text(t.read_text() + "9.9,5,5\n")
    assert heldout.merge([tmp_path / "lane0", tmp_path / "lane1"], tmp_path / "m2", replicas=2) == []
    assert "different traces" in (tmp_path / "m2" / "incomplete.txt").read_text()


def _row(load, cal, roof, eng=1.0):
    from planner.validate import METRICS
    mk = lambda v: {m: v for m in METRICS}  # noqa: E731
    return {"run": f"r{load}", "load": load, "grid_load": load, "engine": mk(eng),
            "engine_replays": [mk(eng * 0.9), mk(eng * 1.1)], "engine_spread": mk(0.2),
            "calibrated": mk(cal), "roofline": mk(roof)}


def test_protocol_scores_throughput_only_at_saturation_and_sets_trivial_cells_apart():
    from planner.validate import PROTOCOL_V1, protocol_cells
    low, high = protocol_cells([_row(0.5, 1.05, 1.05)]), protocol_cells([_row(0.95, 1.05, 2.0)])
    assert "throughput_tok_s" not in {c["metric"] for c in low}
    assert "throughput_tok_s" in {c["metric"] for c in high}
    # at load 0.5 with the roofline also within limits: TTFT cells are trivial, E2E and TPOT cells are not
    triv = {c["metric"] for c in low if c["trivial"]}
    assert triv == {"ttft_p50", "ttft_p95", "ttft_p99"}
    assert not any(c["trivial"] for c in high)  # the roofline misses every cell there
    # limits are the protocol's: +12% passes a 15% TTFT limit and fails a 10% E2E limit
    cells = {c["metric"]: c for c in protocol_cells([_row(0.95, 1.12, 2.0)])}
    assert cells["ttft_p50"]["ok"] and not cells["e2e_p50"]["ok"]
    assert cells["e2e_p99"]["limit"] == PROTOCOL_V1["e2e_p99"] == 0.20
    # against one replica instead of the median
    one = {c["metric"]: c for c in protocol_cells([_row(0.95, 1.0, 2.0)], ref=0)}
    assert one["e2e_p50"]["error"] == pytest.approx(1 / 0.9 - 1)


def test_runs_served_on_the_other_gpu_kind_are_scored_with_that_kinds_profile():
    """A lent machine of the other kind (asked H100, got H200) must not be scored as the grid's GPU."""
    from lab.heldout_score import profiles_for
    g = {"gpu": "H100-SXM", "profile": "planner/data/profiles/h100.json.gz",
         "cross_profile": "planner/data/profiles/h200.json.gz"}
    own = list(profiles_for(g, "H100-SXM").values())
    other = list(profiles_for(g, "H200").values())
    assert own[0].name == "h100.json.gz" and other[0].name == "h200.json.gz"
    assert other[1].name == "h100.json.gz"
    before = Path("/elsewhere/h100_before_round48.json.gz")  # a registered before-the-change comparison
    swapped = profiles_for(g, "H100-SXM", before)
    assert list(swapped.values()) == [before, own[1]]
    assert list(swapped)[0] == "H100-SXM profile as h100_before_round48.json.gz"
