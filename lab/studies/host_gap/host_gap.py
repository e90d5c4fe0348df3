"""Host gap per decode iteration (schedule to next schedule minus the forward's GPU time), and the host's own
scheduling work (schedule to the step's start, Python only), per batch bin, in the committed runs' step
logs: H100 runs against H200 runs of the same traces.

    python -m lab.studies.host_gap.host_gap [--runs poisson-0.4,poisson-0.8]

The calibrated model carries a profile's fitted per-step overheads to another GPU as measured; this shows how
much of a step the GPU spends waiting on the host on each.
"""
from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path

import numpy as np

from lab.paths import ROOT

BINS = [(1, 4), (4, 16), (16, 32), (32, 48), (48, 65)]
SETS = [("H100-SXM", ROOT / "lab" / "validation" / "h100"), ("H200", ROOT / "lab" / "validation" / "h200")]


def decode_iterations(path: Path) -> np.ndarray:
    """(batch, iteration s, GPU s, scheduling s) of the decode-only steps followed by another step without
    idling."""
    op = gzip.open if path.suffix == ".gz" else open
    with op(path, "rt") as fh:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    out = [(c["decodes"], nx["sched"] - c["sched"], c["gpu_s"], c["start"] - c["sched"]) for c, nx in zip(rows, rows[1:])
           if not nx["idle_before"] and not c["chunks"] and c["decodes"] and c["gpu_s"] == c["gpu_s"]]
    return np.array(out, float).reshape(-1, 4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="poisson-0.4,poisson-0.8")
    a = ap.parse_args()
    print("| model | GPU | " + " | ".join(f"batch {lo}-{hi - 1}: iteration / GPU / host gap / scheduling (ms)"
                                           for lo, hi in BINS) + " |")
    print("|---" * (2 + len(BINS)) + "|")
    for model in ("llama-3.2-1b", "llama-3.1-8b"):
        for gpu, data in SETS:
            its = [decode_iterations(p) for run in a.runs.split(",")
                   for p in sorted(data.glob(f"{model}_{gpu}_{run}.replay*.steps.csv.gz"))]
            x = np.concatenate(its) if its else np.zeros((0, 4))
            cells = []
            for lo, hi in BINS:
                s = x[(x[:, 0] >= lo) & (x[:, 0] < hi)]
                cells.append(f"{s[:, 1].mean() * 1e3:.3f} / {s[:, 2].mean() * 1e3:.3f} / "
                             f"{(s[:, 1] - s[:, 2]).mean() * 1e3:.3f} / {s[:, 3].mean() * 1e3:.3f} (n={len(s)})"
                             if len(s) >= 30 else "-")
            print(f"| {model} | {gpu} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
