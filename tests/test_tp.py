"""Tensor parallelism on the CPU (gloo): TP=2 gives TP=1's tokens; a dead rank fails the others fast."""
import json
import os
import socket
import time

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

PROMPTS = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [5, 6, 7], list(range(30, 80))]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _generate(rank: int, tp: int):
    from engine.config import tiny
    from engine.llm import LLM, EngineConfig
    from engine.sequence import SamplingParams
    from engine.weights import build_model
    m = build_model(tiny(), seed=3, dtype=torch.float64, rank=rank, tp=tp)  # float64: no argmax near-ties
    llm = LLM(EngineConfig(model="tiny", num_blocks=128, block_size=4, max_num_batched_tokens=16), model=m)
    return [s.output for s in llm.generate(PROMPTS, SamplingParams(max_tokens=12))]


def _worker(rank, world, port, out):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    from engine import parallel
    parallel.init(rank, world, backend="gloo", timeout_s=60)
    outs = _generate(rank, world)
    ar = parallel.measure_allreduce(sizes=(4096, 65536, 1 << 20), reps=3, dtype=torch.float32)
    with open(f"{out}.{rank}", "w") as fh:
        json.dump(outs, fh)
    with open(f"{out}.ar.{rank}", "w") as fh:
        json.dump(ar, fh)
    dist.barrier()  # both ranks done before either tears down: gloo can abort on a peer's early close
    os._exit(0)  # skip interpreter teardown of the process group (the SIGABRT seen once in CI)


def test_tp2_greedy_tokens_equal_tp1(tmp_path):
    ref = _generate(0, 1)
    out = str(tmp_path / "tp")
    mp.spawn(_worker, args=(2, _port(), out), nprocs=2, join=True)
    for r in (0, 1):
        assert json.load(open(f"{out}.{r}")) == ref
    # the all-reduce table for the calibration profile: every rank reports rank 0's rows, sizes as asked
    ar0, ar1 = (json.load(open(f"{out}.ar.{r}")) for r in (0, 1))
    assert ar0 == ar1
    assert [r["bytes"] for r in ar0] == [4096, 65536, 1 << 20] and all(r["tp"] == 2 and r["seconds"] > 0 for r in ar0)


def test_allreduce_table_measures_each_tp_degree_in_its_own_process_group():
    """What `engine calibrate` adds to a profile on a machine with several GPUs (NCCL there; gloo here)."""
    from engine.parallel import allreduce_table
    rows = allreduce_table(tps=(2,), backend="gloo", sizes=(4096, 1 << 16), reps=2)
    assert [(r["tp"], r["bytes"]) for r in rows] == [(2, 4096), (2, 1 << 16)]
    assert all(r["seconds"] > 0 for r in rows)
    with pytest.raises(ValueError, match="need more GPUs"):
        allreduce_table(tps=(64,))


def _dying(rank, world, port, out):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    from engine import parallel
    parallel.init(rank, world, backend="gloo", timeout_s=10)
    if rank == 1:
        os._exit(3)  # dies mid-job
    t = time.time()
    try:
        parallel.all_reduce(torch.ones(4))
        msg = "no error"
    except Exception as e:  # the survivor must fail, not hang
        msg = f"{type(e).__name__}: {e}"[:200]
    with open(out, "w") as fh:
        json.dump({"elapsed": time.time() - t, "error": msg}, fh)
    os._exit(0)


def test_a_dead_rank_makes_the_other_fail_within_the_timeout(tmp_path):
    out = str(tmp_path / "dying.json")
    ctx = mp.start_processes(_dying, args=(2, _port(), out), nprocs=2, join=False, start_method="spawn")
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.exists(out):
        time.sleep(0.2)
    for p in ctx.processes:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
    res = json.load(open(out))
    assert res["error"] != "no error" and res["elapsed"] < 15
