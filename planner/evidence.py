"""What the published results say about an answer: for the stack preset and GPU that answered, the rows of that
stack's published results on that GPU held out from the preset's fit, how many the preset predicted within their
limits, and the median error. An answer carries it so that a reader sees at once whether it rests on evidence,
and how good that evidence is, before buying a fleet on it.

The rows come from the committed evaluation (`planner stacks evaluate --json planner/data/public/evaluation.json`,
regenerated whenever the table, a preset or a hardware profile changes; a test checks it covers the table)."""
from __future__ import annotations

import functools
import json
import statistics

from planner.resources import _path
from planner.stacks import CAPACITY_METRICS, FIT_SPLITS

EVALUATION = _path("data", "public", "evaluation.json")


@functools.lru_cache(maxsize=1)
def evaluation_rows() -> tuple[dict, ...]:
    return tuple(json.loads(EVALUATION.read_text())["rows"])


def _count(sel: list[dict]) -> dict:
    errs = [abs(r["err_preset"]) for r in sel]
    return {"rows": len(sel), "within": sum(e <= r["limit"] for e, r in zip(errs, sel)),
            "median_abs_err": statistics.median(errs) if errs else None}


def stack_evidence(stack: str, gpu: str, rows=None) -> dict:
    """The held-out rows (every split but the fitted ones) of `stack` on `gpu` that its preset predicted: count,
    how many within their metric's limit, median |error|, and which held-out sets they come from -- in all, and
    apart for capacity rows (throughput, sustained rate: what a fleet size rests on) and latency rows."""
    rows = evaluation_rows() if rows is None else rows
    sel = [r for r in rows if r["stack"] == stack and r["gpu"] == gpu and r["split"] not in FIT_SPLITS
           and r.get("err_preset") is not None]
    cap = [r for r in sel if r.get("metric") in CAPACITY_METRICS]
    lat = [r for r in sel if r.get("metric") not in CAPACITY_METRICS]
    return {"stack": stack, "gpu": gpu, **_count(sel), "sets": sorted({r["split"] for r in sel}),
            "capacity": _count(cap), "latency": _count(lat)}


def describe(ev: dict) -> str:
    if not ev["rows"]:
        return (f"no published {ev['stack']} results on {ev['gpu']} held out from its fit: this answer is unchecked "
                f"against that stack on this GPU")
    parts = [f"{k} {ev[k]['within']} of {ev[k]['rows']} (median |error| {ev[k]['median_abs_err']:.0%})"
             for k in ("capacity", "latency") if ev.get(k, {}).get("rows")]
    return (f"published {ev['stack']} results on {ev['gpu']} held out from its fit: {ev['within']} of {ev['rows']} "
            f"within limits, median |error| {ev['median_abs_err']:.0%}" + (f" -- {'; '.join(parts)}" if parts else "")
            + f" ({', '.join(ev['sets'])}; docs/public_results.md)")
