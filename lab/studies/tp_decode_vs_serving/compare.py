"""Why the TP decode-step prediction misses the isolated-step benchmark while it holds on served runs.

    python -m lab.studies.tp_decode_vs_serving.compare [--out lab/studies/tp_decode_vs_serving/result.md]

For the 8B on each product profile's GPU, per TP degree and batch: the steady decode step that
`bench/tp_decode.py --measure` timed (512-token prompts, the engine alone, round 13 -- the same hosts and round that
timed the profile's TP serving iterations), the median decode-only serving iteration of the profile at that batch
(+-1/8, schedule to next schedule, the calibration ramp), and the calibrated model at each one's mean context.
The model is fitted to serving iterations; the benchmark's isolated steps are not what a server runs.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from contract.catalog import GPUS, MODELS
from contract.profile import Profile
from lab.paths import ROOT
from planner.cost import CalibratedCostModel

CASES = (("H100-SXM", "h100", "tp_decode_h100x4_round13.json"), ("H200", "h200", "tp_decode_h200x4_round13.json"))
MODEL = "llama-3.1-8b"


def rows() -> list[dict]:
    out = []
    for gpu, name, bench in CASES:
        prof = Profile.load(ROOT / "planner" / "data" / "profiles" / f"{name}.json.gz")
        meas = json.loads((ROOT / "bench" / "results" / bench).read_text())["rows"]
        models = {}
        for r in meas:
            tp, b = r["tp"], r["batch"]
            m = models.get(tp) or models.setdefault(tp, CalibratedCostModel(prof, MODELS[MODEL], GPUS[gpu], tp=tp))
            its = [i for i in prof.iterations if i.model == MODEL and i.tp == tp and i.chunks == 0
                   and i.quantization == "bf16" and abs(i.decodes - b) <= max(1, b // 8)]
            row = {"gpu": gpu, "tp": tp, "batch": b, "bench_ms": r["step_s"] * 1e3,
                   "model_at_bench_ms": m.decode_time(b, int(r["mean_context"] * b)) * 1e3,
                   "iterations": len(its), "iteration_tp": m.iteration_tp}
            if its:
                ctx = float(np.median([i.decode_ctx / i.decodes for i in its]))
                row["serving_ms"] = float(np.median([i.seconds for i in its])) * 1e3
                row["model_at_serving_ms"] = float(np.median([m.decode_time(i.decodes, i.decode_ctx)
                                                              for i in its])) * 1e3
                row["serving_context"] = ctx
            out.append(row)
    return out


def table(rs: list[dict]) -> str:
    lines = ["| GPU | TP | batch | bench step ms | model at its context | error | serving iteration ms (n) | "
             "model | error |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rs:
        e1 = r["model_at_bench_ms"] / r["bench_ms"] - 1
        srv = "-" if "serving_ms" not in r else f"{r['serving_ms']:.2f} ({r['iterations']})"
        mod = "-" if "serving_ms" not in r else f"{r['model_at_serving_ms']:.2f}"
        e2 = "-" if "serving_ms" not in r else f"{r['model_at_serving_ms'] / r['serving_ms'] - 1:+.1%}"
        note = "" if r["iteration_tp"] == r["tp"] else f" (overhead from TP={r['iteration_tp']})"
        lines.append(f"| {r['gpu']} | {r['tp']}{note} | {r['batch']} | {r['bench_ms']:.2f} | "
                     f"{r['model_at_bench_ms']:.2f} | {e1:+.1%} | {srv} | {mod} | {e2} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    text = table(rows())
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
