"""The design space a plan searches, defined once: GPU x TP x quantization x max_num_seqs x prefix caching x
spot share, from the scenario's `search` section. `planner size` sizes every candidate analytically;
`planner search` finds each one's smallest fleet by simulation."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from planner.memory import memory_plan


@dataclass(frozen=True)
class Candidate:
    gpu: str
    tp: int
    quantization: str
    max_num_seqs: int
    prefix_caching: bool
    spot_share: float = 0.0  # of each fleet, on spot replicas serving the spot tiers only

    def label(self) -> str:
        return (f"{self.gpu} TP{self.tp} {self.quantization} seqs{self.max_num_seqs}"
                + ("" if self.prefix_caching else " no-prefix-cache")
                + (f" spot{self.spot_share:g}" if self.spot_share else ""))


def configure(sc, c: Candidate, replicas: int | None = None):
    s = sc.model_copy(deep=True)
    f = s.fleet
    if c.gpu != f.gpu:
        f.price_per_gpu_hour = None  # a price given for one GPU does not carry to another
    f.gpu, f.tensor_parallel_size, f.quantization = c.gpu, c.tp, c.quantization
    f.max_num_seqs, f.enable_prefix_caching = c.max_num_seqs, c.prefix_caching
    f.max_num_batched_tokens = max(f.max_num_batched_tokens, c.max_num_seqs)
    if replicas is not None:
        spot = min(replicas - 1, round(c.spot_share * replicas)) if c.spot_share else 0
        f.replicas, f.spot_replicas = replicas - spot, spot
    return s


def candidates(sc) -> list[Candidate]:
    sp, f = sc.search, sc.fleet
    m = sc.model_spec()
    out = []
    shares = sp.spot_shares if sc.tiers else [0.0]
    for gpu, tp, q, mns, pc, spot in itertools.product(sp.gpus or [f.gpu], sp.tensor_parallel_sizes,
                                                       sp.quantizations, sp.max_num_seqs or [f.max_num_seqs],
                                                       sp.enable_prefix_caching or [f.enable_prefix_caching], shares):
        if m.tp_problem(tp):
            continue
        out.append(Candidate(gpu, tp, q, mns, pc, spot))
    return out


def fits(sc, c: Candidate) -> bool:
    plan = memory_plan(configure(sc, c))
    return plan.kv_budget_bytes > 0 and plan.max_seq_blocks <= plan.num_blocks
