"""The product packages pass the project's linter (pyproject.toml [tool.ruff]): an unused or undefined name, an
import out of order or a long line fails CI rather than waiting for a reviewer. The lab, benchmarks and tests are
not held to it."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_product_packages_pass_the_linter():
    pytest.importorskip("ruff")
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                        "contract", "planner", "engine", "kernels", "web"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
