import copy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "tests" / "data" / "traces"  # slices of the public traces (see its README)

BASE = {
    "model": "llama-3.1-8b",
    "workload": {"arrival": {"process": "poisson", "rate": 5}},
    "fleet": {"gpu": "H100-SXM"},
}


@pytest.fixture
def base():
    return copy.deepcopy(BASE)

