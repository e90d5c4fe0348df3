"""Why the held-out runs of protocol v1 missed: each engine step against the calibrated model's time for the
same batch (tokens, sequences, contexts, chunks), median ratio model/measured by step kind.

    python -m lab.studies.heldout_v1_misses.diagnose [--profile planner/data/profiles/h200.json.gz]

A ratio below 1 means the model's step is faster than the engine's. Steps are timed schedule to next schedule
(what the calibrated model is fitted to); idle gaps (the engine waiting for arrivals) are left out.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from contract.catalog import GPUS, MODELS
from lab.paths import ROOT
from planner.cost import CalibratedCostModel

DATA = ROOT / "lab" / "validation" / "heldout" / "h200"


def step_ratios(meta: dict, steps: pd.DataFrame, profile: str) -> dict:
    k = meta["knobs"]
    m = CalibratedCostModel.from_profile(profile, MODELS[meta["model"]], GPUS[meta["gpu"]],
                                         tp=k.get("tensor_parallel_size", 1),
                                         quantization=k.get("quantization", "bf16"),
                                         kv_cache_dtype=k.get("kv_cache_dtype", "auto"),
                                         max_num_batched_tokens=k["max_num_batched_tokens"])
    d = steps.copy()
    d["iter"] = d["sched"].shift(-1) - d["sched"]
    d = d[(d["idle_before"].shift(-1) == 0) & d["iter"].notna()]
    out = {}
    for kind, sel in (("decode", d.prefill_tokens == 0), ("mixed", d.prefill_tokens > 0)):
        s = d[sel]
        if len(s) < 5:
            continue
        pred = []
        for r in s.itertuples():
            if r.prefill_tokens == 0:
                pred.append(m.time(r.decodes, r.decodes, r.decode_ctx))
            else:
                c = max(1, r.chunks)
                pre = [(r.prefill_tokens // c, r.prefill_ctx // c)] * c
                pred.append(m.time(r.decodes + r.prefill_tokens, r.decodes + c, r.decode_ctx, pre))
        ratio = np.array(pred) / s["iter"].to_numpy()
        out[kind] = {"steps": len(s), "median_measured_ms": float(s["iter"].median() * 1e3),
                     "median_model_ms": float(np.median(pred) * 1e3), "median_ratio": float(np.median(ratio))}
    out["model_description"] = m.description
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default=str(ROOT / "planner/data/profiles/h200.json.gz"))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("step_ratios.json"))
    ap.add_argument("--decode-graph-padding", action=argparse.BooleanOptionalAction, default=None,
                    help="CalibratedCostModel.decode_graph_padding on/off (default: the model's setting)")
    a = ap.parse_args(argv)
    if a.decode_graph_padding is not None:
        CalibratedCostModel.decode_graph_padding = a.decode_graph_padding
    res = {}
    print("| run | decode steps | measured ms | model ms | model/measured | mixed steps | measured ms | model ms "
          "| model/measured |")
    print("|---|---|---|---|---|---|---|---|---|")
    for p in sorted(a.data.glob("*.meta.json")):
        meta = json.loads(p.read_text())
        stem = p.name[: -len(".meta.json")]
        r = step_ratios(meta, pd.read_csv(a.data / f"{stem}.steps.csv.gz"), a.profile)
        res[stem] = r
        dd, mm = r.get("decode", {}), r.get("mixed", {})
        f = lambda x, k, fmt: format(x[k], fmt) if k in x else "-"  # noqa: E731
        print(f"| {stem} | {f(dd, 'steps', 'd')} | {f(dd, 'median_measured_ms', '.2f')} | "
              f"{f(dd, 'median_model_ms', '.2f')} | {f(dd, 'median_ratio', '.2f')} | {f(mm, 'steps', 'd')} | "
              f"{f(mm, 'median_measured_ms', '.2f')} | {f(mm, 'median_model_ms', '.2f')} | "
              f"{f(mm, 'median_ratio', '.2f')} |")
    a.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
