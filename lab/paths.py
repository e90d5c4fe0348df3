"""Where the lab's committed measurements live (run the lab's scripts from the repository root as
`python -m lab....`)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "lab"
CALIBRATION = LAB / "calibration"  # every single `engine calibrate` profile and its log
VALIDATION = LAB / "validation"  # the engine's validation runs and their replays
RUNS_H100 = VALIDATION / "h100"
RUNS_H200 = VALIDATION / "h200"
STUDIES = LAB / "studies"
EVIDENCE = ROOT / "planner" / "data" / "evidence"  # `planner validate --json` outputs the dashboard shows
PRODUCT_PROFILE = ROOT / "planner" / "data" / "profiles" / "h100.json.gz"
