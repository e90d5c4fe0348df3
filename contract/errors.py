"""The one error every product package raises for bad input.

A problem is a (field, reason) pair: the field as a user writes it (`fleet.max_num_seqs`, `--duration`,
`trace`), the reason in words. The command lines print these without a traceback and exit 2.
"""
from __future__ import annotations


class InputError(Exception):
    """Bad input, with the offending field(s) named."""

    def __init__(self, problems: "list[tuple[str, str]] | str"):
        if isinstance(problems, str):  # re-created from its message (SimPy re-raises process errors so)
            problems = [("", problems)]
        self.problems = list(problems)
        super().__init__("\n".join(f"{f}: {msg}" if f else msg for f, msg in self.problems))

    @classmethod
    def field(cls, name: str, reason: str) -> "InputError":
        return cls([(name, reason)])
