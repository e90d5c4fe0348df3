"""A profile whose serving iterations are pooled from several calibrations of one GPU kind (its operator
tables stay the first profile's). The 1B's serving iterations differed by 3-5% between H100 machines while
their operator tables agreed within 1%; pooling asks what the average machine would give.

    python bench/pool_iterations.py data/profiles/h100.json bench/results/profile_h100_warm_gemms.json.gz \
        bench/results/profile_h100_second_machine.json.gz bench/results/profile_h100_third_machine.json.gz \
        --out /tmp/h100_pooled.json
    python -m planner.cli validate --profile /tmp/h100_pooled.json
"""
from __future__ import annotations

import argparse

from planner.calibration import Profile


def pool(base: Profile, others: list[Profile]) -> Profile:
    """`base` with the serving iterations of every profile; all must stand for the same GPU."""
    bad = [o.gpu for o in others if o.gpu != base.gpu]
    if bad:
        raise ValueError(f"profiles stand for {base.gpu} and {sorted(set(bad))}: pool one GPU kind only")
    its = list(base.iterations)
    for o in others:
        its += o.iterations
    return base.model_copy(update={"iterations": its})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("others", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    prof = pool(Profile.load(a.base), [Profile.load(p) for p in a.others])
    with open(a.out, "w") as fh:
        fh.write(prof.model_dump_json(indent=1))
    print(f"{len(prof.iterations)} iterations from {1 + len(a.others)} profiles -> {a.out}")
