"""How much work a simulation will be, estimated before it starts: a scenario that would create hundreds of
millions of requests or simulate a million replicas is refused with the field to change, not run until the
machine runs out of memory."""
from __future__ import annotations

from dataclasses import dataclass

from contract.errors import InputError
from contract.traces import load_trace

BYTES_PER_REQUEST = 1000  # a Request, its sequence state and its record columns, measured order of magnitude


@dataclass(frozen=True)
class Estimate:
    requests: int
    replica_seconds: float

    @property
    def memory_mb(self) -> float:
        return self.requests * BYTES_PER_REQUEST / 1e6

    def describe(self) -> str:
        return (f"about {self.requests:,} requests, {self.replica_seconds:,.0f} replica-seconds, "
                f"~{self.memory_mb:,.0f} MB of request state")


def _requests(sc, arrival, load_scale: float, horizon: float) -> tuple[float, str]:
    """Expected requests of one arrival process, and the field that sets them."""
    if arrival.requests is not None:
        return arrival.requests, "workload.arrival.requests"
    if arrival.process in ("poisson", "gamma"):
        peak = sc.workload.rate_profile.peak_factor if sc.workload.rate_profile.kind == "diurnal" else 1.0
        step = sc.workload.rate_profile.step_factor if sc.workload.rate_profile.kind == "step" else 1.0
        return arrival.rate * load_scale * horizon * max(peak, step), "workload.arrival.rate"
    if arrival.process == "closed_loop":  # at most one request per user per think time (or per 50 ms)
        return arrival.users * load_scale * horizon / max(arrival.think_time_s, 0.05), "workload.arrival.users"
    t = load_trace(arrival.trace)
    return float((t.timestamps / (arrival.time_scale * load_scale) < horizon).sum()), "workload.arrival.trace"


def estimate(sc, load_scale: float = 1.0) -> tuple[Estimate, str]:
    """The work of simulating `sc` at `load_scale`, and the field most responsible for the request count."""
    horizon = sc.sim.duration_s
    if sc.workload.tenants:
        parts = [_requests(sc, t.arrival, load_scale, horizon) for t in sc.workload.tenants]
        n, field = sum(p[0] for p in parts), "workload.tenants"
    else:
        n, field = _requests(sc, sc.workload.arrival, load_scale, horizon)
    f = sc.fleet
    replicas = (sc.autoscaling.max_replicas if sc.autoscaling.enabled else f.replicas) + f.spot_replicas
    return Estimate(int(n), replicas * (horizon + sc.sim.drain_limit_s)), field


def check(sc, load_scale: float = 1.0) -> Estimate:
    """The estimate, or an InputError when it is past the scenario's limits (sim.max_requests,
    sim.max_replica_seconds)."""
    est, field = estimate(sc, load_scale)
    if est.requests > sc.sim.max_requests:
        raise InputError([(field, f"the simulation would create {est.describe()}: more than sim.max_requests "
                                  f"({sc.sim.max_requests:,}); shorten sim.duration_s, lower the load, or raise "
                                  f"sim.max_requests if the machine has the memory")])
    if est.replica_seconds > sc.sim.max_replica_seconds:
        raise InputError([("fleet.replicas", f"the simulation would run {est.describe()}: more than "
                                             f"sim.max_replica_seconds ({sc.sim.max_replica_seconds:,.0f}); "
                                             f"simulate fewer replicas or a shorter sim.duration_s")])
    return est
