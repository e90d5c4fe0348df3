"""How well the planner's ring-model extrapolation of the all-reduce table to an unmeasured TP degree does, on
the one profile that measured two degrees inside CUDA graphs (the H100: TP=2 and TP=4).

    python -m lab.studies.allreduce_extrapolation.check

The TP=4 in-graph rows are removed, the model carries the TP=2 rows to TP=4 as it does for any unmeasured degree
(planner/cost/calibrated.py, `_allreduce_table`), and each message size is compared with the measured TP=4 row.
The H200 profile has in-graph rows at TP=2 only, so its TP=4 and TP=8 answers rest on this rule. The rule's
default exponent was taken from these same H100 rows, so the comparison it prints is in-sample for today's rule
(result.md); the ring model it replaced is in result_ring_model.md.
"""
from __future__ import annotations

from contract.catalog import GPUS, MODELS
from contract.profile import Profile
from lab.paths import ROOT
from planner.cost.calibrated import CalibratedCostModel


def compare(profile: Profile, src_tp: int = 2, dst_tp: int = 4) -> list[tuple[int, float, float]]:
    """(bytes, extrapolated s, measured s) per message size of the measured in-graph table at `dst_tp`."""
    measured = {r.bytes: r.seconds for r in profile.allreduce if r.graph and r.tp == dst_tp}
    if not measured:
        raise SystemExit(f"{profile.gpu}: no in-graph all-reduce rows at TP={dst_tp} to compare with")
    held_out = profile.model_copy(update={"allreduce": [r for r in profile.allreduce
                                                        if not (r.graph and r.tp == dst_tp)]})
    model = CalibratedCostModel(held_out, MODELS["llama-3.1-8b"], GPUS[profile.gpu], tp=dst_tp)
    _, _, rows = model._allreduce_table()
    return [(b, t, measured[b]) for b, t in rows if b in measured]


def main() -> int:
    prof = Profile.load(ROOT / "planner" / "data" / "profiles" / "h100.json.gz")
    print(f"{prof.device_name}: in-graph all-reduce, TP=2 rows carried to TP=4 vs TP=4 measured")
    print("| bytes | extrapolated us | measured us | error |")
    print("|---|---|---|---|")
    for b, t, m in compare(prof):
        print(f"| {b:,} | {t * 1e6:.1f} | {m * 1e6:.1f} | {t / m - 1:+.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
