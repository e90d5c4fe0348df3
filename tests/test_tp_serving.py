"""Tensor-parallel serving on the CPU (gloo): the scheduler on rank 0, one worker process per other rank, the step
plan broadcast each iteration. Same greedy tokens as one process; a killed rank stops the engine with a clear
error and leaves no process behind."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

torch = pytest.importorskip("torch")

from engine.config import EngineConfig, tiny  # noqa: E402
from engine.llm import LLM  # noqa: E402
from engine.sequence import SamplingParams  # noqa: E402
from engine.weights import build_model, save_checkpoint  # noqa: E402

PROMPTS = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [5, 6, 7], list(range(30, 80)), [9] * 21]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    save_checkpoint(build_model(tiny(), seed=3, dtype=torch.float32), str(d))
    return str(d)


def cfg(checkpoint, tp, **kw):
    return EngineConfig(model="tiny", checkpoint=checkpoint, dtype="float64", device="cpu", num_blocks=64,
                        block_size=4, max_num_batched_tokens=16, max_num_seqs=3, tensor_parallel_size=tp,
                        tp_timeout_s=20, **kw)


def test_tp2_serving_gives_tp1_greedy_tokens_with_the_plan_broadcast_each_step(checkpoint):
    params = SamplingParams(max_tokens=12)
    with LLM(cfg(checkpoint, 1)) as one:
        ref = [s.output for s in one.generate(PROMPTS, params)]
    with LLM(cfg(checkpoint, 2)) as two:
        assert two.tp is not None and len(two.tp.procs) == 1 and two.tp.procs[0].is_alive()
        got = [s.output for s in two.generate(PROMPTS, params)]
        steps = two.steps
        procs = two.tp.procs
    assert got == ref
    assert steps > len(PROMPTS)  # chunked prompts, a full batch and preemption-free decodes: many plans
    assert all(not p.is_alive() for p in procs)  # shutdown ends the workers


def test_tp2_piecewise_path_with_its_all_reduces_gives_tp1_tokens(checkpoint):
    """Steps with a prefill through the piecewise pieces (uncaptured here; on GPUs each piece is a CUDA graph
    holding its all-reduces): the vocabulary-parallel embedding, the row-parallel O and down projections and
    the vocabulary gather must all be in the pieces, or TP=2 drifts from TP=1."""
    params = SamplingParams(max_tokens=10)
    with LLM(cfg(checkpoint, 1)) as one:
        ref = [s.output for s in one.generate(PROMPTS, params)]
    with LLM(cfg(checkpoint, 2, piecewise_uncaptured=True)) as two:
        got = [s.output for s in two.generate(PROMPTS, params)]
        runs = two.runner.piecewise.runs
    assert runs > 0
    assert got == ref


def test_tp2_replays_a_trace_in_real_time(checkpoint):
    with LLM(cfg(checkpoint, 2)) as llm:
        seqs = llm.replay([0.0, 0.01, 0.02, 0.05], [13, 3, 50, 21], [6, 9, 4, 12])
    assert [s.status for s in seqs] == ["completed"] * 4
    assert [len(s.output) for s in seqs] == [6, 9, 4, 12]


SERVE = textwrap.dedent("""
    import json, sys, time
    from engine.config import EngineConfig
    from engine.llm import LLM
    from engine.sequence import SamplingParams
    cfg = EngineConfig(model="tiny", checkpoint=sys.argv[1], dtype="float32", device="cpu", num_blocks=64,
                       block_size=4, max_num_batched_tokens=16, max_num_seqs=3, tensor_parallel_size=2,
                       tp_timeout_s=20)
    llm = LLM(cfg)
    print(json.dumps({"workers": [p.pid for p in llm.tp.procs]}), flush=True)
    t = time.time()
    try:
        while time.time() - t < 60:
            llm.generate([[1, 2, 3]] * 3, SamplingParams(max_tokens=40))
    except RuntimeError as e:
        print(f"engine stopped: {e}", file=sys.stderr, flush=True)
        llm.shutdown()
        sys.exit(4)
""")


def test_a_killed_rank_stops_the_engine_with_a_clear_error_and_leaves_no_process(checkpoint, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SERVE)
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(script), checkpoint], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    workers = json.loads(line)["workers"]
    time.sleep(1.0)  # serving
    t = time.time()
    os.kill(workers[0], signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the engine did not stop within 30 s of a rank's death")
    elapsed = time.time() - t
    assert proc.returncode != 0
    assert "tensor-parallel rank 1" in err and "died" in err, err[-2000:]
    assert elapsed < 25
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_only_a_process_that_was_nccl_rank_0_skips_interpreter_teardown(checkpoint, monkeypatch):
    """A gloo (CPU) TP engine leaves the process to end normally; once rank 0 of an NCCL group ran, the engine
    CLI ends without teardown (its communicators may never let go: exit 134 after `calibrate --extra --tp 2`)."""
    from engine import tp
    with LLM(cfg(checkpoint, 2)) as llm:
        llm.generate(PROMPTS[:1], SamplingParams(max_tokens=2))
    assert tp.NCCL_RAN["rank0"] is False
    tp.end_process(0)  # returns: nothing to skip
    ended = []
    monkeypatch.setattr(tp.os, "_exit", lambda code: ended.append(code))
    monkeypatch.setitem(tp.NCCL_RAN, "rank0", True)
    tp.end_process(0)
    assert ended == [0]
