"""The package works as a wheel, not only as an editable checkout: built, installed into a fresh folder and run
from another directory, it finds its built-in scenarios, profiles, stack presets, length presets and public
results (package data), and answers the quickstart's question."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_answers_from_another_directory(tmp_path):
    wheels = tmp_path / "wheels"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(wheels)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    whl = next(wheels.glob("*.whl"))
    names = zipfile.ZipFile(whl).namelist()
    for needed in ("planner/scenarios/seed-100-a100.yaml", "planner/data/profiles/h100.json.gz",
                   "planner/data/profiles/h200.json.gz", "planner/data/stacks/vllm.yaml", "planner/data/lengths.yaml",
                   "planner/data/public/results.csv", "planner/data/public/evaluation.json",
                   "kernels/cuda/paged_attention.cu"):
        assert needed in names, needed
    assert not any(n.startswith(("lab/", "tests/", "bench/")) for n in names)  # the lab is not product
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(whl)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = tmp_path / "elsewhere"
    run.mkdir()
    where = subprocess.run([sys.executable, "-c", "import planner; print(planner.__file__)"], cwd=run, env=env,
                           capture_output=True, text=True)
    assert where.stdout.startswith(str(target)), where.stdout  # the installed copy, not the checkout
    r = subprocess.run([sys.executable, "-m", "planner.cli", "size", "seed-100-a100", "--json"], cwd=run, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["instance"]["capacity_req_s"] > 0 and rep["cost_model"].startswith("stack 'vllm'")
