"""The lab's harness on the CPU: validation runs and their replays, with the tiny model."""
import gzip
import json

import numpy as np
import pytest
import torch

from engine.config import tiny
from engine.weights import build_model
from lab.validation_runs import KNOBS, replay_runs, write_trace
from planner.validate import engine_metrics, replay_records


def test_replay_runs_replays_a_committed_run_with_its_knobs_and_numbers_each_replay(tmp_path):
    """`python -m lab replays` serves a run's own trace again with its KV block count and writes each replay's
    records under the next free index, listing device and host CPU; `planner validate` then takes the median."""
    tr = {"t": np.array([0.0, 0.01, 0.03]), "in": np.array([12, 30, 7]), "out": np.array([5, 3, 8])}
    stem = "tiny_H100-SXM_poisson-0.4"
    write_trace(tmp_path / f"{stem}.trace.csv", tr)
    meta = {"model": "tiny", "gpu": "H100-SXM", "label": "poisson-0.4", "num_blocks": 64, "knobs": KNOBS,
            "offered_req_s": 100.0, "capacity_estimate_req_s": 250.0, "duration_s": 0.05, "kernels": False}
    (tmp_path / f"{stem}.meta.json").write_text(json.dumps(meta))
    m = build_model(tiny(), seed=1, dtype=torch.bfloat16)
    written = replay_runs(tmp_path, tmp_path, repeats=2, log=lambda *_: None, build=lambda name, meta: m)
    assert [p.name for p in written] == [f"{stem}.replay1.records.csv.gz", f"{stem}.replay2.records.csv.gz"]
    index = json.loads((tmp_path / f"{stem}.replays.json").read_text())
    assert [e["replay"] for e in index] == [1, 2] and all(e["host_cpu"] and e["os_kernel"] for e in index)
    assert all(e["host_bench_s"] > 0 for e in index)  # the host's speed beside each replay
    steps = gzip.open(tmp_path / f"{stem}.replay1.steps.csv.gz", "rt").read().splitlines()
    assert steps[0].startswith("start,end,") and len(steps) > 3  # each replay keeps its step log (host vs GPU)
    for p in written:
        rec = engine_metrics(p)
        assert rec["completed"] == 3
    # the committed run itself is the first of the replays validate reads
    (tmp_path / f"{stem}.records.csv").write_text(gzip.open(written[0], "rt").read())
    assert [p.name for p in replay_records(tmp_path, stem)] == [f"{stem}.records.csv", *[p.name for p in written]]
    more = replay_runs(tmp_path, tmp_path, repeats=1, log=lambda *_: None, build=lambda name, meta: m)
    assert more[0].name == f"{stem}.replay3.records.csv.gz"
    assert replay_runs(tmp_path, tmp_path, deadline_s=-1, log=lambda *_: None, build=lambda n, mt: m) == []
    with pytest.raises(ValueError, match="labels"):
        replay_runs(tmp_path, tmp_path, labels=("poisson-9",), log=lambda *_: None, build=lambda n, mt: m)


def test_mlperf_openorca_preset_is_the_committed_sample_scaled_to_mlperf_output_length():
    """planner/data/lengths.yaml's mlperf-openorca preset is what lab/tools/length_presets computes from the
    committed block sample: prompt quantiles as sampled, outputs of the sample's shape whose mean is MLPerf's
    required tokens per sample (within the rounding and the 1,024-token cap)."""
    import yaml

    from lab.tools.length_presets import MLPERF_LLAMA2_TOKENS_PER_SAMPLE, OPENORCA_SAMPLE, mlperf_openorca
    from lab.paths import ROOT
    committed = yaml.safe_load((ROOT / "planner" / "data" / "lengths.yaml").read_text())["presets"]
    assert committed["mlperf-openorca"] == mlperf_openorca()
    rows = [line for line in OPENORCA_SAMPLE.read_text().splitlines() if line and not line.startswith("#")][1:]
    ins = np.array([int(r.split(",")[0]) for r in rows])
    p = mlperf_openorca()
    assert p["stats"]["requests"] == len(ins) == 460
    assert p["input_tokens"]["quantiles"][-1][1] == ins.max() and p["stats"]["input_mean"] == round(ins.mean(), 1)
    assert abs(p["stats"]["output_mean"] / MLPERF_LLAMA2_TOKENS_PER_SAMPLE - 1) < 0.01
    assert max(v for _, v in p["output_tokens"]["quantiles"]) <= 1024


def test_arxiv_summarization_preset_is_the_committed_sample():
    """The arxiv-summarization preset's quantiles are the committed sample's (long prompts, short outputs)."""
    import yaml

    from lab.paths import ROOT
    from lab.tools.length_presets import ARXIV_SAMPLE, arxiv_summarization
    committed = yaml.safe_load((ROOT / "planner" / "data" / "lengths.yaml").read_text())["presets"]
    p = arxiv_summarization()
    assert committed["arxiv-summarization"] == p
    rows = [line.split(",") for line in ARXIV_SAMPLE.read_text().splitlines() if line and not line.startswith("#")][1:]
    x = np.array([int(a) for a, _ in rows])
    y = np.array([int(b) for _, b in rows])
    assert p["stats"]["requests"] == len(x) and p["stats"]["input_mean"] == round(x.mean(), 1)
    assert p["input_tokens"]["quantiles"][-1][1] == x.max() and p["output_tokens"]["quantiles"][-1][1] == y.max()
    assert np.median(x) > 10 * np.median(y)  # what the preset is for: prompts far longer than outputs
