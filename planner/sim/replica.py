"""One engine instance (TP GPUs): the iteration loop of a vLLM-style scheduler, as a SimPy process.

Each iteration forms a batch -- decodes of every running sequence, then the
prefill chunks of sequences still prefilling, then new admissions from the
waiting queue, within `max_num_seqs` and `max_num_batched_tokens` -- allocates
KV blocks on demand (preempting the newest running sequence, recompute-style,
when they run out), and advances time by the cost model's step time.

Decoding sequences are kept as an aggregate "decode set": each stores its
context as an offset from the replica's decode-step counter `t`, with heaps of
the step at which it finishes and the step at which its blocks run out. So a
decode step costs O(1) plus the sequences crossing a block boundary, and a run
of k steps whose composition cannot change (fast-forward) costs the same as
one: its time is the cost model's exact sum. An arrival during a fast-forward
interrupts it; the replica finishes the step in flight and re-plans, exactly as
the step-by-step loop would.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import simpy

from contract.knobs import WATERMARK, ServingKnobs
from planner.sim.block_manager import BlockManager
from planner.sim.request import Request, Seq
from planner.sim.wait_queue import WaitQueue


@dataclass(frozen=True)
class ReplicaConfig:
    """A replica's engine: its serving knobs (the contract's, shared with the real engine), its KV pool, and
    what only the simulator models (static batching, fast-forward, tier policies, swap)."""

    knobs: ServingKnobs
    num_blocks: int
    static: bool = False
    fast_forward: bool = True
    policy: str = "fcfs"  # fcfs | priority | tier_budget
    tier_preemption: bool = False
    tier_token_share: tuple = ()  # by priority level: cumulative share of max_num_batched_tokens (tier_budget)
    swap: bool = False  # preemption by swapping KV to the host instead of recomputing
    swap_s_per_token: float = 0.0  # KV bytes per token / host link bandwidth
    reserve_full: bool = False  # admission reserves KV for prompt + output (TensorRT-LLM's no-evict policy)


class Replica:
    def __init__(self, env: simpy.Environment, idx: int, cfg: ReplicaConfig, cost, on_end):
        self.env, self.idx, self.cfg, self.cost, self.on_end = env, idx, cfg, cost, on_end
        self.knobs = kn = cfg.knobs
        self.bm = BlockManager(cfg.num_blocks, kn.block_size, kn.enable_prefix_caching)
        self.bs = kn.block_size
        self.watermark = int(WATERMARK * cfg.num_blocks)
        self.waiting = WaitQueue()
        self.pending_swap_s = 0.0  # swap traffic to charge to the next step
        self.prefilling: list[Seq] = []
        self.running: dict[int, Seq] = {}  # admission order -> seq (newest last)
        self._order = 0
        # decode set
        self.t = 0
        self.dec_n = 0
        self.dec_off = 0
        self.fin_heap: list = []
        self.cov_heap: list = []
        self.dl_heap: list = []  # (deadline, tiebreak, seq) for every seq of this replica with a deadline
        self._static_longest = 0
        # state for the cluster
        self.outstanding_tokens = 0
        self.mode = "idle"  # idle | step | ff | down
        self.alive = True  # processing
        self.routable = True  # the router may send it work (false once a failure is detected, or draining)
        # accounting
        self.busy_time = 0.0
        self.steps = 0
        self.ff_jumps = 0
        self.decode_tokens = 0
        self.prefill_tokens = 0
        self.prefix_hit_tokens = 0
        self.preemptions = 0
        self.trace: list | None = None  # when a list: each step's ((rid, tokens), ...), for conformance checks
        self.proc = env.process(self._loop())

    # ------------------------------------------------------------ intake
    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    @property
    def num_running(self) -> int:
        return len(self.running)

    def submit(self, req: Request, deadline: float, prio: int = 0, preemptible: bool = True,
               risk_after: float = math.inf) -> None:
        now = self.env.now
        s = Seq(req, deadline, prio, preemptible, now + risk_after, now)
        self.waiting.push(s)
        self.outstanding_tokens += req.prompt_len + req.output_len
        if deadline != math.inf:
            heapq.heappush(self.dl_heap, (deadline, req.rid, req.retries, s))  # no id(): deterministic ties
        if self.mode in ("idle", "ff"):
            self.mode = "step"
            self.proc.interrupt()

    def fail(self) -> None:
        """The GPU is gone: stop processing now (the work in flight is lost)."""
        self.alive = False
        if self.mode in ("idle", "ff"):
            self.mode = "down"
            self.proc.interrupt()

    def evacuate(self) -> list[Seq]:
        """After a failure is detected: every request it held, and a clean slate for the replacement."""
        seqs = list(self.waiting) + list(self.running.values())
        for s in seqs:
            s.state = "F"
            s.epoch += 1
        self.waiting = WaitQueue()
        self.prefilling, self.running = [], {}
        self.dec_n = self.dec_off = 0
        self.fin_heap, self.cov_heap, self.dl_heap = [], [], []
        self.bm = BlockManager(self.cfg.num_blocks, self.knobs.block_size, self.knobs.enable_prefix_caching)
        self.outstanding_tokens = 0
        self.pending_swap_s = 0.0
        return seqs

    def restore(self) -> None:
        self.alive = True
        if self.mode in ("down", "idle"):
            self.mode = "step"
            self.proc.interrupt()

    # ------------------------------------------------------------ decode set
    def _dec_add(self, s: Seq) -> None:
        s.state = "D"
        s.off = s.computed - self.t
        s.goff = s.generated - self.t
        s.epoch += 1
        self.dec_n += 1
        self.dec_off += s.off
        fin = s.static_fin if s.static_fin is not None else s.req.output_len - s.goff
        heapq.heappush(self.fin_heap, (fin, s.order, s.epoch, s))
        cover = s.nb * self.bs - s.off
        if cover < fin:
            heapq.heappush(self.cov_heap, (cover, s.order, s.epoch, s))

    def _dec_remove(self, s: Seq) -> None:
        """Materialize a decoding sequence's counters and take it out of the set."""
        s.computed = s.off + self.t
        s.generated = s.goff + self.t
        s.epoch += 1
        self.dec_n -= 1
        self.dec_off -= s.off

    def _blocks_needed(self, k: int) -> int:
        """New blocks the decode set needs to advance k steps (exact)."""
        need, tk, bs = 0, self.t + k, self.bs
        for cover, _, ep, s in self.cov_heap:
            if ep != s.epoch or cover >= tk:
                continue
            fin = s.static_fin if s.static_fin is not None else s.req.output_len - s.goff
            need += -(-(s.off + min(tk, fin)) // bs) - s.nb
        return need

    def _grow_blocks(self, k: int) -> None:
        """Allocate the blocks that advancing k steps needs (caller guarantees they exist)."""
        tk, bs, h = self.t + k, self.bs, self.cov_heap
        while h and h[0][0] < tk:
            cover, order, ep, s = heapq.heappop(h)
            if ep != s.epoch:
                continue
            fin = s.static_fin if s.static_fin is not None else s.req.output_len - s.goff
            nb = -(-(s.off + min(tk, fin)) // bs)
            if not self.bm.allocate(nb - s.nb):
                raise AssertionError("decode blocks allocated beyond availability")
            s.private += nb - s.nb
            s.nb = nb
            cover = nb * bs - s.off
            if cover < fin:
                heapq.heappush(h, (cover, order, ep, s))

    def _ff_block_horizon(self, k: int) -> int:
        """Largest j <= k such that advancing j steps needs no more blocks than are available."""
        avail = self.bm.available
        if self.dec_n * (k // self.bs + 2) <= avail or self._blocks_needed(k) <= avail:
            return k
        lo, hi = 0, k
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._blocks_needed(mid) <= avail:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # ------------------------------------------------------------ lifecycle
    def _release(self, s: Seq) -> None:
        self.bm.release(s.private, s.held)
        s.private = s.nb = 0
        s.held = []

    def _end(self, s: Seq, status: str, reason: str = "") -> None:
        if s.state == "D":
            self._dec_remove(s)
        elif s.state == "P":
            self.prefilling.remove(s)
        if s.state in ("D", "P"):
            del self.running[s.order]
            self._release(s)
        s.state = "F"
        s.epoch += 1
        self.outstanding_tokens -= s.req.prompt_len + s.req.output_len
        self.on_end(self, s, status, reason)

    def _preempt(self, s: Seq) -> None:
        """Recompute-style preemption: free the blocks, requeue at the head with everything to redo."""
        if s.state == "D":
            self._dec_remove(s)
        else:
            self.prefilling.remove(s)
        del self.running[s.order]
        if self.cfg.swap and s.computed:
            self.pending_swap_s += s.computed * self.cfg.swap_s_per_token  # copy out now, back in at readmission
            s.swapped = True
            self.bm.release(s.private, s.held)
            s.private = s.nb = 0
            s.held = []
        else:
            self._release(s)
            s.target = s.req.prompt_len + s.generated
            s.computed = 0
        s.reg = 0
        s.state = "W"
        s.epoch += 1
        s.req.preemptions += 1
        self.preemptions += 1
        self.waiting.push_front(s)

    def _victim(self) -> Seq:
        """Who gives up its KV: FCFS takes the newest; with tiers, the newest of the least important
        preemptible tier, and a non-preemptible sequence only when nothing else is left."""
        if self.cfg.policy == "fcfs":
            return self.running[next(reversed(self.running))]
        return max(self.running.values(), key=lambda s: (s.preemptible, s.prio, s.order))

    def _make_room(self, need: int, protect: Seq | None) -> bool:
        """Preempt running sequences until `need` blocks are available. False if `protect` went."""
        while self.bm.available < need:
            victim = self._victim()
            self._preempt(victim)
            if victim is protect:
                return False
        return True

    def _relieve_sla_risk(self, now: float) -> bool:
        """A waiting request of a more important tier has waited past its at-risk point and cannot get in:
        preempt one running sequence of a preemptible, less important tier."""
        if not self.cfg.tier_preemption or not len(self.waiting):
            return False
        top = self.waiting.head()
        if top.risk_at > now:
            return False
        cands = [s for s in self.running.values() if s.preemptible and s.prio > top.prio]
        if not cands:
            return False
        full = len(self.running) >= self.knobs.max_num_seqs
        need = -(-(top.target - top.computed) // self.bs)
        if not full and need <= self.bm.available - self.watermark:
            return False  # it will get in on its own
        self._preempt(max(cands, key=lambda s: (s.prio, s.order)))
        return True

    def _expire(self, now: float) -> None:
        h = self.dl_heap
        while h and h[0][0] <= now:
            s = heapq.heappop(h)[-1]
            if s.state == "F":
                continue
            if s.state == "W":  # rare (only at a timeout)
                self.waiting.remove(s)
            self._end(s, "timed_out", "deadline")

    # ------------------------------------------------------------ scheduling
    def _admit_prefix(self, s: Seq) -> None:
        if s.computed or not self.knobs.enable_prefix_caching:
            return
        keys = s.req.block_keys(self.bs)
        if not keys:
            return
        hit = min(self.bm.match(keys), (s.target - 1) // self.bs)
        if hit > 0:
            self.bm.acquire(keys[:hit])
            s.held = list(keys[:hit])
            s.nb = hit
            s.computed = hit * self.bs
            s.reg = hit

    def _schedule(self):
        """Form one iteration's batch. Returns (prefill [(seq, n)], decode count) or None when idle."""
        cfg, bm = self.cfg, self.bm
        budget = self.knobs.max_num_batched_tokens
        chunks: list[tuple[Seq, int]] = []

        if cfg.static:
            if not self.running:
                self._admit_static()
                chunks = [(s, s.target - s.computed) for s in self.prefilling]
                return (chunks, 0, False) if chunks else None
            if self.dec_n:
                return ([], self.dec_n, False)
            return None

        preempted = self._relieve_sla_risk(self.env.now)
        if not self.knobs.enable_chunked_prefill and self.num_waiting and len(self.running) < self.knobs.max_num_seqs:
            chunks = self._admit(budget, whole=True)
            if chunks:
                return (chunks, 0, False)

        # decodes: every decoding sequence gets one token; find blocks for those crossing a boundary
        if self.dec_n:
            if self.dec_n > bm.available and self._blocks_needed(1) > bm.available:
                preempted = True
                while self.dec_n and self._blocks_needed(1) > bm.available:
                    self._preempt(self._victim())
            if self.dec_n:
                self._grow_blocks(1)
        budget -= self.dec_n

        # running prefills continue (chunked)
        for s in list(self.prefilling):
            if budget <= 0:
                break
            if s.state != "P":
                continue
            n = min(s.target - s.computed, budget)
            need = max(0, -(-(s.computed + n) // self.bs) - s.nb)
            if need > bm.available:
                preempted = True
                if not self._make_room(need, s):
                    continue
            bm.allocate(need)
            s.nb += need
            s.private += need
            chunks.append((s, n))
            budget -= n

        if not preempted and self.knobs.enable_chunked_prefill:
            chunks += self._admit(budget, whole=False)
        if not chunks and not self.dec_n:
            return None
        return (chunks, self.dec_n, preempted)

    def _admit(self, budget: int, whole: bool) -> list:
        """Admission from the waiting queue, most important tier first (one level under FCFS), within the
        token budget, the sequence limit and free blocks; under tier_budget each tier may only fill its
        cumulative share of max_num_batched_tokens."""
        cfg, bm, out = self.cfg, self.bm, []
        mnbt = self.knobs.max_num_batched_tokens
        shares = cfg.tier_token_share if cfg.policy == "tier_budget" else ()
        for prio, q in list(self.waiting.by_priority()):
            cap = budget
            if shares:
                cap = min(budget, int(shares[min(prio, len(shares) - 1)] * mnbt) - (mnbt - budget))
            while q and cap > 0 and len(self.running) < self.knobs.max_num_seqs:
                s = q[0]
                self._admit_prefix(s)
                n = s.target - s.computed
                if whole:
                    if n > cap:
                        return out
                else:
                    n = min(n, cap)
                need = max(0, max(-(-(s.computed + max(n, 0)) // self.bs), self._reserved_blocks(s)) - s.nb)
                if need > bm.available - self.watermark:
                    if s.held and not s.swapped:  # undo the prefix hold; it will be matched again
                        self._release(s)
                        s.computed = s.reg = 0
                    return out  # the head waits for blocks: nobody jumps it
                bm.allocate(need)
                s.nb += need
                s.private += need
                self.waiting.pop_head(prio)
                if s.swapped:  # bring its KV back from the host
                    self.pending_swap_s += s.computed * cfg.swap_s_per_token
                    s.swapped = False
                self._start(s)
                if s.generated and s.computed >= s.target:  # a swapped-out decoder resumes decoding
                    self.prefilling.remove(s)
                    self._dec_add(s)
                    continue
                self.prefix_hit_tokens += s.computed
                s.req.prefix_hit_tokens += s.computed
                out.append((s, n))
                budget -= n
                cap -= n
        return out

    def _reserved_blocks(self, s: Seq) -> int:
        """Under reserve_full, the blocks a sequence holds from admission on: its prompt and every output token,
        so it never needs another block and is never preempted (0: blocks are taken as tokens arrive)."""
        if not self.cfg.reserve_full:
            return 0
        return -(-(s.req.prompt_len + s.req.output_len) // self.bs)

    def _start(self, s: Seq) -> None:
        self._order += 1
        s.order = self._order
        s.state = "P"
        s.epoch += 1
        self.running[s.order] = s
        self.prefilling.append(s)
        if s.req.scheduled is None:
            s.req.scheduled = self.env.now

    def _admit_static(self) -> None:
        """Static batching: a batch is formed only when the last one is done, KV reserved for its longest."""
        bm = self.bm
        batch = []
        for prio, q in list(self.waiting.by_priority()):
            while q and len(batch) < self.knobs.max_num_seqs:
                s = q[0]
                longest = max([b.req.output_len for b in batch] + [s.req.output_len])
                need = sum(-(-(b.target + longest) // self.bs) for b in batch + [s])
                if need > bm.num_blocks:
                    break
                batch.append(self.waiting.pop_head(prio))
        if not batch:
            return
        longest = max(b.req.output_len for b in batch)
        for s in batch:
            s.nb = -(-(s.target + longest) // self.bs)
            s.private = s.nb
            bm.allocate(s.nb)
            s.static_fin = None
            self._start(s)
        self._static_longest = longest

    # ------------------------------------------------------------ applying a step
    def _apply(self, chunks, steps: int, now: float) -> None:
        if steps:
            self.t += steps
            self.decode_tokens += steps * self.dec_n
            h = self.fin_heap
            while h and h[0][0] <= self.t:
                _, _, ep, s = heapq.heappop(h)
                if ep == s.epoch and s.state == "D":
                    s.req.finish = now
                    self._end(s, "completed")
        for s, n in chunks:
            if s.state != "P":
                continue
            s.computed += n
            self.prefill_tokens += n
            if self.knobs.enable_prefix_caching:
                keys = s.req._keys
                if keys:
                    full = min(s.computed // self.bs, len(keys))
                    for i in range(s.reg, full):
                        if self.bm.register(keys[i]):
                            s.private -= 1
                            s.held.append(keys[i])
                    s.reg = max(s.reg, full)
            if s.computed == s.target:
                s.generated += 1
                if s.req.first_token is None:
                    s.req.first_token = now
                if s.generated >= s.req.output_len and not self.cfg.static:
                    s.req.finish = now
                    self._end(s, "completed")
                    continue
                self.prefilling.remove(s)
                if self.cfg.static:  # the whole batch decodes until its longest member is done
                    s.static_fin = self.t + self._static_longest - s.generated
                self._dec_add(s)

    # ------------------------------------------------------------ the loop
    def _loop(self):
        env, cost, cfg = self.env, self.cost, self.cfg
        while True:
            if not self.alive:
                self.mode = "down"
                try:
                    yield env.event()
                except simpy.Interrupt:
                    pass
                continue
            self._expire(env.now)
            plan = self._schedule()
            if plan is None:
                self.mode = "idle"
                try:
                    yield env.event()
                except simpy.Interrupt:
                    pass
                continue
            chunks, n_dec, preempted = plan
            if self.trace is not None:
                self.trace.append(tuple(sorted([(s.req.rid, n) for s, n in chunks]
                                               + [(s.req.rid, 1) for s in self.running.values()
                                                  if n_dec and s.state == "D"])))
            start = env.now
            swap, self.pending_swap_s = self.pending_swap_s, 0.0
            if chunks:
                ntok = n_dec + sum(n for _, n in chunks)
                sampled = n_dec + sum(1 for s, n in chunks if s.computed + n == s.target)
                # the decodes' context: none when the step leaves them out (a whole-prompt step without chunking)
                S = self.dec_off + n_dec * (self.t + 1) if n_dec else 0
                dt = cost.time(ntok, sampled, S, [(n, s.computed) for s, n in chunks]) + swap
                self.mode = "step"
                yield env.timeout(dt)
                if not self.alive:
                    continue  # failed mid-step: the step's work is lost with the GPU
                self.busy_time += dt
                self.steps += 1
                self._apply(chunks, 1 if n_dec else 0, env.now)
                continue
            # decode-only step: how many identical steps can run back to back?
            S0 = self.dec_off + n_dec * (self.t + 1)
            k = 1
            if cfg.fast_forward and not preempted and not swap:
                k = self.fin_heap[0][0] - self.t if self.fin_heap else 1
                if self.dl_heap or (cfg.tier_preemption and len(self.waiting)):
                    k = min(k, self._deadline_steps(n_dec, S0, k))
                if k > 1:
                    k = max(1, self._ff_block_horizon(k))
            dt = cost.decode_run_time(n_dec, S0, k) if k > 1 else cost.decode_time(n_dec, S0) + swap
            if k > 1:
                self.mode = "ff"
                self.ff_jumps += 1
                try:
                    yield env.timeout(dt)
                    done = k
                except simpy.Interrupt:
                    if not self.alive:
                        continue
                    elapsed = env.now - start
                    j = cost.decode_steps_within(n_dec, S0, k, elapsed)
                    done = min(j + 1, k)
                    rest = start + cost.decode_run_time(n_dec, S0, done) - env.now
                    self.mode = "step"
                    if rest > 0:
                        yield env.timeout(rest)
                dt = env.now - start
            else:
                self.mode = "step"
                yield env.timeout(dt)
                done = 1
            if not self.alive:
                continue
            self.busy_time += dt
            self.steps += done
            self._grow_blocks(done)  # the horizon guaranteed these; nobody allocated meanwhile
            self._apply((), done, env.now)

    def _deadline_steps(self, n: int, S0: int, k: int) -> int:
        """Steps until the boundary at or after the earliest deadline (an abort changes the batch)."""
        h = self.dl_heap
        while h and h[0][-1].state == "F":
            heapq.heappop(h)
        at = h[0][0] if h else math.inf
        if self.cfg.tier_preemption and len(self.waiting):  # an SLA-risk moment also changes the batch
            at = min(at, min(q[0].risk_at for _, q in self.waiting.by_priority()))
        if at == math.inf:
            return k
        left = at - self.env.now
        if left <= 0:
            return 1
        j = self.cost.decode_steps_within(n, S0, k, left)
        # the boundary after step j is still before the deadline; step j+1 crosses it
        return max(1, min(k, j + 1))
