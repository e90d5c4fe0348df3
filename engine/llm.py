"""The engine's front end: offline generate(prompts), and trace replay in real time.

Each request ends with arrival, first-token and finish times in the simulator's record format, so
`planner validate` can compare the two run for run.
"""
from __future__ import annotations

import contextlib
import gc
import time

import torch

from engine.block_manager import BlockManager
from engine.config import EngineConfig, resolve
from engine.model_runner import greedy, sample
from engine.scheduler import Scheduler
from engine.sequence import SamplingParams, Sequence
from engine.shard import build_shard
from engine.tp import TensorParallel


class LLM:
    """schedule -> run -> postprocess, one iteration per `step()`.

    runner: a stand-in for the model runner (anything with `forward(batch) -> (logits, samplers)` and
    `device`), for tests of the scheduling alone; the KV pool is then `cfg.num_blocks` blocks."""

    def __init__(self, cfg: EngineConfig | None = None, model=None, runner=None, **kw):
        cfg = cfg or EngineConfig(**kw)
        self.cfg = cfg
        self.spec = model.spec if model is not None else resolve(cfg.checkpoint or cfg.model)
        self.max_model_len = cfg.max_model_len or self.spec.max_position_embeddings
        self.quant_report = None
        self.kernels_active = False
        self.graphs_at_start = 0
        self.tp = None
        if runner is not None:
            if cfg.num_blocks is None:
                raise ValueError("num_blocks: give the KV pool's size when the model runner is a stand-in")
            self.model, self.runner, self.num_blocks = model, runner, cfg.num_blocks
        else:
            self._build(model)
        self.bm = BlockManager(self.num_blocks, cfg.block_size, cfg.enable_prefix_caching)
        self.t0 = time.perf_counter()
        t0 = self._t0 = [self.t0]  # a shared cell, so the scheduler's clock holds no reference to the LLM
        self.sched = Scheduler(cfg, self.bm, lambda: time.perf_counter() - t0[0])
        self.generators: dict = {}
        self.steps = 0
        # when log_steps: (start, end, prefill tokens, decodes, graph, prompt chunks, decode context sum,
        # prefill context before the chunks, schedule start, whether the engine sat idle before it, when the
        # host had issued the forward, GPU seconds between events around the forward -- NaN off CUDA)
        self.step_log: list[list] = []
        self._idle = True
        self.log_steps = False
        self._ahead = None  # (batch, samplers, device tokens, start, events) of a step launched ahead
        self._ev_pending: list = []  # (step log row, timing events) not read yet
        self.ahead_steps = 0

    def _build(self, model) -> None:
        """This process's shard (all of the model on one GPU); under tensor parallelism, the workers too."""
        cfg = self.cfg
        if cfg.tensor_parallel_size > 1:
            self.tp = TensorParallel(cfg)
            dev = self.tp.dev
        else:
            dev = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        shard = build_shard(cfg, self.spec, 0, dev, model, self.max_model_len)
        if self.tp is not None:
            self.tp.ready()
        self.model, self.runner, self.num_blocks = shard.model, shard.runner, shard.num_blocks
        self.quant_report, self.kernels_active, self.graphs_at_start = \
            shard.quant_report, shard.kernels_active, shard.graphs_at_start

    def shutdown(self) -> None:
        """Stop the tensor-parallel workers (nothing to do on one GPU)."""
        if self.tp is not None:
            self.tp.close()
            self.tp = None

    def __enter__(self) -> "LLM":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def _events(self):
        """A fresh pair of timing events around a forward (step logs on CUDA only): the GPU's view of a step,
        to tell host stalls from device ones."""
        if self.runner.device.type != "cuda":
            return None
        return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def resolve_step_log(self, wait: bool = True) -> None:
        """Fill in the GPU seconds of logged steps whose events have completed (all of them with wait)."""
        if wait and self._ev_pending:
            torch.cuda.synchronize()
        keep = []
        for row, (a, b) in self._ev_pending:
            if b.query():
                row[11] = a.elapsed_time(b) / 1e3
            else:
                keep.append((row, (a, b)))
        self._ev_pending = keep

    def clock(self) -> float:
        return time.perf_counter() - self._t0[0]

    # ---------------------------------------------------------------- requests
    def add(self, prompt: list[int], params: SamplingParams, arrival: float | None = None) -> Sequence:
        seq = Sequence(list(prompt), params, arrival=self.clock() if arrival is None else arrival)
        problem = self._validate(seq)
        if problem:
            seq.status, seq.reason, seq.finish = "failed", problem, seq.arrival
        else:
            self.sched.add(seq)
            if seq.status == "failed":
                seq.finish = seq.arrival
        return seq

    def _validate(self, seq: Sequence) -> str:
        if not seq.prompt:
            return "empty prompt"
        bad = [t for t in seq.prompt if not 0 <= t < self.spec.vocab_size]
        if bad:
            return f"token id {bad[0]} out of range [0, {self.spec.vocab_size})"
        if seq.num_tokens + seq.params.max_tokens > self.max_model_len:
            return (f"prompt ({seq.num_tokens}) + max_tokens ({seq.params.max_tokens}) exceeds max_model_len "
                    f"({self.max_model_len})")
        if seq.params.max_tokens < 1:
            return "max_tokens must be at least 1"
        return ""

    # ---------------------------------------------------------------- stepping
    def step(self) -> list[Sequence]:
        if self.tp is None:
            return self._step()
        try:
            return self._step()
        except RuntimeError as e:
            raise self.tp.explain(e) from e

    def _step(self) -> list[Sequence]:
        t_sched = self.clock() if self.log_steps else 0.0
        ahead, self._ahead = self._ahead, None
        if ahead is not None:  # launched during the previous call, before its tokens reached the host
            batch, samplers, toks_dev, t_start, ev = ahead
            logits = None
        else:
            batch = self.sched.schedule()
            if not batch:
                if self.sched.running or self.sched.waiting:
                    # nothing schedulable (a head-of-line request larger than the free pool): fail it, keep the rest
                    s = self.sched.waiting[0]
                    self.sched.finish(s, "failed", "does not fit in the free KV pool")
                    s.finish = self.clock()
                    return [s]
                return []
            t_start = self.clock() if self.log_steps else 0.0
            ev = self._events() if self.log_steps else None
            if ev:
                ev[0].record()
            logits, samplers = self._run(batch)
            if ev:
                ev[1].record()
            toks_dev = greedy(logits) if self.cfg.async_decode and all(
                s.params.temperature == 0 for s in samplers) else None
        log = None
        if self.log_steps:
            pre = sum(n for _, n in batch if n > 1)
            log = [t_start, 0.0, pre, sum(1 for _, n in batch if n == 1), pre == 0,
                   sum(1 for _, n in batch if n > 1), sum(s.num_computed for s, n in batch if n == 1),
                   sum(s.num_computed for s, n in batch if n > 1), t_sched, self._idle,
                   self.clock() if ahead is None else t_start, float("nan")]
        self._advance(batch)
        if toks_dev is not None:
            self._ahead = self._launch_ahead(batch, samplers, toks_dev)
        # the host waits here for this step's tokens (the next step, if launched, keeps the GPU busy meanwhile)
        toks = toks_dev.tolist() if toks_dev is not None else sample(logits, samplers, self.generators)
        if self.tp is not None:
            self.tp.step_done()
        now = self.clock()
        if log is not None:
            log[1] = now
            self.step_log.append(log)
            self._idle = False
            if ev:  # read once complete: a step that samples nothing (a middle prompt chunk) has not synced
                self._ev_pending.append((log, ev))
                self.resolve_step_log(wait=False)
        done = self._take_tokens(samplers, toks, now)
        self.steps += 1
        return done

    def _run(self, batch):
        """The step on every rank: plan here, broadcast the plan under tensor parallelism, run this rank's part."""
        if self.tp is None:
            return self.runner.forward(batch)
        head, flat, samplers = self.runner.plan(batch)
        return self.runner.execute(head, self.tp.broadcast(head, flat)), samplers

    def _advance(self, batch) -> None:
        """The KV of this batch is (being) written: the positions advance."""
        for s, n in batch:
            s.num_computed += n
            self.bm.commit(s)

    def _take_tokens(self, samplers, toks, now: float) -> list[Sequence]:
        """Append each sampled token; finish the sequences that are done (returned)."""
        done = []
        for s, t in zip(samplers, toks):
            s.append(t)
            if s.first_token is None:
                s.first_token = now
            if s.done:
                s.finish = now
                self.sched.finish(s)
                self.generators.pop(s.rid, None)
                done.append(s)
        return done

    def _launch_ahead(self, batch, samplers, toks_dev):
        """Async decode: when the next batch is certain -- every running sequence decodes again (greedy, none
        reaches max_tokens or may stop on EOS with this token, nothing waiting to be admitted, a KV slot for
        each) -- launch it now with this step's tokens fed on the device, so the GPU does not sit idle while
        the host reads the tokens and schedules. A request arriving meanwhile is admitted one step later."""
        run = self.sched.running
        if self.sched.waiting or len(batch) != len(run) or any(n != 1 for _, n in batch):
            return None
        for s in samplers:
            p = s.params
            if len(s.output) + 1 >= p.max_tokens or not (p.ignore_eos or p.eos_token_id is None):
                return None
        if not all(self.bm.allocate(s, 1) for s in samplers):
            return None  # the next schedule() preempts as usual (allocated blocks stay with their owners)
        nxt = [(s, 1) for s in samplers]
        t = self.clock() if self.log_steps else 0.0
        ev = self._events() if self.log_steps else None
        if ev:
            ev[0].record()
        logits, seqs = self.runner.forward(nxt, dec_ids=toks_dev)
        if ev:
            ev[1].record()
        self.ahead_steps += 1
        return nxt, seqs, greedy(logits), t, ev

    def generate(self, prompts: list[list[int]], params: SamplingParams | list[SamplingParams] | None = None,
                 progress: bool = False) -> list[Sequence]:
        params = params or SamplingParams()
        plist = params if isinstance(params, list) else [params] * len(prompts)
        seqs = [self.add(p, sp) for p, sp in zip(prompts, plist)]
        while self.sched.has_work:
            self.step()
        self.resolve_step_log()
        return seqs

    def timed_decode_steps(self, prompts: list[list[int]], new_tokens: int) -> tuple[list[float], list[list]]:
        """Generate with the step log on: (schedule-to-schedule seconds of each decode-only step at the full batch
        -- len(prompts) sequences -- followed by another decode step, the log). What the decode benchmarks time:
        a step's whole iteration, host included, as a served step pays it."""
        self.step_log.clear()
        self.log_steps = True
        try:
            self.generate(prompts, SamplingParams(max_tokens=new_tokens))
        finally:
            self.log_steps = False
        lg, b = list(self.step_log), len(prompts)
        decode_only = [r[2] == 0 and r[3] > 0 for r in lg]  # no prompt tokens in the step
        return [nxt[8] - cur[8] for cur, nxt, d, dn in zip(lg, lg[1:], decode_only, decode_only[1:])
                if d and dn and cur[3] == b], lg

    @property
    def kernel_fallbacks(self) -> list[str]:
        """What the kernels could not serve in this process's model (empty with the kernels off): each entry ran
        the PyTorch path instead. TP ranks other than 0 hold the same shapes and see the same."""
        be = getattr(self.model, "backend", None)
        return sorted(getattr(be, "fallbacks", ()))

    def replay(self, arrivals, prompt_lens, output_lens, seed: int = 0) -> list[Sequence]:
        """Requests arrive at their timestamps (seconds from now) into the running engine."""
        g = torch.Generator().manual_seed(seed)
        order = sorted(range(len(arrivals)), key=lambda i: arrivals[i])
        prompts = [torch.randint(0, self.spec.vocab_size, (int(prompt_lens[i]),), generator=g).tolist() for i in order]
        pending = [(float(arrivals[i]), prompts[k], int(output_lens[i])) for k, i in enumerate(order)]
        seqs, j = [], 0
        with quiet_gc():
            # the clock starts after the collector's start-up pass (a full collection over every prompt list:
            # measured 60-280 ms, which the first requests used to spend waiting in an idle engine)
            self._t0[0] = time.perf_counter()
            while j < len(pending) or self.sched.has_work:
                now = self.clock()
                while j < len(pending) and pending[j][0] <= now:
                    a, p, o = pending[j]
                    seqs.append(self.add(p, SamplingParams(max_tokens=o), arrival=a))
                    j += 1
                if self.sched.has_work:
                    self.step()
                elif j < len(pending):
                    self._idle = True  # the next step's iteration does not start where this one ended
                    time.sleep(max(0.0, min(pending[j][0] - self.clock(), 0.01)))
        self.resolve_step_log()
        return seqs


@contextlib.contextmanager
def quiet_gc():
    """No cyclic-GC pauses while serving: the long-lived objects (model, caches, prompts) are frozen out of
    the collector and automatic collection is off until the block ends (as vLLM does after start-up).
    Measured need: eager steps of a replay ranged 22-108 ms for the same work with the collector on."""
    was = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was:
            gc.enable()


def release_gpu_memory() -> None:
    """Return freed CUDA memory (KV pools, graph pools) to the device after dropping an engine: collect
    first, since engine objects can sit in reference cycles until the collector runs."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def records(seqs: list[Sequence]) -> list[dict]:
    """The simulator's request-record columns (planner.sim.metrics.columns)."""
    nan = float("nan")
    return [{"rid": i, "arrival": s.arrival, "first_token": s.first_token if s.first_token is not None else nan,
             "finish": s.finish if s.finish is not None else nan,
             "scheduled": s.scheduled if s.scheduled is not None else nan, "input_tokens": len(s.prompt),
             "output_tokens": len(s.output) if s.status != "failed" else s.params.max_tokens,
             "status": s.status, "reason": s.reason,
             "tier": "default", "tenant": "default", "replica": 0, "preemptions": s.preemptions, "retries": 0,
             "prefix_hit_tokens": s.prefix_hit_tokens} for i, s in enumerate(seqs)]
