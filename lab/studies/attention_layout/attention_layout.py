"""Paged decode attention as the old calibration table timed it vs as a serving engine runs it.

The table used to time one layer's paged decode with every sequence at the same context, each sequence's blocks
contiguous, and the same call replayed back to back -- so at small batches the whole KV (a few MB) sat in the
50 MB L2 -- on a x4 context grid. A serving step reads each layer's KV once, cold, from blocks scattered over a
pool of tens of GB, at contexts spread around the mean. This times the kernel under each condition at the same
(batch, mean context), so the difference is seen, not guessed (on a GPU, with the kernels):

    python -m lab.studies.attention_layout.attention_layout --out lab/studies/attention_layout/attention_layout_h100.json

variants: hot (the old table), cold (a different table each call until 200 MB are read), cold+scattered
(random blocks of an 8 GiB pool), cold+scattered+spread (contexts uniform in [0.2, 1.8] x the mean: what
engine.calibrate.measure_attention times now).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from engine.calibrate import DECODE_SPREAD, decode_attention_time, spread_lengths

LAYOUTS = {"llama-3.2-1b": (32, 8, 64), "llama-3.1-8b": (32, 8, 128)}
VARIANTS = {"hot": dict(cold=False, scattered=False, spread=0.0),  # the table's method before this script
            "cold": dict(cold=True, scattered=False, spread=0.0),
            "cold+scattered": dict(cold=True, scattered=True, spread=0.0),
            "cold+scattered+spread": dict(cold=True, scattered=True, spread=DECODE_SPREAD)}  # the table's now


def measure(layout, batch, ctx, variant, kc, vc, seed=0):
    from kernels.paged_attention import paged_decode
    heads, kvh, hd = layout
    v = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    lens = spread_lengths(batch, ctx, v["spread"], rng)
    q = torch.randn(batch, heads, hd, device="cuda", dtype=torch.bfloat16)
    s = decode_attention_time(lambda q_, k, v_, t, cl, sc, out: paged_decode(q_, k, v_, t, cl, sc, out=out),
                              q, kc, vc, lens, rng, cold=v["cold"], scattered=v["scattered"])
    kv_bytes = int(lens.sum()) * kvh * hd * 2 * 2
    return {"layout": layout, "batch": batch, "context": ctx, "variant": variant, "seconds": s,
            "kv_bytes": kv_bytes, "gbps": kv_bytes / s / 1e9}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="lab/studies/attention_layout/attention_layout.json")
    ap.add_argument("--batches", default="1,4,8,16,32,64")
    ap.add_argument("--contexts", default="512,650,1024,2048")
    ap.add_argument("--pool-gib", type=float, default=8.0)
    a = ap.parse_args()
    rows = []
    for model, layout in LAYOUTS.items():
        heads, kvh, hd = layout
        kc = torch.randn(int(a.pool_gib * 2**30 / (2 * 16 * kvh * hd * 2)), 16, kvh, hd, device="cuda",
                         dtype=torch.bfloat16)
        vc = torch.randn_like(kc)
        for ctx in map(int, a.contexts.split(",")):
            for b in map(int, a.batches.split(",")):
                line = []
                for v in VARIANTS:
                    r = measure(layout, b, ctx, v, kc, vc)
                    r["model"] = model
                    rows.append(r)
                    line.append(f"{v} {r['seconds'] * 1e6:7.1f} us ({r['gbps']:5.0f} GB/s)")
                print(f"{model} b={b:3d} ctx={ctx:5d}: " + " | ".join(line), flush=True)
        del kc, vc
        torch.cuda.empty_cache()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"device": torch.cuda.get_device_name(), "rows": rows}, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
