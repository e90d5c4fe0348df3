"""The cluster: arrivals, clients (timeouts, retries with backoff), the router, replicas, a monitor.

Everything that happens in time is a SimPy process or a timed callback; all
randomness comes from one generator seeded by `sim.seed`, so a seed gives
identical records. Every request ends with exactly one final status.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import simpy

from contract.errors import InputError
from contract.knobs import ServingKnobs
from contract.records import STATUSES
from planner.cost.jitter import JitteredCostModel
from planner.memory import memory_plan
from planner.sim.replica import Replica, ReplicaConfig
from planner.sim.request import Request
from planner.sim.router import Router
from planner.sim.workload import LengthSampler, generate

RETRYABLE = ("timed_out", "rejected", "failed")


@dataclass
class Series:
    t: list = field(default_factory=list)
    waiting: list = field(default_factory=list)
    running: list = field(default_factory=list)
    kv_util: list = field(default_factory=list)
    live_replicas: list = field(default_factory=list)  # serving (routable)
    active_replicas: list = field(default_factory=list)  # paid for (serving, warming up or draining)


class Cluster:
    def __init__(self, sc, cost, *, num_blocks: int | None = None, load_scale: float = 1.0, progress=None):
        self.env = simpy.Environment()
        self.rng = np.random.default_rng(sc.sim.seed)
        jitter = sc.cost_model.step_jitter
        if jitter:  # its own stream: the same seed gives the same arrivals with and without jitter
            ratios = getattr(cost, "jitter_ratios", None)
            if not ratios or set(ratios) != {"decode", "prefill"}:
                raise InputError([("cost_model.step_jitter", "the profile has no serving iterations measured "
                                      f"for {sc.model} (engine calibrate records them)")])
            cost = JitteredCostModel(cost, ratios, np.random.default_rng([sc.sim.seed, 0x5EED]))
        self.sc, self.cost = sc, cost
        f = sc.fleet
        plan = memory_plan(sc)
        blocks = num_blocks if num_blocks is not None else plan.num_blocks
        tiers = sorted(sc.tiers, key=lambda t: t.priority)
        self.tier_of = {t.name: t for t in sc.tiers}
        prios = sorted({t.priority for t in tiers})
        shares = tuple(max([t.token_budget_share or 1.0 for t in tiers if t.priority == p]) for p in prios)
        self.prio_index = {p: i for i, p in enumerate(prios)}
        self.rcfg = ReplicaConfig(
            knobs=ServingKnobs.model_validate(f.model_dump(include=set(ServingKnobs.model_fields))),
            num_blocks=blocks, static=f.batching == "static",
            fast_forward=sc.sim.fast_forward and not jitter, policy=f.scheduling_policy,
            tier_preemption=f.tier_preemption and f.scheduling_policy != "fcfs", tier_token_share=shares,
            swap=f.preemption_mode == "swap", reserve_full=f.kv_admission == "reserve_full",
            swap_s_per_token=plan.kv_bytes_per_token_gpu / (sc.cost_model.efficiency.host_link_gbps * 1e9))
        a = sc.autoscaling
        n_max = a.max_replicas if a.enabled else f.replicas
        self.replicas = [Replica(self.env, i, self.rcfg, cost, self._on_end) for i in range(n_max)]
        self.spot = [Replica(self.env, n_max + i, self.rcfg, cost, self._on_end) for i in range(f.spot_replicas)]
        self.active_since: dict[int, float] = {}
        self.gpu_seconds = 0.0
        for r in self.replicas:
            if r.idx < f.replicas:
                self.active_since[r.idx] = 0.0
            else:
                r.alive = r.routable = False
        self.scale_events: list[tuple[float, str, int]] = []
        reserved = {t.name: t.reserved_share for t in sc.tiers if t.reserved_share > 0}
        self.router = Router(sc.router.policy, self.replicas[: f.replicas] if sc.autoscaling.enabled and reserved
                             else self.replicas, reserved, self.spot, f.spot_tiers)
        self.spot_seconds = 0.0
        self.records: list[Request] = []
        self.all: list[Request] = []
        self.in_flight = 0
        self.arrivals_done = False
        # a fixed number of requests (a benchmark) runs until they are all done, within the same horizon
        self.finite = sc.workload.arrival is not None and sc.workload.arrival.finite
        self.notes: list[str] = []  # what the report must say about this run (how inputs were read)
        self.end_time = sc.sim.duration_s + sc.sim.drain_limit_s
        self.series = Series()
        self.load_scale = load_scale
        self.progress = progress
        self._done_ev = self.env.event()
        c = sc.client
        self.deadline_after = min(c.timeout_s or math.inf, c.server_timeout_s or math.inf)
        self.deadline_reason = ("client timeout" if (c.timeout_s or math.inf) <= (c.server_timeout_s or math.inf)
                                else "server timeout")
        self.max_len = sc.max_model_len
        self.kv_tokens = blocks * f.block_size

    # ------------------------------------------------------------ requests
    def _new_request(self, arrival, n_in, n_out, prefix=-1, session=None, hashes=None, user=None,
                     tenant: str = "default", tier: str = "default", prefix_tokens: int = 0) -> Request:
        r = Request(len(self.all), arrival, int(n_in), int(n_out), tenant=tenant, tier=tier, session=session,
                    prefix_id=int(prefix), hash_ids=hashes, user=user, prefix_tokens=int(prefix_tokens))
        self.all.append(r)
        return r

    def submit(self, req: Request) -> None:
        """Client sends an attempt: route it, or reject it."""
        self.in_flight += 1 if req.retries == 0 else 0
        req.attempt_arrival = self.env.now
        if req.prompt_len + req.output_len > self.max_len:
            return self._final(req, "rejected", f"prompt + output exceeds fleet.max_model_len ({self.max_len})")
        if -(-(req.prompt_len + req.output_len) // self.rcfg.knobs.block_size) > self.rcfg.num_blocks:
            return self._final(req, "rejected", f"needs more KV blocks than a replica has ({self.rcfg.num_blocks})")
        rep = self.router.choose(req)
        if rep is None:
            return self._attempt_failed(req, "failed", "no replica up")
        q = self.sc.router.max_queue_per_replica
        if q is not None and rep.num_waiting >= q:
            return self._attempt_failed(req, "rejected", "queue full")
        req.replica = rep.idx
        t = self.tier_of.get(req.tier)
        if t is None or self.rcfg.policy == "fcfs":
            rep.submit(req, self.env.now + self.deadline_after)
        else:
            risk = t.sla.target_s * self.sc.fleet.sla_risk_fraction if t.sla.metric in ("ttft", "e2e") else math.inf
            rep.submit(req, self.env.now + self.deadline_after, self.prio_index[t.priority], t.preemptible, risk)

    def _on_end(self, rep, seq, status: str, reason: str) -> None:
        req = seq.req
        if status == "completed":
            self._final(req, "completed", "")
        else:
            self._attempt_failed(req, status, self.deadline_reason if reason == "deadline" else reason)

    def _attempt_failed(self, req: Request, status: str, reason: str) -> None:
        c = self.sc.client
        if reason == "replica failure":  # the server side moves it at once; the client never saw an error
            if req.retries < self.sc.failures.max_reroutes:
                req.retries += 1
                req.first_token = None
                self.submit(req)
                return
            return self._final(req, "failed", "replica failure: reroutes exhausted")
        if status in RETRYABLE and req.retries < c.max_retries:
            req.retries += 1
            req.first_token = None  # a retry starts over from the client's point of view
            back = min(c.backoff_max_s, c.backoff_base_s * 2 ** (req.retries - 1)) * (0.5 + self.rng.random())
            ev = self.env.timeout(back)
            ev.callbacks.append(lambda _e, r=req: self.submit(r))
            return
        self._final(req, status, reason)

    def _final(self, req: Request, status: str, reason: str) -> None:
        assert req.status is None, f"request {req.rid} ended twice"
        req.status, req.reason = status, reason
        if req.finish is None or status != "completed":
            req.finish = self.env.now
        self.records.append(req)
        self.in_flight -= 1
        if req.user is not None and not self.arrivals_done:
            self._schedule_user(req.user, self.env.now)
        if self.arrivals_done and self.in_flight == 0 and not self._done_ev.triggered:
            self._done_ev.succeed()

    # ------------------------------------------------------------ arrivals
    def _open_loop(self, specs):
        sc = self.sc
        env = self.env
        arr, ins, outs = specs.arrival, specs.input_tokens, specs.output_tokens
        pre, ses, hsh = specs.prefix_id, specs.session, specs.hash_ids
        ten, ptok = specs.tenant, specs.prefix_tokens
        tenants = sc.workload.tenants
        names = [t.name for t in tenants]
        tiers = [t.tier for t in tenants]
        for i in range(len(arr)):
            dt = arr[i] - env.now
            if dt > 0:
                yield env.timeout(dt)
            k = ten[i] if ten is not None else -1
            self.submit(self._new_request(env.now, ins[i], outs[i], pre[i] if pre is not None else -1,
                                          int(ses[i]) if ses is not None else None,
                                          hsh[i] if hsh is not None else None,
                                          tenant=names[k] if k >= 0 else "default",
                                          tier=tiers[k] if k >= 0 else "default",
                                          prefix_tokens=ptok[i] if ptok is not None else 0))
        if env.now < sc.sim.duration_s and not self.finite:
            yield env.timeout(sc.sim.duration_s - env.now)
        self._arrivals_end()

    def _closed_loop_start(self):
        a, wl = self.sc.workload.arrival, self.sc.workload
        users = int(round(a.users * self.load_scale))
        self._think = a.think_time_s
        self._lin = LengthSampler(wl.input_tokens, self.rng)
        self._lout = LengthSampler(wl.output_tokens, self.rng)
        self._buf_in = self._buf_out = None
        self._buf_i = 0
        self._issued = 0
        first = self.rng.uniform(0, a.think_time_s, size=users)  # staggered start, no thundering herd
        for u in range(users):
            ev = self.env.timeout(first[u])
            ev.callbacks.append(lambda _e, u=u: self._user_request(u))
        if not self.finite:
            end = self.env.timeout(self.sc.sim.duration_s)
            end.callbacks.append(lambda _e: self._arrivals_end())

    def _lengths(self) -> tuple[int, int]:
        if self._buf_in is None or self._buf_i >= len(self._buf_in):
            self._buf_in, self._buf_out, self._buf_i = self._lin.sample(65536), self._lout.sample(65536), 0
        i = self._buf_i
        self._buf_i += 1
        return self._buf_in[i], self._buf_out[i]

    def _user_request(self, u: int) -> None:
        if self.arrivals_done:
            return
        cap = self.sc.workload.arrival.requests
        if cap is not None:
            if self._issued >= cap:
                return
            self._issued += 1
            if self._issued == cap:  # the last request of a fixed-count run: no more arrivals after it
                self.arrivals_done = True
        n_in, n_out = self._lengths()
        sp = self.sc.workload.shared_prefix
        pre = -1
        if sp is not None and sp.tokens:
            pre = int(self.rng.integers(sp.count))
            n_in += sp.tokens
        self.submit(self._new_request(self.env.now, n_in, n_out, pre, session=u, user=u,
                                      prefix_tokens=sp.tokens if pre >= 0 else 0))

    def _schedule_user(self, u: int, now: float) -> None:
        ev = self.env.timeout(self.rng.exponential(self._think) if self._think else 0.0)
        ev.callbacks.append(lambda _e, u=u: self._user_request(u))

    def _arrivals_end(self) -> None:
        self.arrivals_done = True
        if self.in_flight == 0 and not self._done_ev.triggered:
            self._done_ev.succeed()

    # ------------------------------------------------------------ failures and autoscaling
    def _failures(self, rep, mean_s: float | None = None):
        """One replica's life: fail after Exp(MTBF of its TP GPUs) -- or, for spot, after Exp(1 / its
        preemption rate) -- detected after a health-check interval (its requests move elsewhere), replaced
        after a warm-up."""
        fl, env = self.sc.failures, self.env
        tp = self.sc.fleet.tensor_parallel_size
        mean = mean_s if mean_s is not None else fl.mtbf_hours_per_gpu * 3600 / tp
        while True:
            yield env.timeout(self.rng.exponential(mean))
            if not rep.routable and not rep.alive:
                continue  # inactive (scaled in): nothing to fail
            rep.fail()
            self.scale_events.append((env.now, "failure", rep.idx))
            yield env.timeout(fl.health_check_interval_s)
            rep.routable = False
            for s in rep.evacuate():
                self._attempt_failed(s.req, "failed", "replica failure")
            self.scale_events.append((env.now, "detected", rep.idx))
            yield env.timeout(fl.replacement_warmup_s)
            rep.routable = True
            rep.restore()
            self.scale_events.append((env.now, "replaced", rep.idx))

    def _activate(self, rep):
        """Scale out: GPUs are paid for from now; the replica serves after its warm-up."""
        self.active_since[rep.idx] = self.env.now
        self.scale_events.append((self.env.now, "scale_up", rep.idx))
        yield self.env.timeout(self.sc.autoscaling.warmup_s)
        rep.alive = rep.routable = True
        rep.restore()

    def _autoscaler(self):
        a, env = self.sc.autoscaling, self.env
        last = -math.inf
        while True:
            yield env.timeout(a.interval_s)
            serving = [r for r in self.replicas if r.routable]
            active = [r for r in self.replicas if r.idx in self.active_since]
            if not serving:
                continue
            if a.metric == "queue_depth":
                m = sum(r.num_waiting for r in serving) / len(serving)
            else:
                m = sum(r.bm.used for r in serving) / (len(serving) * self.rcfg.num_blocks)
            if env.now - last < a.cooldown_s:
                continue
            warming = any(not r.alive for r in active)  # paid for, not yet serving (or being replaced)
            if m > a.scale_up_threshold and len(active) < a.max_replicas:
                rep = next(r for r in self.replicas if r.idx not in self.active_since)
                env.process(self._activate(rep))
                last = env.now
            elif m < a.scale_down_threshold and len(active) > a.min_replicas and len(serving) > 1 and not warming:
                rep = max(serving, key=lambda r: r.idx)
                rep.routable = False  # drain: no new work; paid for until empty
                env.process(self._drain(rep))
                last = env.now

    def _drain(self, rep):
        while rep.num_waiting or rep.num_running:
            yield self.env.timeout(1.0)
        rep.alive = False
        self.gpu_seconds += self.env.now - self.active_since.pop(rep.idx)
        self.scale_events.append((self.env.now, "scale_down", rep.idx))

    # ------------------------------------------------------------ monitor
    def _monitor(self):
        env, s, dt = self.env, self.series, self.sc.sim.sample_interval_s
        nb = self.rcfg.num_blocks
        total = self.sc.sim.duration_s
        while True:
            reps = self.replicas + self.spot
            s.t.append(env.now)
            s.waiting.append(sum(r.num_waiting for r in reps))
            s.running.append(sum(r.num_running for r in reps))
            live = [r for r in reps if r.routable]
            s.kv_util.append(sum(r.bm.used for r in live) / (nb * len(live)) if live else 0.0)
            s.live_replicas.append(len(live))
            s.active_replicas.append(len(self.active_since))
            if self.progress is not None:
                self.progress(min(env.now, total), total)
            yield env.timeout(dt)

    # ------------------------------------------------------------ run
    def run(self) -> "Cluster":
        env = self.env
        a = self.sc.workload.arrival
        if a is not None and a.process == "closed_loop":
            self._closed_loop_start()
        else:  # drawn before the clock starts: bad traces fail here, not inside a process
            specs = generate(self.sc, self.rng, self.load_scale)
            self.notes += list(specs.notes)
            env.process(self._open_loop(specs))
        env.process(self._monitor())
        if self.sc.failures.mtbf_hours_per_gpu:
            for r in self.replicas:
                env.process(self._failures(r))
        rate = self.sc.fleet.spot_preemptions_per_hour
        for r in self.spot:
            if rate > 0:
                env.process(self._failures(r, 3600.0 / rate))
        if self.sc.autoscaling.enabled:
            env.process(self._autoscaler())
        env.run(until=simpy.AnyOf(env, [self._done_ev, env.timeout(self.end_time)]))
        self.stop_time = env.now
        for i, t0 in self.active_since.items():
            self.gpu_seconds += self.stop_time - t0
        tp = self.sc.fleet.tensor_parallel_size
        self.gpu_seconds *= tp
        self.spot_seconds = len(self.spot) * self.stop_time * tp  # paid while held, preempted or not
        for r in self.all:  # whatever is still in flight at the horizon is counted, not dropped
            if r.status is None:
                r.status, r.reason, r.finish = "unfinished", "still in flight when the simulation stopped", None
                self.records.append(r)
        self.check_conservation()
        return self

    def check_conservation(self) -> dict:
        counts = {s: 0 for s in STATUSES}
        for r in self.records:
            counts[r.status] += 1
        if sum(counts.values()) != len(self.all) or len({r.rid for r in self.records}) != len(self.all):
            raise AssertionError(f"request accounting broken: {counts} vs {len(self.all)} created")
        return counts
