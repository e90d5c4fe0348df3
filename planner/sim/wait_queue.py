"""Waiting requests of one replica: one FIFO per priority level (a single level for FCFS)."""
from __future__ import annotations

from collections import deque


class WaitQueue:
    def __init__(self):
        self.levels: dict[int, deque] = {}
        self._order: list[int] = []
        self.n = 0

    def _level(self, prio: int) -> deque:
        q = self.levels.get(prio)
        if q is None:
            q = self.levels[prio] = deque()
            self._order = sorted(self.levels)
        return q

    def push(self, s) -> None:
        self._level(s.prio).append(s)
        self.n += 1

    def push_front(self, s) -> None:
        self._level(s.prio).appendleft(s)
        self.n += 1

    def pop_head(self, prio: int):
        self.n -= 1
        return self.levels[prio].popleft()

    def remove(self, s) -> None:
        self.levels[s.prio].remove(s)
        self.n -= 1

    def by_priority(self):
        """(priority, queue) pairs, most important first, non-empty only."""
        for p in self._order:
            q = self.levels[p]
            if q:
                yield p, q

    def head(self):
        for _, q in self.by_priority():
            return q[0]
        return None

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for _, q in self.by_priority():
            yield from q
