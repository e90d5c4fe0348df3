import copy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT.parent / "shared" / "traces"

BASE = {
    "model": "llama-3.1-8b",
    "workload": {"arrival": {"process": "poisson", "rate": 5}},
    "fleet": {"gpu": "H100-SXM"},
}


@pytest.fixture
def base():
    return copy.deepcopy(BASE)


def need_traces():
    if not TRACES.exists():
        pytest.skip("shared/traces not beside the checkout")
    return TRACES
