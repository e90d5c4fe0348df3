"""The step-cost interface: how long one engine iteration takes, and where the time goes.

A step is described by its token count, the rows it samples, the summed context of its decoding
sequences, and its prompt chunks `(tokens, context before the chunk)`. Every model answers `time()` (the
simulator's hot path) and `breakdown()` (the same total split by operator, as Vidur's execution-time
predictors return it), so a report can say which operator a plan is paying for. Runs of decode steps
have closed-form sums (`decode_run_time`), which the simulator's fast-forward uses.
"""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Batch:
    prefill: tuple[tuple[int, int], ...] = ()  # (chunk tokens, tokens already in KV before the chunk)
    decode: tuple[int, ...] = ()  # context length of each decoding sequence
    sampled_prefills: int | None = None  # prefill chunks that finish their prompt (sample a token); default all

    @property
    def num_tokens(self) -> int:
        return sum(c for c, _ in self.prefill) + len(self.decode)

    @property
    def num_sampled(self) -> int:
        return len(self.decode) + (len(self.prefill) if self.sampled_prefills is None else self.sampled_prefills)


@dataclass(frozen=True)
class StepTime:
    """Seconds of one step by operator. `overhead` is everything outside the measured or modelled
    operators: host scheduling, launches, sampling, norms and other small kernels."""

    gemm: float = 0.0
    attention: float = 0.0
    allreduce: float = 0.0
    lm_head: float = 0.0
    elementwise: float = 0.0
    overhead: float = 0.0

    @property
    def total(self) -> float:
        return self.gemm + self.attention + self.allreduce + self.lm_head + self.elementwise + self.overhead

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"total": self.total}


class StepCostModel:
    """What the simulator calls. Subclasses implement `time` and `breakdown`; decode runs are summed here
    step by step unless a subclass has a closed form."""

    kind = "abstract"
    description = ""

    def time(self, num_tokens: int, num_sampled: int, decode_ctx_sum: int, prefill=()) -> float:
        raise NotImplementedError

    def breakdown(self, num_tokens: int, num_sampled: int, decode_ctx_sum: int, prefill=()) -> StepTime:
        raise NotImplementedError

    def step_time(self, batch: Batch) -> float:
        return self.time(batch.num_tokens, batch.num_sampled, sum(batch.decode), batch.prefill)

    def step_breakdown(self, batch: Batch) -> StepTime:
        return self.breakdown(batch.num_tokens, batch.num_sampled, sum(batch.decode), batch.prefill)

    def decode_time(self, batch_size: int, ctx_sum: int) -> float:
        return self.time(batch_size, batch_size, ctx_sum)

    def decode_run_time(self, batch_size: int, ctx_sum: int, steps: int) -> float:
        """Time of `steps` decode iterations where every context grows by one per step."""
        return sum(self.decode_time(batch_size, ctx_sum + j * batch_size) for j in range(steps))

    def decode_steps_within(self, batch_size: int, ctx_sum: int, max_steps: int, elapsed: float) -> int:
        """Largest j <= max_steps with decode_run_time(j) <= elapsed (binary search; run time grows with j)."""
        lo, hi = 0, max_steps
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.decode_run_time(batch_size, ctx_sum, mid) <= elapsed:
                lo = mid
            else:
                hi = mid - 1
        return lo


class ConstantCostModel(StepCostModel):
    """Every step takes the same time: for queueing-theory checks (M/D/1) and scheduler conformance."""

    kind = "constant"

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.description = f"constant {seconds * 1e3:.3g} ms/step"

    def time(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()):
        return self.seconds

    def breakdown(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()):
        return StepTime(overhead=self.seconds)

    def decode_run_time(self, batch_size, ctx_sum, steps):
        return self.seconds * steps


class ScaledCostModel(StepCostModel):
    """Another model's steps, each `factor` times as long: what an answer becomes if the steps are that much
    slower than modelled (held-out runs near saturation show a few per cent per step turning into tens of per
    cent of queueing, so a plan should say whether it survives that)."""

    def __init__(self, inner: StepCostModel, factor: float):
        if not factor > 0:
            raise ValueError(f"step-time factor must be positive, got {factor}")
        self.inner, self.factor = inner, factor
        self.kind = inner.kind
        self.description = f"{inner.description}, steps x{factor:.3g}"

    def __getattr__(self, name):  # what else the simulator reads (jitter ratios, flags) is the inner model's
        if name == "inner":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def time(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()):
        return self.factor * self.inner.time(num_tokens, num_sampled, decode_ctx_sum, prefill)

    def breakdown(self, num_tokens, num_sampled, decode_ctx_sum, prefill=()):
        b = self.inner.breakdown(num_tokens, num_sampled, decode_ctx_sum, prefill)
        return StepTime(**{k: v * self.factor for k, v in b.as_dict().items() if k != "total"})

    def decode_run_time(self, batch_size, ctx_sum, steps):
        return self.factor * self.inner.decode_run_time(batch_size, ctx_sum, steps)
