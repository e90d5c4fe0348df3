"""A request inside the engine: its tokens, its KV blocks, and the times the planner's records need."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

_ids = itertools.count()


@dataclass
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    ignore_eos: bool = True
    eos_token_id: int | None = None
    seed: int | None = None


@dataclass(eq=False)  # identity semantics: `seq in running` must not compare token lists
class Sequence:
    prompt: list[int]
    params: SamplingParams
    arrival: float = 0.0
    rid: int = field(default_factory=lambda: next(_ids))
    output: list[int] = field(default_factory=list)
    block_table: list[int] = field(default_factory=list)
    num_computed: int = 0  # tokens whose KV is in the cache
    num_cached_blocks: int = 0  # leading blocks registered in (or taken from) the prefix cache
    status: str = "waiting"  # waiting | running, then a final status of contract.records.STATUSES
    reason: str = ""
    first_token: float | None = None
    finish: float | None = None
    scheduled: float | None = None
    preemptions: int = 0
    prefix_hit_tokens: int = 0
    tokens: list[int] = field(default_factory=list)  # prompt + output, kept in step with `output`
    # host-side caches (tokens never change once written, so neither do hashes of full blocks)
    block_hashes: list[int] = field(default_factory=list)  # chained hash of each full block, computed so far
    table_np: object = None  # numpy copy of block_table, None whenever the block manager changes the table

    def __post_init__(self):
        self.tokens = list(self.prompt) + list(self.output)

    def append(self, token: int) -> None:
        self.output.append(token)
        self.tokens.append(token)

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    @property
    def uncomputed(self) -> int:
        """Tokens not yet in KV. 1 is a decode step (feed the newest token); more is a (re)prefill.
        A step that feeds all of them samples the next token."""
        return self.num_tokens - self.num_computed

    @property
    def done(self) -> bool:
        return len(self.output) >= self.params.max_tokens or (
            not self.params.ignore_eos and self.output and self.output[-1] == self.params.eos_token_id)
