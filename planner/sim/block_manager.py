"""Paged KV accounting for one replica: block counts, and a prefix cache of shared blocks by key.

Private blocks are only counted (their identity never matters to timing);
shared blocks are tracked by content key with reference counts, and a block
whose count drops to zero stays cached but evictable (LRU), as in vLLM.
"""
from __future__ import annotations

from collections import OrderedDict


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        if num_blocks <= 0:
            raise ValueError("a replica needs at least one KV block")
        self.num_blocks, self.block_size = num_blocks, block_size
        self.caching = enable_prefix_caching
        self.free = num_blocks
        self.ref: dict[int, int] = {}  # key -> refcount, for cached blocks
        self.evictable: OrderedDict[int, None] = OrderedDict()  # keys with refcount 0, LRU first

    @property
    def available(self) -> int:
        return self.free + len(self.evictable)

    @property
    def used(self) -> int:
        return self.num_blocks - self.available

    def match(self, keys: list) -> int:
        """Leading keys already cached (a chain: stop at the first miss)."""
        if not self.caching:
            return 0
        n = 0
        for k in keys:
            if k not in self.ref:
                break
            n += 1
        return n

    def acquire(self, keys) -> None:
        for k in keys:
            c = self.ref[k]
            if c == 0:
                del self.evictable[k]
            self.ref[k] = c + 1

    def allocate(self, n: int) -> bool:
        """Take n private blocks, evicting cached-but-unused ones if needed."""
        if n <= 0:
            return True
        if n > self.available:
            return False
        take = min(n, self.free)
        self.free -= take
        for _ in range(n - take):
            k, _ = self.evictable.popitem(last=False)
            del self.ref[k]
        return True

    def register(self, key) -> bool:
        """Publish a just-computed private block under `key`; False if that content is cached already."""
        if not self.caching or key in self.ref:
            return False
        self.ref[key] = 1
        return True

    def release(self, private: int, keys) -> None:
        self.free += private
        for k in keys:
            c = self.ref[k] - 1
            self.ref[k] = c
            if c == 0:
                self.evictable[k] = None

    def check(self) -> None:
        """Invariants: counts within bounds, evictable exactly the zero-ref keys."""
        assert 0 <= self.free <= self.num_blocks
        assert all(c >= 0 for c in self.ref.values())
        assert set(self.evictable) == {k for k, c in self.ref.items() if c == 0}
        assert self.free + len(self.ref) <= self.num_blocks
