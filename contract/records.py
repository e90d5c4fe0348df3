"""The request record: how every request, simulated or served by the engine, ends up.

Both the simulator and the engine write these columns, so a run of one can be set against a run of the
other line for line. Every request ends with exactly one final status.
"""
from __future__ import annotations

import csv
import gzip
from pathlib import Path

# final statuses; a request still in flight when a run stops is "unfinished", never dropped
STATUSES = ("completed", "rejected", "timed_out", "failed", "unfinished")

COLUMNS = ("rid", "arrival", "first_token", "finish", "scheduled", "input_tokens", "output_tokens", "status",
           "reason", "tier", "tenant", "replica", "preemptions", "retries", "prefix_hit_tokens")


def _open(path: Path, mode: str):
    return gzip.open(path, mode + "t", newline="") if path.suffix == ".gz" else path.open(mode, newline="")


def write_records(path: str | Path, records: list[dict]) -> None:
    """Records as CSV with the contract's columns; gzipped when the name ends in .gz."""
    path = Path(path)
    with _open(path, "w") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(records)


def read_records(path: str | Path) -> list[dict]:
    """Rows of a records CSV (or .csv.gz) as strings by column."""
    with _open(Path(path), "r") as fh:
        return list(csv.DictReader(fh))
