"""Where the TensorRT-LLM preset misses on published throughput: median error and rows within 10% by TP degree,
GPU and source release, over every held-out row of the committed evaluation (no prediction is rerun).

    python -m lab.studies.public_error_map.error_map > lab/studies/public_error_map/result.md
"""
from __future__ import annotations

import collections
import csv
import json
import statistics

from lab.paths import ROOT
from planner.stacks import FIT_SPLITS


def main() -> None:
    ev = json.loads((ROOT / "planner/data/public/evaluation.json").read_text())["rows"]
    with open(ROOT / "planner/data/public/results.csv", newline="") as fh:
        published = {r["id"]: r["published"] for r in csv.DictReader(fh)}
    groups = collections.defaultdict(list)
    for r in ev:
        if r["stack"] == "trtllm" and r["metric"] == "output_tok_s" and r["err_preset"] is not None \
                and r["split"] not in FIT_SPLITS:
            groups[(r["tp"], r["gpu"], published[r["id"]], r["dtype"])].append(r["err_preset"])
    print("| TP | GPU | source | weights | rows | median error | within 10% |")
    print("|---|---|---|---|---|---|---|")
    for (tp, gpu, src, dt), errs in sorted(groups.items()):
        print(f"| {tp} | {gpu} | {src} | {dt} | {len(errs)} | {statistics.median(errs):+.1%} | "
              f"{sum(abs(e) <= 0.10 for e in errs)} |")


if __name__ == "__main__":
    main()
