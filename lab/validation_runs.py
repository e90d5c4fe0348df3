"""Engine runs for `planner validate`: seeded Poisson traces below, near and above saturation (and a
slice of the Azure conversation trace) replayed in real time; each run leaves its trace, its request
records and the engine's knobs, so the planner can simulate exactly the same thing on a CPU."""
from __future__ import annotations

import csv
import gzip
import json
import platform
from pathlib import Path

import numpy as np
import torch

from contract.catalog import MODELS
from contract.records import write_records
from contract.traces import load_trace
from engine.calibrate import RAMP_KNOBS, RAMP_LENGTHS, engine_knobs
from engine.host_speed import host_benchmark
from engine.llm import LLM, EngineConfig, records, release_gpu_memory
from engine.weights import build_model
from planner.scenario import scenario_from_dict
from planner.sizing import size

# the knobs every run so far used (the calibration ramps'), as written into each run's meta.json
KNOBS = RAMP_KNOBS.model_dump(include={"max_num_seqs", "max_num_batched_tokens", "block_size",
                                       "enable_chunked_prefill", "enable_prefix_caching", "max_model_len"})
LENGTHS = RAMP_LENGTHS  # uniform ranges of the synthetic traces


def poisson_trace(rate: float, duration: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1 / rate, size=int(rate * duration * 2) + 50))
    t = t[t < duration]
    return {"t": t, "in": rng.integers(*LENGTHS["input"], size=len(t), endpoint=True),
            "out": rng.integers(*LENGTHS["output"], size=len(t), endpoint=True)}


def azure_slice(path: str, duration: float, max_in: int = 8000) -> dict:
    tr = load_trace(path)
    keep = tr.timestamps < duration
    return {"t": tr.timestamps[keep], "in": np.minimum(tr.input_tokens[keep], max_in).clip(1),
            "out": tr.output_tokens[keep].clip(1, 1024)}


def write_trace(path: Path, tr: dict) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
        w.writerows(zip(np.round(tr["t"], 6), tr["in"], tr["out"]))


def write_steps(path: Path, step_log) -> None:
    """The engine's step log (LLM.step_log, one row per step) with its column names; gzipped for a .gz path."""
    with (gzip.open(path, "wt", newline="") if path.suffix == ".gz" else path.open("w", newline="")) as fh:
        w = csv.writer(fh)
        w.writerow(["start", "end", "prefill_tokens", "decodes", "graph", "chunks", "decode_ctx", "prefill_ctx",
                    "sched", "idle_before", "issued", "gpu_s"])
        w.writerows((round(a, 6), round(b, 6), p, d, int(g), k, dc, pc, round(t, 6), int(i), round(u, 6),
                     round(gs, 6)) for a, b, p, d, g, k, dc, pc, t, i, u, gs in step_log)


def capacity_estimate(model_name: str, num_blocks: int, profile_path: str | None, gpu: str = "H100-SXM") -> float:
    """Saturation req/s of one engine at these knobs, from the planner's analytic model (calibrated when a
    profile is at hand)."""
    doc = {"model": model_name, "workload": {"arrival": {"process": "poisson", "rate": 1},
           "input_tokens": {"dist": "uniform", "low": LENGTHS["input"][0], "high": LENGTHS["input"][1]},
           "output_tokens": {"dist": "uniform", "low": LENGTHS["output"][0], "high": LENGTHS["output"][1]}},
           "fleet": {"gpu": gpu, **KNOBS}}
    if profile_path:
        doc["cost_model"] = {"kind": "calibrated", "profile": profile_path}
    return size(scenario_from_dict(doc), with_alternatives=False, bound=False).instance.capacity_req_s


def serve(name: str, model, blocks: int, kernels: bool, tr: dict):
    """One validation run: a fresh engine with exactly `blocks` KV blocks, warmed up, replays the trace in
    real time with its step log on. Returns the engine, its sequences and the allocator events while serving."""
    llm = LLM(EngineConfig(model=name, num_blocks=blocks, kernels=kernels, **engine_knobs(RAMP_KNOBS)), model=model)
    llm.generate([[1] * 64] * 2)  # warm-up: graphs for small batches
    llm.log_steps = True
    cuda = torch.cuda.is_available()
    m0 = torch.cuda.memory_stats() if cuda else {}
    seqs = llm.replay(tr["t"], tr["in"], tr["out"])
    m1 = torch.cuda.memory_stats() if cuda else {}
    # cudaMalloc calls and allocator retries while serving: each can stall a step by milliseconds
    alloc = {k: m1.get(k, 0) - m0.get(k, 0) for k in ("segment.all.allocated", "num_alloc_retries")}
    return llm, seqs, alloc


def read_trace(path: Path) -> dict:
    """A run's trace as write_trace left it."""
    rows = list(csv.DictReader(path.open()))
    return {"t": np.array([float(r["TIMESTAMP"]) for r in rows]),
            "in": np.array([int(r["ContextTokens"]) for r in rows]),
            "out": np.array([int(r["GeneratedTokens"]) for r in rows])}


def host_cpu() -> str:
    """The host CPU's model name: a replay's host time (scheduling, launches) depends on it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def replay_runs(data: Path, out: Path, models=None, labels=None, repeats: int = 1, deadline_s: float | None = None,
                log=print, build=None) -> list[Path]:
    """Replay committed validation runs again -- the same trace, knobs, KV block count and kernels -- and write
    `<stem>.replay<k>.records.csv` (k: the next index free in `data` and `out`) with an entry in
    `<stem>.replays.json` (device, host CPU, date). One replay of a trace is as noisy a reference as one
    simulator seed: four replays of each committed H100 run spread by up to 25% in TTFT P95, 5.6% in E2E P50
    below saturation and 16% above it (bench/results/validate_h100.md). A new replay is not started after
    `deadline_s`.
    build: (model name, meta) -> model, for tests; default, random weights on the GPU as run_all builds."""
    import time
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    metas = [(p, json.loads(p.read_text())) for p in sorted(data.glob("*.meta.json"))]
    metas = [(p, m) for p, m in metas if (not models or m["model"] in models) and (not labels or m["label"] in labels)]
    if not metas:
        raise ValueError(f"no runs to replay in {data} (*.meta.json" + (f", models {list(models)}" if models else "")
                         + (f", labels {list(labels)}" if labels else "") + ")")
    written: list[Path] = []
    by_model: dict[str, list] = {}
    for p, m in metas:
        by_model.setdefault(m["model"], []).append((p, m))
    for name, runs in by_model.items():
        model = build(name, runs[0][1]) if build else build_model(MODELS[name], seed=0, dtype=torch.bfloat16, device="cuda")
        for _ in range(repeats):
            for p, meta in runs:
                if deadline_s is not None and time.perf_counter() - t0 > deadline_s:
                    log(f"  deadline: {p.name} not replayed")
                    continue
                stem = p.name[: -len(".meta.json")]
                k = 1
                while any((d / f"{stem}.replay{k}.records.csv{z}").exists() for d in (data, out) for z in ("", ".gz")):
                    k += 1
                llm, seqs, alloc = serve(name, model, meta["num_blocks"], meta.get("kernels", False),
                                        read_trace(data / f"{stem}.trace.csv"))
                recs = records(seqs)
                path = out / f"{stem}.replay{k}.records.csv.gz"
                write_records(path, recs)
                write_steps(out / f"{stem}.replay{k}.steps.csv.gz", llm.step_log)
                written.append(path)
                index = out / f"{stem}.replays.json"
                old = data / f"{stem}.replays.json"
                entries = json.loads(index.read_text()) if index.exists() else (
                    json.loads(old.read_text()) if old.exists() else [])
                entries.append({"replay": k, "device_name": torch.cuda.get_device_name() if torch.cuda.is_available()
                                else "cpu", "host_cpu": host_cpu(), "os_kernel": platform.release(),
                                "host_bench_s": host_benchmark(),
                                "date": time.strftime("%Y-%m-%d %H:%M:%S"), "kernels": llm.kernels_active,
                                "cuda_mallocs_while_serving": alloc["segment.all.allocated"]})
                index.write_text(json.dumps(entries, indent=1))
                done = [r for r in recs if r["status"] == "completed"]
                e2e = sorted(r["finish"] - r["arrival"] for r in done)
                log(f"  {stem} replay {k}: {len(done)}/{len(recs)} completed, P50 e2e {e2e[len(e2e) // 2]:.3f} s "
                    f"({time.perf_counter() - t0:.0f} s)")
                del llm
                release_gpu_memory()
        del model
        release_gpu_memory()
    return written


def run_all(out: Path, models=("llama-3.2-1b", "llama-3.1-8b"), loads=(0.4, 0.8, 1.3), duration: float = 30.0,
            profile: str | None = None, azure: str | None = None, gpu: str = "H100-SXM", log=print,
            kernels: bool = False, azure_duration: float = 60.0) -> None:
    """azure_duration: the Azure slice is longer than the Poisson runs -- at its ~1.7 req/s, 25 s held 42
    requests, too few for a P95 to mean much."""
    out.mkdir(parents=True, exist_ok=True)
    for name in models:
        model = build_model(MODELS[name], seed=0, dtype=torch.bfloat16, device="cuda")
        llm = LLM(EngineConfig(model=name, kernels=kernels, **engine_knobs(RAMP_KNOBS)), model=model)
        blocks = llm.num_blocks  # what the engine sizes from free memory; each run gets exactly this
        del llm
        release_gpu_memory()
        cap = capacity_estimate(name, blocks, profile, gpu)
        runs = [(f"poisson-{load:g}", poisson_trace(cap * load, duration, seed=int(load * 100)), duration)
                for load in loads]
        if azure:
            runs.append(("azure-conv", azure_slice(azure, azure_duration), azure_duration))
        for label, tr, span in runs:
            llm, seqs, alloc = serve(name, model, blocks, kernels, tr)
            stem = f"{name}_{gpu}_{label}"
            write_trace(out / f"{stem}.trace.csv", tr)
            recs = records(seqs)
            write_records(out / f"{stem}.records.csv", recs)
            meta = {"model": name, "gpu": gpu, "device_name": torch.cuda.get_device_name(), "label": label,
                    "num_blocks": blocks, "knobs": KNOBS, "requests": len(recs),
                    "offered_req_s": len(tr["t"]) / span, "capacity_estimate_req_s": cap,
                    "duration_s": span, "kernels": llm.kernels_active,
                    "cuda_mallocs_while_serving": alloc["segment.all.allocated"],
                    "alloc_retries_while_serving": alloc["num_alloc_retries"], "host_bench_s": host_benchmark()}
            (out / f"{stem}.meta.json").write_text(json.dumps(meta, indent=1))
            write_steps(out / f"{stem}.steps.csv.gz", llm.step_log)
            lg = llm.step_log
            dec = sorted(r[1] - r[0] for r in lg if r[4])
            mix = sorted(r[1] - r[0] for r in lg if not r[4])
            if dec and mix:
                log(f"    steps: {len(dec)} decode (median {dec[len(dec) // 2] * 1e3:.2f} ms), {len(mix)} with "
                    f"prefill (median {mix[len(mix) // 2] * 1e3:.2f} ms), busy {sum(b - a for a, b, *_ in lg):.1f} s "
                    f"of {lg[-1][1] - lg[0][0]:.1f} s")
            done = [r for r in recs if r["status"] == "completed"]
            e2e = sorted(r["finish"] - r["arrival"] for r in done)
            log(f"  {stem}: {len(done)}/{len(recs)} completed, P50 e2e {e2e[len(e2e) // 2]:.3f} s")
            del llm
            release_gpu_memory()
        del model
        release_gpu_memory()
