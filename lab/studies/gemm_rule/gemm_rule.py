"""The cross-GPU GEMM rule against the paired cold GEMM tables of an H100 and two H200 machines, and the
alternatives to it.

    python -m lab.studies.gemm_rule.gemm_rule > lab/studies/gemm_rule/gemm_rule.md      # seconds, no GPU

For every bf16 (token count, N, K) point that the H100 profile and both H200 profiles measured, the H100 time is
carried to the H200 by the model's rule (`CalibratedCostModel.gemm_on_target`: the roofline part moves with
the bounding resource, the rest is kept and added) and by a smooth maximum of a compute part (same on both
GPUs: the H200 has the H100's SMs and clocks on paper) and a memory part (moving with bandwidth),
t = (c^p + m^p)^(1/p) + rest, for several p; each is compared with the H200's own measurement, per token-count
range. Then the plain ratio H100 time / H200 time of the large GEMMs (>= 256 tokens, > 50 GFLOP), which no
rule that keeps compute equal can make below 1.
"""
from __future__ import annotations

import numpy as np

from contract.catalog import GPUS, MODELS
from contract.profile import Profile
from lab.paths import ROOT
from planner.cost import ACT_BYTES
from planner.cost.calibrated import CalibratedCostModel

RES = ROOT / "lab" / "calibration"  # the single calibrations
H100 = RES / "profile_h100_first_cold.json.gz"
H200S = [RES / "profile_h200_machine3.json.gz", RES / "profile_h200.json.gz"]
RANGES = [(1, 16), (17, 128), (129, 512), (513, 8192)]


def table(p: Profile) -> dict:
    return {(r.m, r.n, r.k): r.seconds for r in p.gemm if r.quantization == "bf16"}


def main() -> None:
    src = Profile.load(H100)
    a = table(src)
    bs = [table(Profile.load(p)) for p in H200S]
    keys = sorted(set(a).intersection(*bs))
    cm = CalibratedCostModel(src, MODELS["llama-3.1-8b"], GPUS["H200"])
    flops, bw1, bw2 = cm.src_roof.flops, cm.src_roof.bw, cm.roof.bw

    def rule(M, n, k, t1):
        return cm.gemm_on_target(M, n, k, t1)

    def smooth(p):
        def f(M, n, k, t1):
            c = 2.0 * M * n * k / flops
            m1 = (n * k * 2 + M * (n + k) * ACT_BYTES) / bw1
            core1, core2 = (m1 ** p + c ** p) ** (1 / p), ((m1 * bw1 / bw2) ** p + c ** p) ** (1 / p)
            return t1 * core2 / core1 if core1 >= t1 else t1 - core1 + core2
        return f

    rules = [("model's rule (additive)", rule)] + [(f"smooth max p = {p:g}", smooth(p)) for p in (1.5, 2, 3, 4, 8)]
    print(f"{len(keys)} paired bf16 GEMM points ({H100.name} against {', '.join(p.name for p in H200S)}); "
          "carried H100 time / H200's own - 1, RMS (mean) per token-count range:\n")
    print("| rule | " + " | ".join(f"{lo}-{hi} tokens" for lo, hi in RANGES) + " |")
    print("|---|" + "---|" * len(RANGES))
    for name, f in rules:
        cells = []
        for lo, hi in RANGES:
            parts = []
            for b in bs:
                e = np.array([f(M, n, k, a[(M, n, k)]) / b[(M, n, k)] - 1 for M, n, k in keys if lo <= M <= hi])
                parts.append(f"{np.sqrt(np.mean(e ** 2)):.1%} ({e.mean():+.1%})")
            cells.append(" / ".join(parts))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nLarge GEMMs (> 50 GFLOP): H100 time / H200 time, median (min-max) per token count, per H200 machine:\n")
    Ms = sorted({M for M, _, _ in keys if M >= 256})
    print("| tokens | " + " | ".join(p.name for p in H200S) + " |")
    print("|---|" + "---|" * len(H200S))
    for M in Ms:
        cells = []
        for b in bs:
            r = [a[key] / b[key] for key in keys if key[0] == M and 2 * key[1] * key[2] * M > 5e10]
            cells.append(f"{np.median(r):.3f} ({min(r):.3f}-{max(r):.3f}), n={len(r)}" if r else "-")
        print(f"| {M} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
