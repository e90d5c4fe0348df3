"""Routing requests to replicas: round-robin, least outstanding tokens, session affinity."""
from __future__ import annotations


class Router:
    def __init__(self, policy: str, replicas: list):
        self.policy, self.replicas = policy, replicas
        self._rr = 0

    def live(self) -> list:
        return [r for r in self.replicas if r.routable]

    def choose(self, req):
        """The replica for this request, or None when none is up."""
        reps = self.replicas
        if self.policy == "round_robin":
            for _ in range(len(reps)):
                r = reps[self._rr % len(reps)]
                self._rr += 1
                if r.routable:
                    return r
            return None
        if self.policy == "session_affinity" and req.session is not None:
            r = reps[hash(req.session) % len(reps)]
            if r.routable:
                return r
        best, best_load = None, None
        for r in reps:  # least outstanding tokens (prompt + output of unfinished requests)
            if r.routable and (best is None or r.outstanding_tokens < best_load):
                best, best_load = r, r.outstanding_tokens
        return best
