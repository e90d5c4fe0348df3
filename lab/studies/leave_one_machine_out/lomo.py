"""Leave one machine out: the H100 validation runs scored against one machine's own replay, with a profile pooled
from the calibrations of the *other* machines only (the first cold calibration's operator tables, every other
machine's serving iterations) -- what a user on a new H100 host sees, which the product profile (every machine
pooled) cannot show.

    python -m lab.studies.leave_one_machine_out.lomo [--out lab/studies/leave_one_machine_out/result.md]   # ~3 min

Machines with their own calibration and a replay made on them (lab/studies/own_machine): machine 4 (two
calibrations, replays 4 and 5), machines 5, 6, 7 (replays 6, 7, 8). The first four calibrations (first cold,
warm GEMMs, second and third machine) stay in every pool: no replay of theirs is paired with a host.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from contract.profile import Profile, pool_iterations
from lab.studies.own_machine.own_machine import DATA, RES, one_replay
from planner.validate import target_count, validate

ALWAYS = ["first_cold", "warm_gemms", "second_machine", "third_machine"]
HELD = {"machine 4": (["machine4_run1", "machine4_run2"], [4, 5]), "machine 5": (["machine5"], [6]),
        "machine 6": (["machine6"], [7]), "machine 7": (["machine7"], [8])}


def pooled_without(left_out: list[str], into: Path) -> Path:
    names = ALWAYS + [n for m, (cals, _) in HELD.items() for n in cals if n not in left_out]
    parts = [Profile.load(RES / f"profile_h100_{n}.json.gz") for n in names]
    path = into / "pooled.json.gz"
    pool_iterations(parts[0], parts[1:], names[1:]).save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    lines = ["| held-out machine | pooled from | against its own replay | within / cells |", "|---|---|---|---|"]
    counts = []
    for machine, (cals, replays) in HELD.items():
        with tempfile.TemporaryDirectory() as tmp:
            prof = pooled_without(cals, Path(tmp))
            for k in replays:
                ok, n = target_count(validate(one_replay(k, Path(tmp) / f"r{k}", DATA), str(prof)))
                counts.append(ok)
                pooled = len(ALWAYS) + sum(len(c) for m, (c, _) in HELD.items() if m != machine)
                lines.append(f"| {machine} | the other {pooled} calibrations | replay {k} | {ok} / {n} |")
                print(lines[-1], flush=True)
    lines += ["", f"Leave one machine out, H100: **{statistics.mean(counts):.1f} of 40 on average, range "
              f"{min(counts)}-{max(counts)}** ({', '.join(map(str, counts))}; one replay each: a single replay is "
              "itself one noisy draw of the engine, see lab/studies/own_machine)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text("`python -m lab.studies.leave_one_machine_out.lomo`:\n\n" + text)


if __name__ == "__main__":
    main()
