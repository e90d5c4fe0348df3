"""The engine's scheduler and the simulator's replica are one policy: fed the same requests, they form the same
batches step by step -- which sequences run, how many tokens each, who is preempted, who finishes when.

The engine runs with a stand-in for its model runner (every sampled token is 0; nothing is computed); the
simulator runs step by step at a constant step cost. All requests arrive at time 0.
"""
import numpy as np
import pytest
import simpy
import torch

from contract.knobs import ServingKnobs
from engine.llm import LLM, EngineConfig
from engine.sequence import SamplingParams
from planner.cost import ConstantCostModel
from planner.sim.replica import Replica, ReplicaConfig
from planner.sim.request import Request


class RecordingRunner:
    """The model runner's interface without a model: records each batch, returns zero logits."""

    device = torch.device("cpu")

    def __init__(self, vocab: int):
        self.vocab, self.steps = vocab, []

    def forward(self, batch, dec_ids=None):
        self.steps.append(tuple(sorted((s.rid, n) for s, n in batch)))
        samplers = [s for s, n in batch if s.num_computed + n == s.num_tokens]
        return torch.zeros(len(samplers), self.vocab), samplers


def engine_run(knobs: ServingKnobs, blocks: int, lengths):
    runner = RecordingRunner(vocab=512)
    llm = LLM(EngineConfig(model="llama-3.2-1b", num_blocks=blocks + 1, **knobs.model_dump()), runner=runner)
    rng = np.random.default_rng(0)
    seqs = [llm.add(rng.integers(0, 500, n_in).tolist(), SamplingParams(max_tokens=n_out)) for n_in, n_out in lengths]
    rid = {s.rid: i for i, s in enumerate(seqs)}  # engine ids count globally; requests are numbered in order
    order = []
    while llm.sched.has_work:
        order += sorted(rid[s.rid] for s in llm.step())
    steps = [tuple(sorted((rid[r], n) for r, n in st)) for st in runner.steps]
    return steps, order, [s.preemptions for s in seqs], [s.status for s in seqs]


def sim_run(knobs: ServingKnobs, blocks: int, lengths):
    env = simpy.Environment()
    finished = []
    rep = Replica(env, 0, ReplicaConfig(knobs=knobs, num_blocks=blocks, fast_forward=False),
                  ConstantCostModel(1e-3), lambda r, s, status, reason: finished.append((env.now, s.req.rid, status)))
    rep.trace = []
    reqs = [Request(i, 0.0, n_in, n_out) for i, (n_in, n_out) in enumerate(lengths)]

    def arrive():
        yield env.timeout(0)
        for r in reqs:
            rep.submit(r, float("inf"))
    env.process(arrive())
    env.run(until=60)
    assert all(st == "completed" for _, _, st in finished) and len(finished) == len(reqs)
    order = [rid for _, rid in sorted((round(t, 9), rid) for t, rid, _ in finished)]
    return rep.trace, order, [r.preemptions for r in reqs]


CASES = {
    # a pool too small for the batch: decodes preempt the newest sequence, which is recomputed later
    "preemption": (ServingKnobs(max_num_seqs=8, max_num_batched_tokens=64, block_size=4,
                                enable_prefix_caching=False), 40,
                   [(20, 30), (9, 25), (33, 12), (5, 40), (17, 17), (28, 9), (12, 22), (3, 35)]),
    # long prompts chunked under the token budget, mixed with decodes; more requests than slots
    "chunked": (ServingKnobs(max_num_seqs=4, max_num_batched_tokens=48, block_size=8), 400,
                [(100, 6), (7, 20), (61, 3), (48, 9), (130, 2), (1, 14), (40, 1), (90, 12), (16, 16)]),
    # no chunking: a prompt is prefilled whole, in a step of its own
    "whole prompts": (ServingKnobs(max_num_seqs=6, max_num_batched_tokens=128, block_size=16,
                                   enable_chunked_prefill=False, max_model_len=128), 200,
                      [(120, 5), (10, 30), (64, 8), (127, 1), (33, 33), (2, 50)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_engine_scheduler_and_simulated_replica_form_the_same_batches(case):
    knobs, blocks, lengths = CASES[case]
    e_steps, e_order, e_pre, e_status = engine_run(knobs, blocks, lengths)
    s_steps, s_order, s_pre = sim_run(knobs, blocks, lengths)
    assert all(st == "completed" for st in e_status)
    assert len(e_steps) == len(s_steps)
    for i, (a, b) in enumerate(zip(e_steps, s_steps)):
        assert a == b, f"step {i}: engine {a} vs simulator {b}"
    assert e_order == s_order
    assert e_pre == s_pre
    if case == "preemption":
        assert sum(e_pre) > 0  # the case exercises what it is named for
    if case == "chunked":
        assert any(n not in (1, L) for st in e_steps for r, n in st for L in [lengths[r][0]])  # a partial chunk
