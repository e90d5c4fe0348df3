"""Request traces: the Azure LLM inference CSV (as published), Mooncake JSONL, ShareGPT lengths.

Every problem -- unreadable file, missing column, negative or non-numeric
tokens, timestamps going backwards -- is a TraceError naming the file, line
and column.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from contract.errors import InputError

AZURE = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
SHAREGPT = ("num_prefill_tokens", "num_decode_tokens")
MOONCAKE = ("timestamp", "input_length", "output_length")


class TraceError(InputError):
    def __init__(self, path, msg: str | None = None, line: int | None = None):
        if msg is None:  # re-created from its message
            super().__init__(str(path))
            return
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__([("trace", f"{where}: {msg}")])


@dataclass(frozen=True)
class Trace:
    path: str
    timestamps: np.ndarray | None  # seconds from the first request; None for length-only traces
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    hash_ids: list | None = None  # Mooncake: 512-token prefix-block ids per request
    hash_block_tokens: int = 512

    def column(self, name: str) -> np.ndarray:
        aliases = {"input": self.input_tokens, "output": self.output_tokens,
                   "ContextTokens": self.input_tokens, "GeneratedTokens": self.output_tokens,
                   "num_prefill_tokens": self.input_tokens, "num_decode_tokens": self.output_tokens,
                   "input_length": self.input_tokens, "output_length": self.output_tokens}
        if name not in aliases:
            raise TraceError(self.path, f"no column '{name}' (use one of {', '.join(sorted(aliases))})")
        return aliases[name]


def _int(v, path, line, col) -> int:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise TraceError(path, f"{col} is not a number: {v!r}", line)
    if not math.isfinite(x):
        raise TraceError(path, f"{col} is not a finite number ({v})", line)
    if x < 0:
        raise TraceError(path, f"{col} is negative ({v})", line)
    if x != int(x):
        raise TraceError(path, f"{col} is not a whole number of tokens ({v})", line)
    return int(x)


def _ts(v, path, line, col: str = "TIMESTAMP", scale: float = 1.0) -> float:
    """Seconds (a number, times `scale`) or an ISO date-time; NaN, inf and text that is neither are errors."""
    if isinstance(v, bool):
        raise TraceError(path, f"{col} {v!r} is not a time", line)
    try:
        x = float(v) * scale
    except (TypeError, ValueError):
        if not isinstance(v, str):
            raise TraceError(path, f"{col} {v!r} is neither seconds nor an ISO date-time", line)
        try:
            return datetime.fromisoformat(v.strip()).timestamp()
        except ValueError:
            raise TraceError(path, f"{col} {v!r} is neither seconds nor an ISO date-time", line)
    if not math.isfinite(x):
        raise TraceError(path, f"{col} is not a finite time ({v})", line)
    return x


def _load_csv(p: Path) -> Trace:
    with p.open(newline="") as fh:
        rd = csv.reader(fh)
        try:
            header = [h.strip() for h in next(rd)]
        except StopIteration:
            raise TraceError(p, "file is empty")
        if all(c in header for c in AZURE):
            ti, ii, oi = (header.index(c) for c in AZURE)
        elif all(c in header for c in SHAREGPT):
            ti, ii, oi = None, header.index(SHAREGPT[0]), header.index(SHAREGPT[1])
        else:
            missing = [c for c in AZURE if c not in header]
            raise TraceError(p, f"missing column(s) {', '.join(missing)}; expected the Azure trace columns "
                                f"{', '.join(AZURE)} (or ShareGPT's {', '.join(SHAREGPT)})", 1)
        ts, ins, outs = [], [], []
        for n, row in enumerate(rd, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise TraceError(p, f"expected {len(header)} fields, found {len(row)}", n)
            if ti is not None:
                ts.append(_ts(row[ti], p, n))
            ins.append(_int(row[ii], p, n, header[ii]))
            outs.append(_int(row[oi], p, n, header[oi]))
    return _finish(p, ts if ti is not None else None, ins, outs)


def _load_jsonl(p: Path) -> Trace:
    ts, ins, outs, hashes = [], [], [], []
    with p.open() as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as e:
                raise TraceError(p, f"not JSON: {e}", n)
            if not isinstance(r, dict):
                raise TraceError(p, f"a line must be a JSON object, found {type(r).__name__}", n)
            missing = [c for c in MOONCAKE if c not in r]
            if missing:
                raise TraceError(p, f"missing field(s) {', '.join(missing)}", n)
            ts.append(_ts(r["timestamp"], p, n, "timestamp", 1e-3))  # Mooncake stamps are milliseconds
            ins.append(_int(r["input_length"], p, n, "input_length"))
            outs.append(_int(r["output_length"], p, n, "output_length"))
            hashes.append(tuple(r.get("hash_ids") or ()))
    return _finish(p, ts, ins, outs, hashes if any(hashes) else None)


def _finish(p, ts, ins, outs, hashes=None) -> Trace:
    if not ins:
        raise TraceError(p, "no requests in trace")
    t = None
    if ts is not None:
        t = np.asarray(ts, dtype=float)
        order = np.argsort(t, kind="stable")
        if (order != np.arange(len(t))).any():  # tolerate unsorted files, but keep rows aligned
            ins, outs = [ins[i] for i in order], [outs[i] for i in order]
            hashes = [hashes[i] for i in order] if hashes else hashes
            t = t[order]
        t = t - t[0]
    return Trace(str(p), t, np.asarray(ins, dtype=np.int64), np.asarray(outs, dtype=np.int64), hashes)


@lru_cache(maxsize=16)
def load_trace(path: str) -> Trace:
    p = Path(path)
    if not p.exists():
        raise TraceError(p, "file does not exist")
    try:
        return _load_jsonl(p) if p.suffix in (".jsonl", ".json") else _load_csv(p)
    except UnicodeDecodeError as e:
        raise TraceError(p, f"unreadable (not text): {e}")
    except OSError as e:
        raise TraceError(p, f"unreadable: {e}")
