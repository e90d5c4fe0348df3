"""Held-out validation runs (docs/validation_protocol.md): the grid in lab/validation/heldout/grid.yaml, served
by the engine on a lent machine, one lane per GPU (or GPU pair), each run leaving what `planner validate` needs.

    python -m lab.heldout plan                                   # here: capacities and request counts, no GPU
    python -m lab.heldout serve --list q --replica 0 --out DIR --deadline-s 400    # on a GPU
    python -m lab.heldout merge DIR... --into lab/validation/heldout/h200          # replicas -> validate layout

A run's trace is a pure function of its grid entry (seeded by the run's id), so two lanes serving the same
entry replay the same requests; its capacity is the planner's estimate for exactly that entry's model, knobs,
format and lengths, on the H200 product profile -- fixed before any run, so a load of 0.95 means what the
protocol says and not what the engine later turned out to do.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from lab.paths import ROOT as REPO

GRID = REPO / "lab" / "validation" / "heldout" / "grid.yaml"
PROFILE = REPO / "planner" / "data" / "profiles" / "h200.json.gz"
KNOB_KEYS = ("max_num_seqs", "max_num_batched_tokens", "enable_chunked_prefill", "enable_prefix_caching",
             "max_model_len", "tensor_parallel_size", "quantization", "kv_cache_dtype")


def load_grid(path: Path = GRID) -> dict:
    return yaml.safe_load(path.read_text())


def run_seed(run_id: str) -> int:
    """A run's seed: from its id, so every lane draws the same trace for it."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:4], "little")


def knobs_of(grid: dict, run: dict) -> dict:
    k = {**grid["defaults"], **{key: run[key] for key in KNOB_KEYS if key in run}}
    k.setdefault("tensor_parallel_size", 1)
    k.setdefault("quantization", "bf16")
    k.setdefault("kv_cache_dtype", "auto")
    k["block_size"] = 16
    return k


def grid_target(grid: dict) -> tuple[str, Path]:
    """The catalog GPU a grid is served on and the product profile its capacities are planned with (grids 1-2:
    the H200 and its profile; a later grid names its own)."""
    return grid.get("gpu", "H200"), REPO / grid.get("profile", str(PROFILE.relative_to(REPO)))


def scenario_doc(grid: dict, run: dict, rate: float) -> dict:
    gpu, profile = grid_target(grid)
    lengths = grid["lengths"][run["lengths"]]
    wl = {"arrival": {"process": "poisson", "rate": rate}}
    if lengths == "preset":
        wl["lengths"] = run["lengths"]
    else:
        wl.update(lengths)
    return {"name": run["id"], "model": run["model"], "workload": wl,
            "fleet": {"gpu": gpu, "replicas": 1, **knobs_of(grid, run)},
            "cost_model": {"kind": "calibrated", "profile": str(profile)},
            "sim": {"duration_s": grid["duration_s"], "warmup_s": 0, "seed": run_seed(run["id"])}}


def capacity(grid: dict, run: dict) -> float:
    from planner.scenario import scenario_from_dict
    from planner.sizing import size
    return size(scenario_from_dict(scenario_doc(grid, run, 1.0)), with_alternatives=False,
                bound=False).instance.capacity_req_s


def trace_for(grid: dict, run: dict) -> tuple[dict, float]:
    """The run's requests (arrival s, prompt and output tokens) and the capacity its load is a share of.
    Prompts are cut so prompt + output fits max_model_len (the engine would refuse them otherwise)."""
    from planner.scenario import scenario_from_dict
    from planner.sim.workload import generate
    # a grid may pin each run's capacity when it is written (grid 3: before a device round that changes the
    # profile it is planned with), so the load means what was registered
    cap = float(run["capacity_req_s"]) if "capacity_req_s" in run else capacity(grid, run)
    sc = scenario_from_dict(scenario_doc(grid, run, run["load"] * cap))
    req = generate(sc, np.random.default_rng(run_seed(run["id"])))
    mml = knobs_of(grid, run)["max_model_len"]
    out = req.output_tokens
    if (out >= mml).any():
        raise ValueError(f"{run['id']}: outputs up to {out.max()} tokens do not fit max_model_len {mml}")
    ins = np.clip(req.input_tokens, 1, mml - out)
    return {"t": req.arrival, "in": ins, "out": out, "prompts_cut": int((ins < req.input_tokens).sum())}, cap


def plan(grid: dict) -> None:
    for run in grid["runs"]:
        tr, cap = trace_for(grid, run)
        print(f"{run['id']:38} list {run['list']:3} capacity {cap:7.2f} req/s -> {len(tr['t']):5d} requests, "
              f"prompt mean {tr['in'].mean():6.0f}, output mean {tr['out'].mean():6.0f}")


def serve(grid: dict, lst: str, replica: int, out: Path, deadline_s: float, only: str | None = None,
          log=print) -> None:
    """Serve the list's runs in grid order on this process's GPU(s), one fresh engine each (one model build
    per model and format, reused), until the deadline; each run's files are written before the next starts."""
    import torch

    from contract.catalog import MODELS
    from contract.records import write_records
    from engine.config import EngineConfig
    from engine.host_speed import host_benchmark
    from engine.llm import LLM, records, release_gpu_memory
    from engine.weights import build_model
    from lab.validation_runs import host_cpu, write_steps, write_trace

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()  # off CUDA only for the tests of this script, with a tiny grid
    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    built: dict = {}
    status = []
    status_file = out / (f"lane_{lst}_r{replica}.status.json" if not only else f"{only}.r{replica}.status.json")
    for run in [r for r in grid["runs"] if r["list"] == lst and (only is None or r["id"] == only)]:
        if time.perf_counter() - t0 > deadline_s:
            status.append({"id": run["id"], "status": "not run: deadline"})
            log(f"  {run['id']}: not started (deadline)")
            continue
        k = knobs_of(grid, run)
        tr, cap = trace_for(grid, run)
        cfg = EngineConfig(model=run["model"], kernels=cuda, cuda_graphs=cuda,
                           **({} if cuda else {"dtype": "float32", "num_blocks": 256}), **k)
        model = None
        if k["tensor_parallel_size"] == 1:  # TP engines build their shards in their own processes
            key = (run["model"], k["quantization"])
            if key not in built:
                built.clear()
                release_gpu_memory()
                built[key] = build_model(MODELS[run["model"]], seed=0, dtype=torch.bfloat16 if cuda else torch.float32,
                                         device="cuda" if cuda else "cpu")
            model = built[key]
        ts = time.perf_counter()
        try:
            llm = LLM(cfg, model=model)
            llm.generate([[1] * 64] * 2)  # warm-up
            llm.log_steps = True
            seqs = llm.replay(tr["t"], tr["in"], tr["out"])
        except Exception as e:  # a run that fails is reported, and the lane goes on
            status.append({"id": run["id"], "status": f"failed: {e!r}"[:400]})
            log(f"  {run['id']}: FAILED {e!r}")
            release_gpu_memory()
            continue
        recs = records(seqs)
        stem = f"{run['id']}.r{replica}"
        write_trace(out / f"{stem}.trace.csv", tr)
        write_records(out / f"{stem}.records.csv.gz", recs)
        write_steps(out / f"{stem}.steps.csv.gz", llm.step_log)
        done = [r for r in recs if r["status"] == "completed"]
        meta = {"model": run["model"], "gpu": "H200" if "H200" in device_name else "H100-SXM",
                "device_name": device_name, "label": run["id"], "replica": replica,
                "num_blocks": llm.num_blocks, "knobs": k, "lengths": run["lengths"], "load": run["load"],
                "requests": len(recs), "completed": len(done), "prompts_cut_to_fit": tr["prompts_cut"],
                "offered_req_s": len(tr["t"]) / grid["duration_s"],
                "capacity_estimate_req_s": cap, "capacity_profile": grid_target(grid)[1].name,
                "duration_s": grid["duration_s"],
                "kernels": llm.kernels_active, "kernel_fallbacks": llm.kernel_fallbacks,
                "host_cpu": host_cpu(), "host_bench_s": host_benchmark(),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                "serve_wall_s": time.perf_counter() - ts, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        (out / f"{stem}.meta.json").write_text(json.dumps(meta, indent=1))
        e2e = sorted(r["finish"] - r["arrival"] for r in done)
        p50 = e2e[len(e2e) // 2] if e2e else float("nan")
        log(f"  {stem}: {len(done)}/{len(recs)} completed, P50 e2e {p50:.3f} s, {time.perf_counter() - ts:.0f} s "
            f"({time.perf_counter() - t0:.0f} s in lane)")
        status.append({"id": run["id"], "status": "done", "completed": len(done), "requests": len(recs)})
        llm.shutdown()
        del llm
        release_gpu_memory()
        status_file.write_text(json.dumps(status, indent=1))
    status_file.write_text(json.dumps(status, indent=1))


def merge(sources: list[Path], into: Path, replicas: int | None = None) -> list[str]:
    """Lay replicas out as `planner validate` reads them: replica 0 as the run (<id>.records.csv.gz with its
    meta and trace), replica k > 0 as <id>.replay<k>.records.csv.gz. A run is kept only with every replica
    the grid asks for and identical traces; the rest are listed as incomplete."""
    replicas = replicas or load_grid()["replicas"]
    into.mkdir(parents=True, exist_ok=True)
    metas = {}
    for src in sources:
        for p in src.rglob("*.meta.json"):
            m = json.loads(p.read_text())
            metas.setdefault(m["label"], {})[m["replica"]] = p
    kept, dropped = [], []
    for rid, reps in sorted(metas.items()):
        if len(reps) < replicas:
            dropped.append(f"{rid}: replicas {sorted(reps)} of {replicas}")
            continue
        base = reps[0].parent
        traces = {r: (p.parent / f"{rid}.r{r}.trace.csv").read_bytes() for r, p in reps.items()}
        if len(set(traces.values())) != 1:
            dropped.append(f"{rid}: replicas served different traces")
            continue
        shutil.copy(base / f"{rid}.r0.trace.csv", into / f"{rid}.trace.csv")
        meta = json.loads(reps[0].read_text())
        meta["replicas"] = {r: {k: json.loads(p.read_text())[k] for k in ("num_blocks", "cuda_visible_devices",
                                                                         "completed", "serve_wall_s")}
                            for r, p in reps.items()}
        (into / f"{rid}.meta.json").write_text(json.dumps(meta, indent=1))
        for r, p in reps.items():
            name = f"{rid}.records.csv.gz" if r == 0 else f"{rid}.replay{r}.records.csv.gz"
            shutil.copy(p.parent / f"{rid}.r{r}.records.csv.gz", into / name)
            steps = f"{rid}.steps.csv.gz" if r == 0 else f"{rid}.replay{r}.steps.csv.gz"
            shutil.copy(p.parent / f"{rid}.r{r}.steps.csv.gz", into / steps)
        kept.append(rid)
    (into / "incomplete.txt").write_text("\n".join(dropped) + ("\n" if dropped else ""))
    return kept


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.heldout")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("plan")
    s = sub.add_parser("serve")
    s.add_argument("--list", required=True)
    s.add_argument("--replica", type=int, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--deadline-s", type=float, default=400.0)
    s.add_argument("--only", help="one run of the list (a TP engine per process: see below)")
    m = sub.add_parser("merge")
    m.add_argument("sources", type=Path, nargs="+")
    m.add_argument("--into", type=Path, required=True)
    for sp in (sub.choices["plan"], s, m):
        sp.add_argument("--grid", type=Path, default=GRID, help="grid file (default: grid 1)")
    a = ap.parse_args(argv)
    grid = load_grid(a.grid)
    if a.cmd == "plan":
        plan(grid)
    elif a.cmd == "serve":
        serve(grid, a.list, a.replica, a.out, a.deadline_s, a.only)
        sys.stdout.flush()
        sys.stderr.flush()
        # everything is written: end without interpreter teardown, which under NCCL (collectives captured in
        # CUDA graphs) can wait forever in the communicators' destructors
        os._exit(0)
    else:
        kept = merge(a.sources, a.into, grid["replicas"])
        print(f"{len(kept)} runs with every replica -> {a.into}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
