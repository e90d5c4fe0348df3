"""The request record (DESIGN.md contract 4) and the per-attempt sequence state a replica keeps."""
from __future__ import annotations

import math


class Request:
    """One client request, across all its attempts. Every run accounts for each exactly once."""

    __slots__ = ("rid", "arrival", "prompt_len", "output_len", "tenant", "tier", "session", "prefix_id",
                 "hash_ids", "status", "reason", "first_token", "finish", "replica", "preemptions",
                 "retries", "attempt_arrival", "scheduled", "user", "prefix_hit_tokens", "prefix_tokens", "_keys")

    def __init__(self, rid: int, arrival: float, prompt_len: int, output_len: int, tenant: str = "default",
                 tier: str = "default", session: int | None = None, prefix_id: int = -1, hash_ids=None,
                 user: int | None = None, prefix_tokens: int = 0):
        self.rid, self.arrival, self.prompt_len, self.output_len = rid, arrival, prompt_len, output_len
        self.tenant, self.tier, self.session, self.prefix_id, self.hash_ids = tenant, tier, session, prefix_id, hash_ids
        self.status = None
        self.reason = ""
        self.first_token = self.finish = self.scheduled = None
        self.replica = -1
        self.preemptions = self.retries = self.prefix_hit_tokens = 0
        self.attempt_arrival = arrival
        self.user = user
        self.prefix_tokens = prefix_tokens  # length of the shared system prompt this request starts with
        self._keys = None

    def block_keys(self, block_size: int) -> list:
        """Content keys of the prompt's full blocks that can be shared, chained and scoped by tenant.

        A system prompt's blocks are keyed by (tenant, prompt id, index); a Mooncake trace's 512-token
        hash ids by the chain of ids up to that block. Unshared content gets no key (it cannot hit).
        """
        if self._keys is not None:
            return self._keys
        keys: list = []
        if self.hash_ids:
            per = 512 // block_size if 512 % block_size == 0 else None
            chain = hash((self.tenant,))
            chains = []
            for h in self.hash_ids:
                chain = hash((chain, h))
                chains.append(chain)
            nfull = self.prompt_len // block_size
            for i in range(nfull):
                hb = (i * block_size) // 512
                if hb >= len(chains):
                    break
                keys.append(hash((chains[hb], i % per if per else i)))
        elif self.prefix_id >= 0 and self.prefix_tokens:
            n = min(self.prefix_tokens, self.prompt_len) // block_size
            keys = [hash((self.tenant, "sys", self.prefix_id, i)) for i in range(n)]
        self._keys = keys
        return keys


class Seq:
    """A request's state inside one replica during one attempt."""

    __slots__ = ("req", "target", "computed", "generated", "nb", "private", "held", "reg", "order", "state",
                 "off", "goff", "epoch", "deadline", "static_fin", "prio", "preemptible", "risk_at", "swapped",
                 "enqueued")

    def __init__(self, req: Request, deadline: float, prio: int = 0, preemptible: bool = True,
                 risk_at: float = math.inf, now: float = 0.0):
        self.req = req
        self.prio, self.preemptible = prio, preemptible  # tier priority (0 most important)
        self.risk_at = risk_at  # when its wait puts its tier's SLA at risk
        self.swapped = False  # KV swapped out to the host (preemption_mode: swap)
        self.enqueued = now
        self.target = req.prompt_len  # tokens to prefill (prompt, or prompt + output after a preemption)
        self.computed = 0  # tokens whose KV is in cache
        self.generated = 0
        self.nb = 0  # blocks held
        self.private = 0  # of which not shared through the prefix cache
        self.held: list = []  # prefix-cache keys held
        self.reg = 0  # blocks examined for prefix registration
        self.order = 0
        self.state = "W"  # W waiting, P prefilling, D decoding, F done
        self.off = self.goff = 0
        self.epoch = 0
        self.deadline = deadline
        self.static_fin = None
