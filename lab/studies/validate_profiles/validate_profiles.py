"""Target counts of `planner validate` for every H100 profile measured so far, on the H100 runs and on the
H200 runs (EXTRAPOLATED): the table in README.md ("Calibration and validation"), by one command.

    python -m lab.studies.validate_profiles.validate_profiles --out lab/studies/validate_profiles/validate_profiles.md     # about 5 min on 2 cores

One calibration is one machine: the counts move by several cells between profiles whose operator tables
agree within 1%, because the engine's serving iterations differ by 3-8% per batch bin between calibrations.
"""
from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lab.paths import ROOT

RES = ROOT / "lab" / "calibration"  # the single calibrations
PROFILES = [
    ("profile_h100_first_cold.json.gz (cold GEMM tables; the product's operator tables)",
     RES / "profile_h100_first_cold.json.gz"),
    ("profile_h100_warm_gemms.json.gz (warm GEMM tables)", RES / "profile_h100_warm_gemms.json.gz"),
    ("profile_h100_second_machine.json.gz (warm)", RES / "profile_h100_second_machine.json.gz"),
    ("profile_h100_third_machine.json.gz (warm)", RES / "profile_h100_third_machine.json.gz"),
    ("profile_h100_machine4_run1.json.gz (cold; replays 4 made after it, same GPU)", RES / "profile_h100_machine4_run1.json.gz"),
    ("profile_h100_machine4_run2.json.gz (cold; replay 5 made after it, same GPU)", RES / "profile_h100_machine4_run2.json.gz"),
    ("profile_h100_machine5.json.gz (cold; replay 6 made after it, same GPU)", RES / "profile_h100_machine5.json.gz"),
    ("profile_h100_machine6.json.gz (cold; replay 7 made after it, same GPU)", RES / "profile_h100_machine6.json.gz"),
    ("profile_h100_machine7.json.gz (cold; replay 8 made after it, same GPU)", RES / "profile_h100_machine7.json.gz"),
]
DATA = [("H100 runs", ROOT / "lab" / "validation" / "h100"), ("H200 runs, from the H100 profile", ROOT / "lab" / "validation" / "h200")]


def _count(args) -> tuple[int, int]:
    from planner.validate import target_count, validate
    data, profile = args
    return target_count(validate(Path(data), str(profile)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown table here too")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    from contract.profile import Profile, pool_iterations
    pooled = Path(tempfile.mkdtemp()) / "h100_pooled.json"
    Profile.save(pool_iterations(Profile.load(PROFILES[0][1]), [Profile.load(p) for _, p in PROFILES[1:]]), pooled)
    product = ROOT / "planner" / "data" / "profiles" / "h100.json.gz"
    if Profile.load(product) == Profile.load(pooled):
        last = (f"**planner/data/profiles/h100.json.gz (product): the serving iterations of all {len(PROFILES)} pooled, "
                "operator tables of the first** (`planner pool-profiles`)", product)
    else:
        last = (f"the serving iterations of all {len(PROFILES)} pooled (NOT planner/data/profiles/h100.json.gz)", pooled)
    profiles = PROFILES + [last]
    jobs = [(str(d), str(p)) for _, p in profiles for _, d in DATA]
    with ProcessPoolExecutor(a.workers) as ex:
        counts = list(ex.map(_count, jobs))
    lines = ["| profile | " + " | ".join(name for name, _ in DATA) + " |", "|---" * (1 + len(DATA)) + "|"]
    for i, (name, _) in enumerate(profiles):
        cells = counts[i * len(DATA):(i + 1) * len(DATA)]
        lines.append(f"| {name} | " + " | ".join(f"{ok} of {n}" for ok, n in cells) + " |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        a.out.write_text("target cells within their limits (`python -m lab.studies.validate_profiles.validate_profiles`):\n\n" + table + "\n")


if __name__ == "__main__":
    main()
