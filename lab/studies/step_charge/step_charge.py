"""Each committed run's serving iterations charged to the calibrated model, run by run, beside the run's TTFT
P95: how fast each machine served against the model, and how much a near-saturation TTFT tail moves with it.

    python -m lab.studies.step_charge.step_charge [--gpu H200] [--run poisson-0.8] [--sensitivity llama-3.1-8b]

For every run of a trace (the first and each replay with a step log) it sums the measured iterations (one
schedule to the next, back-to-back steps only) and the model's time for the same steps (`CalibratedCostModel.time`
at each step's batch, context and prefill chunks), for decode-only steps and steps with a prefill, and prints the
ratio minus one (positive: the engine was slower than the model), the run's TTFT P95 and its host benchmark
(`engine.host_speed`, where recorded). With --sensitivity MODEL it also simulates that model's run with every
operator time the simulator charges multiplied by 1.00, 1.02, 1.04 (the overhead fit left as is): what a bias of that
size in the operator tables does to the simulated TTFT and TPOT.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
from pathlib import Path

from scipy.stats import spearmanr

from contract.catalog import GPUS, MODELS
from contract.profile import Profile
from lab.paths import ROOT
from planner.cost.calibrated import CalibratedCostModel
from planner.validate import engine_metrics

DATA = {"H100-SXM": ROOT / "lab" / "validation" / "h100", "H200": ROOT / "lab" / "validation" / "h200"}


def step_logs(data: Path, stem: str) -> list[tuple[str, Path, Path]]:
    """(label, step log, records) of the first run and of every replay with a step log, in replay order."""
    out = [("first", data / f"{stem}.steps.csv.gz", data / f"{stem}.records.csv")]
    reps = sorted(data.glob(f"{stem}.replay*.steps.csv.gz"), key=lambda p: int(re.search(r"replay(\d+)", p.name)[1]))
    for p in reps:
        k = re.search(r"replay(\d+)", p.name)[1]
        out.append((f"replay {k}", p, data / f"{stem}.replay{k}.records.csv.gz"))
    return [o for o in out if o[1].exists()]


def charge(cm: CalibratedCostModel, path: Path) -> dict[str, float]:
    """Measured / modelled time - 1 over the run's back-to-back iterations, decode-only and with a prefill."""
    op = gzip.open if path.suffix == ".gz" else open
    with op(path, "rt") as fh:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    meas = {"decode": 0.0, "prefill": 0.0}
    model = {"decode": 0.0, "prefill": 0.0}
    for c, nx in zip(rows, rows[1:]):
        if nx["idle_before"]:
            continue
        b, k = int(c["decodes"]), int(c["chunks"])
        if k == 0:
            kind, t = "decode", cm.time(b, b, c["decode_ctx"])
        else:
            pt = int(c["prefill_tokens"])
            kind, t = "prefill", cm.time(pt + b, b + k, c["decode_ctx"], [(pt // k, int(c["prefill_ctx"]) // k)] * k)
        meas[kind] += nx["sched"] - c["sched"]
        model[kind] += t
    return {k: meas[k] / model[k] - 1 for k in meas if model[k]}


def sensitivity(profile: str, data: Path, stem: str, factors=(1.0, 1.02, 1.04)) -> list[str]:
    """The simulated run with the model's operator times scaled by each factor (a bench-only patch)."""
    import planner.calibrated as cal
    from planner.validate import sim_metrics
    meta = json.loads((data / f"{stem}.meta.json").read_text())
    orig = cal.CalibratedCostModel._ops_no_comm
    lines = []
    try:
        for f in factors:
            def scaled(self, *a, _f=f, **kw):  # the simulated steps only, not the overhead fit's (scaled=False)
                on_target = kw.get("scaled", a[4] if len(a) > 4 else True)
                return orig(self, *a, **kw) * (_f if on_target else 1.0)
            cal.CalibratedCostModel._ops_no_comm = scaled
            cal._BUILT.clear()  # models are cached by profile; rebuild with the patch
            m = sim_metrics(meta, data / f"{stem}.trace.csv",
                            {"kind": "calibrated", "profile": profile, "step_jitter": True}, reps=5)
            lines.append(f"| x{f:.2f} | {m['ttft_p50'] * 1e3:.1f} ms | {m['ttft_p95'] * 1e3:.1f} ms | "
                         f"{m['tpot_p50'] * 1e3:.2f} ms | {m['e2e_p50']:.3f} s |")
    finally:
        cal.CalibratedCostModel._ops_no_comm = orig
        cal._BUILT.clear()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", default="H200", choices=sorted(DATA))
    ap.add_argument("--run", default="poisson-0.8")
    ap.add_argument("--profile", default=str(ROOT / "planner" / "data" / "profiles" / "h100.json.gz"))
    ap.add_argument("--sensitivity", default=None, help="a model name: also simulate its run with scaled operators")
    a = ap.parse_args()
    prof = Profile.load(a.profile)
    data = DATA[a.gpu]
    print(f"Serving iterations charged to the calibrated model ({Path(a.profile).name} on {a.gpu}; "
          f"run {a.run}; `python -m lab.studies.step_charge.step_charge --gpu {a.gpu} --run {a.run}`):\n")
    print("| model | run | decode steps: engine / model - 1 | steps with a prefill | TTFT P95 | host benchmark |")
    print("|---|---|---|---|---|---|")
    rho = []
    for name in ("llama-3.1-8b", "llama-3.2-1b"):
        stem = f"{name}_{a.gpu}_{a.run}"
        meta = json.loads((data / f"{stem}.meta.json").read_text())
        cm = CalibratedCostModel(prof, MODELS[name], GPUS[a.gpu],
                                 max_num_batched_tokens=meta["knobs"]["max_num_batched_tokens"])
        idx = data / f"{stem}.replays.json"
        bench = {f"replay {e['replay']}": e.get("host_bench_s") for e in (json.loads(idx.read_text()) if idx.exists() else [])}
        bench["first"] = meta.get("host_bench_s")
        pairs = []
        for label, steps, recs in step_logs(data, stem):
            c = charge(cm, steps)
            hb = bench.get(label)
            pairs.append((c.get("decode", float("nan")), engine_metrics(recs)["ttft_p95"]))
            print(f"| {name} | {label} | {c.get('decode', float('nan')):+.1%} | {c.get('prefill', float('nan')):+.1%} | "
                  f"{pairs[-1][1] * 1e3:.1f} ms | {f'{hb * 1e3:.2f} ms' if hb else '-'} |")
        rho.append((name, spearmanr(*zip(*pairs))[0] if len(pairs) > 2 else float("nan")))
    print("\nSpearman rank correlation over a model's runs, decode steps' engine / model against TTFT P95: "
          + ", ".join(f"{n} {r:+.2f}" for n, r in rho))
    if a.sensitivity:
        stem = f"{a.sensitivity}_{a.gpu}_{a.run}"
        print(f"\nThe simulated {stem} with the model's operator times scaled (overhead fit unchanged; mean of 5 "
              f"seeds with step jitter):\n")
        print("| operators | TTFT P50 | TTFT P95 | TPOT P50 | E2E P50 |\n|---|---|---|---|---|")
        print("\n".join(sensitivity(a.profile, data, stem)))


if __name__ == "__main__":
    main()
