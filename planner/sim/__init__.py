"""The discrete-event cluster simulator."""
from __future__ import annotations

from planner.cost import build_cost_model
from planner.sim import budget
from planner.sim.cluster import Cluster
from planner.sim.metrics import summarize


def simulate(sc, cost=None, *, load_scale: float = 1.0, num_blocks: int | None = None, progress=None):
    """Run a scenario; returns (cluster, summary). The cluster holds the records and time series. A scenario
    past its work limits (sim.max_requests, sim.max_replica_seconds) is refused before it starts."""
    budget.check(sc, load_scale)
    cl = Cluster(sc, cost or build_cost_model(sc), num_blocks=num_blocks, load_scale=load_scale,
                 progress=progress).run()
    return cl, summarize(cl)
