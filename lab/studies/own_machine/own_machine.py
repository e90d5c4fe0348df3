"""Does a profile predict its own machine? `planner validate` with each profile that lab/calibration/own_machine.sh
(H100) or lab/calibration/device_round.sh (H200) measured against the replay made on the same machine, alone as the
reference -- and, for comparison, against the median of all committed replays of that GPU.

    python -m lab.studies.own_machine.own_machine [--out lab/studies/own_machine/own_machine.md]     # about 4 min on 2 cores

A single replay is a noisy reference (one draw of the engine's timing), so its count is the one to hold
against the other single replays' (planner validate's "against each replay alone").
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from lab.paths import ROOT
from planner.validate import markdown, per_replay_targets, target_count, validate

DATA = ROOT / "lab" / "validation" / "h100"
RES = ROOT / "lab" / "calibration"  # the single calibrations
# (profile, the replay made right after it on the same GPU -- on the H200, at the same time on the machine's
# other GPU -- and the runs it belongs to)
PAIRS = [("profile_h100_machine4_run1.json.gz", 4, DATA), ("profile_h100_machine4_run2.json.gz", 5, DATA),
         ("profile_h100_machine5.json.gz", 6, DATA), ("profile_h100_machine6.json.gz", 7, DATA),
         ("profile_h100_machine7.json.gz", 8, DATA),
         ("profile_h200_machine3.json.gz", 7, ROOT / "lab" / "validation" / "h200")]


def one_replay(k: int, into: Path, data: Path = DATA) -> Path:
    """A data folder holding each committed run's trace and knobs with its replay k as the only records."""
    into.mkdir(parents=True, exist_ok=True)
    for meta in sorted(data.glob("*.meta.json")):
        stem = meta.name[: -len(".meta.json")]
        rec = data / f"{stem}.replay{k}.records.csv.gz"
        if not rec.exists():
            continue
        shutil.copy(meta, into / meta.name)
        shutil.copy(data / f"{stem}.trace.csv", into / f"{stem}.trace.csv")
        shutil.copy(rec, into / f"{stem}.records.csv.gz")
    if not any(into.glob("*.meta.json")):
        raise ValueError(f"no replay {k} in {data}")
    return into


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the summary and the tables (Markdown) here")
    a = ap.parse_args()
    lines = ["| profile (bench/results/) | its own machine's replay alone | median of all replays | "
             "each replay alone |", "|---|---|---|---|"]
    tables = []
    for name, k, data in PAIRS:
        prof = str(RES / name)
        with tempfile.TemporaryDirectory() as tmp:
            rows = validate(one_replay(k, Path(tmp), data), prof)
        own, tot = target_count(rows)
        tables.append(f"### {name} against replay {k} alone\n\n{markdown(rows)}")
        allrows = validate(data, prof)
        med, _ = target_count(allrows)
        each = ", ".join(str(n) for n, _ in per_replay_targets(allrows))
        lines.append(f"| `{name}` | {own} of {tot} (replay {k}) | {med} of {tot} | {each} |")
        print(lines[-1], flush=True)
    if a.out:
        a.out.write_text("Each profile against the replay made right after it on the same GPU "
                         "(`python -m lab.studies.own_machine.own_machine`):\n\n" + "\n".join(lines) + "\n\n" + "\n\n".join(tables))


if __name__ == "__main__":
    main()
