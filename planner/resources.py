"""Files the planner ships inside its package: built-in scenarios, calibration profiles, the validation
evidence the dashboard shows. Found through importlib.resources, so a wheel installed anywhere works."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_PKG = files("planner")


def _path(*parts: str) -> Path:
    return Path(str(_PKG.joinpath(*parts)))


def scenarios() -> dict[str, Path]:
    """Built-in scenarios by name (the file's stem)."""
    return {p.stem: p for p in sorted(_path("scenarios").glob("*.yaml"))}


def profiles() -> dict[str, Path]:
    """Calibration profiles shipped with the planner, by name ('h100' for h100.json.gz)."""
    return {p.name.split(".json")[0]: p for p in sorted(_path("data", "profiles").glob("*.json*"))}


def product_profile() -> Path:
    """The H100 profile every calibrated answer starts from (the pool of the committed calibrations)."""
    return _path("data", "profiles", "h100.json.gz")


def evidence() -> dict[str, Path]:
    """`planner validate --json` on the committed engine runs, by what they show."""
    d = _path("data", "evidence")
    return {"H100 (profile measured on H100s)": d / "validate_h100.json",
            "H200 (predicted from the H100 profile)": d / "validate_h200_from_h100_profile.json"}


def source_checkout_runs() -> Path | None:
    """The committed engine runs when the planner runs from its repository (they are not in the wheel)."""
    p = Path(__file__).resolve().parent.parent / "lab" / "validation" / "h100"
    return p if p.is_dir() else None


def lengths_file() -> Path:
    """Length presets of public datasets (quantile tables and their sources)."""
    return _path("data", "lengths.yaml")
