"""Routing requests to replicas: round-robin, least outstanding tokens, session affinity."""
from __future__ import annotations


class Router:
    def __init__(self, policy: str, replicas: list, reserved: dict[str, float] | None = None,
                 spot: list | None = None, spot_tiers=()):
        """`reserved`: tier -> share of the replicas dedicated to it (guaranteed capacity). A tier with a
        reservation uses its own replicas and the shared pool; nobody else uses its replicas."""
        self.policy, self.replicas = policy, replicas
        self._rr = 0
        self.allowed: dict[str, list] = {}
        if reserved:
            n, i = len(replicas), 0
            own = {}
            for tier, share in reserved.items():
                k = max(1, round(share * n)) if share > 0 else 0
                own[tier] = replicas[i:i + k]
                i += k
            if i >= n:
                raise ValueError(f"reserved shares {reserved} leave no shared replica out of {n}")
            shared = replicas[i:]
            self.allowed = {t: own[t] + shared for t in own}
            self.allowed["*"] = shared
        if spot:  # spot replicas serve only the spot tiers (on top of whatever else those tiers may use)
            base = self.allowed.get("*", replicas)
            for t in spot_tiers:
                self.allowed[t] = self.allowed.get(t, base) + list(spot)
            self.allowed.setdefault("*", base)

    def candidates(self, req) -> list:
        if not self.allowed:
            return self.replicas
        return self.allowed.get(req.tier, self.allowed["*"])

    def choose(self, req):
        """The replica for this request, or None when none is up."""
        reps = self.candidates(req)
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
