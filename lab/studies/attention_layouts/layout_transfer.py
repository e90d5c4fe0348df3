"""How well does a decode-attention table of one layout stand for another? Each measured layout of a profile is
predicted from the layout the calibrated model would pick among the others (planner.cost.calibrated.layout_rank),
carried by layout_scale (KV bytes^(1-w) x query heads^w); the error is |log(predicted / measured)| over the
layout's rows at 8 or more sequences, its median per layout, then the median over layouts.

    python -m lab.studies.attention_layouts.layout_transfer planner/data/profiles/h100.json.gz
"""
from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict

from contract.profile import Profile
from planner.cost.calibrated import _Table2D, layout_rank, layout_scale

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def transfer_errors(profile: Profile, w: float) -> dict[tuple, tuple[float, tuple]]:
    """Layout -> (median |log error| predicting it from its stand-in, the stand-in)."""
    by = defaultdict(list)
    for r in profile.attention:
        if r.kind == "decode" and r.kv_dtype == "bf16":
            by[(r.heads, r.kv_heads, r.head_dim)].append(r)
    tabs = {lay: _Table2D([(r.a, r.context, r.seconds) for r in rows]) for lay, rows in by.items()}
    out = {}
    for t in tabs:
        best = min((lay for lay in tabs if lay != t), key=lambda lay: layout_rank(t, lay))
        scale = layout_scale(t, best, "decode", w)
        errs = [abs(math.log(tabs[best](r.a, r.context) * scale / r.seconds)) for r in by[t] if r.a >= 8]
        out[t] = (statistics.median(errs), best)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.studies.attention_layouts.layout_transfer")
    ap.add_argument("profiles", nargs="+")
    a = ap.parse_args(argv)
    for path in a.profiles:
        prof = Profile.load(path)
        print(f"{path} ({prof.device_name})")
        for w in WEIGHTS:
            e = transfer_errors(prof, w)
            worst = max(e, key=lambda k: e[k][0])
            print(f"  w={w:.2f}: median over {len(e)} layouts {statistics.median(v[0] for v in e.values()):.1%}, "
                  f"worst {worst} from {e[worst][1]} {e[worst][0]:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
