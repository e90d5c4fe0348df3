"""Where does an eager (prefill / mixed) engine step spend its time? Host (Python) vs GPU, per replay.

    python -m lab.studies.diagnose_steps.diagnose_steps --model llama-3.1-8b --seconds 10 [--kernels]

Replays the first seconds of a committed validation trace; for every step with a prefill it records the
wall time and the GPU time between events around the forward; then prints the hottest Python functions.
"""
from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import pstats
import statistics
from pathlib import Path

import numpy as np
import torch

from contract.catalog import MODELS
from engine.llm import LLM, EngineConfig
from engine.weights import build_model
from lab.paths import ROOT
from lab.validation_runs import KNOBS


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.1-8b")
    ap.add_argument("--run", default="poisson-0.4")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--kernels", action="store_true")
    ap.add_argument("--eager-kernels", default="on", choices=["on", "off"])
    a = ap.parse_args()
    stem = ROOT / "lab" / "validation" / "h100" / f"{a.model}_H100-SXM_{a.run}"
    meta = json.loads(Path(f"{stem}.meta.json").read_text())
    rows = [r for r in csv.DictReader(open(f"{stem}.trace.csv")) if float(r["TIMESTAMP"]) < a.seconds]
    model = build_model(MODELS[a.model], seed=0, dtype=torch.bfloat16, device="cuda")
    llm = LLM(EngineConfig(model=a.model, num_blocks=meta["num_blocks"], kernels=a.kernels, **KNOBS), model=model)
    if a.kernels and a.eager_kernels == "off":
        model.backend.eager = False
    llm.generate([[1] * 64] * 2)
    orig = llm.runner.forward
    rec = []

    def timed(batch):
        eager = not (llm.runner.use_graphs and all(n == 1 for _, n in batch))
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        import time
        t = time.perf_counter()
        s.record()
        out = orig(batch)
        e.record()
        host = time.perf_counter() - t
        e.synchronize()
        wall = time.perf_counter() - t
        rec.append((eager, host, wall, s.elapsed_time(e) / 1e3, sum(n for _, n in batch if n > 1), len(batch)))
        return out
    llm.runner.forward = timed
    llm.log_steps = True
    pr = cProfile.Profile()
    pr.enable()
    llm.replay(np.array([float(r["TIMESTAMP"]) for r in rows]), np.array([int(r["ContextTokens"]) for r in rows]),
               np.array([int(r["GeneratedTokens"]) for r in rows]))
    pr.disable()
    for eager in (True, False):
        r = [x for x in rec if x[0] == eager]
        if r:
            print(f"{'eager' if eager else 'graph'} steps {len(r)}: forward host-issue median "
                  f"{statistics.median(x[1] for x in r) * 1e3:.2f} ms, forward wall {statistics.median(x[2] for x in r) * 1e3:.2f}"
                  f" ms, GPU {statistics.median(x[3] for x in r) * 1e3:.2f} ms, prefill tokens median "
                  f"{statistics.median(x[4] for x in r):.0f}, batch median {statistics.median(x[5] for x in r):.0f}")
    steps = [b - s for s, b, *_ in llm.step_log]
    eag = [r[1] - r[0] for r in llm.step_log if not r[4]]
    print(f"step wall median {statistics.median(steps) * 1e3:.2f} ms; eager steps median {statistics.median(eag) * 1e3:.2f} ms")
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(22)
    print(s.getvalue()[-6000:])


if __name__ == "__main__":
    main()
