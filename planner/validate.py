"""`planner validate`: the engine's measured runs against the simulator, run for run.

For every run under the data folder (trace + engine records + the engine's knobs and KV block count),
simulate the same trace with the same knobs on the calibrated and the roofline cost models and compare
TTFT, TPOT and end-to-end P50/P95 and throughput.
"""
from __future__ import annotations

import csv
import functools
import gzip
import json
import re
from pathlib import Path

import numpy as np
from rich.table import Table
from scipy.stats import binom

from contract.profile import Profile
from planner.scenario import scenario_from_dict
from planner.sim import simulate
from planner.sim.metrics import columns

SERVED_KNOBS = ("max_num_seqs", "max_num_batched_tokens", "block_size", "enable_chunked_prefill",
                "enable_prefix_caching", "max_model_len", "tensor_parallel_size", "quantization", "kv_cache_dtype")
METRICS = ("ttft_p50", "ttft_p95", "ttft_p99", "tpot_p50", "tpot_p95", "e2e_p50", "e2e_p95", "e2e_p99",
           "throughput_tok_s")


def metrics_from(arrival, first, finish, out_tokens, ok) -> dict:
    a, f, e, n = (np.asarray(x, float) for x in (arrival, first, finish, out_tokens))
    ok = np.asarray(ok, bool)
    a, f, e, n = a[ok], f[ok], e[ok], n[ok]
    ttft, e2e = f - a, e - a
    tpot = np.where(n > 1, (e - f) / np.maximum(n - 1, 1), np.nan)
    tpot = tpot[~np.isnan(tpot)]
    span = e.max() - a.min() if len(a) else np.nan

    def pct(x, q):  # NaN where nothing was measured (no completed request; no request past its first token)
        return float(np.percentile(x, q)) if len(x) else float("nan")
    return {"ttft_p50": pct(ttft, 50), "ttft_p95": pct(ttft, 95), "ttft_p99": pct(ttft, 99),
            "tpot_p50": pct(tpot, 50), "tpot_p95": pct(tpot, 95),
            "e2e_p50": pct(e2e, 50), "e2e_p95": pct(e2e, 95), "e2e_p99": pct(e2e, 99),
            "throughput_tok_s": n.sum() / span if len(a) else float("nan"), "completed": int(ok.sum())}


def replay_records(data: Path, stem: str) -> list[Path]:
    """The run's records and those of its later replays (engine replay-runs), in replay order; each
    `.records.csv` or gzipped `.records.csv.gz` (replays are written gzipped)."""
    pat = re.compile(re.escape(stem) + r"\.replay(\d+)\.records\.csv(\.gz)?$")
    extra = sorted((p for p in data.glob(f"{stem}.replay*.records.csv*") if pat.match(p.name)),
                   key=lambda p: int(pat.match(p.name)[1]))
    first = data / f"{stem}.records.csv"
    return [first if first.exists() or not first.with_suffix(".csv.gz").exists() else first.with_suffix(".csv.gz"),
            *extra]


def reference_metrics(runs: list[dict]) -> tuple[dict, dict]:
    """The engine reference over replays of one trace: each metric's median, and its spread (max - min over
    the median). One replay is one noisy draw; the median of several is what a simulator's expectation
    should be held to, and the spread says how closely any model can be checked against this engine here."""
    med = {m: float(np.median([r[m] for r in runs])) for m in METRICS}
    med["completed"] = runs[0]["completed"]
    spread = {m: (max(r[m] for r in runs) - min(r[m] for r in runs)) / med[m] for m in METRICS}
    return med, spread


def engine_metrics(records_csv: Path) -> dict:
    with (gzip.open(records_csv, "rt") if records_csv.suffix == ".gz" else records_csv.open()) as fh:
        rows = list(csv.DictReader(fh))
    return metrics_from([float(r["arrival"]) for r in rows], [float(r["first_token"]) for r in rows],
                        [float(r["finish"]) for r in rows], [int(r["output_tokens"]) for r in rows],
                        [r["status"] == "completed" for r in rows])


def scenario_for(meta: dict, trace: Path, cost_model: dict, seed: int = 0):
    k = meta["knobs"]
    return scenario_from_dict({
        "name": f"validate-{meta['model']}-{meta['label']}", "model": meta["model"],
        "workload": {"arrival": {"process": "trace", "trace": str(trace)}},
        # every serving knob the run recorded (TP degree, weight and KV formats included), the rest defaults
        "fleet": {"gpu": meta["gpu"], "replicas": 1, **{f: k[f] for f in SERVED_KNOBS if f in k}},
        "router": {"policy": "round_robin"},
        "cost_model": cost_model,
        "sim": {"duration_s": meta["duration_s"] + 1e-6, "warmup_s": 0, "drain_limit_s": 3600, "seed": seed}})


def sim_metrics(meta: dict, trace: Path, cost_model: dict, reps: int = 1) -> dict:
    """The simulator's metrics on the run's trace; with step jitter, the mean over `reps` seeds (one
    realization of a random step sequence is as noisy as one engine run; the prediction is its expectation)."""
    out = []
    note = ""
    if cost_model.get("step_jitter") and not _has_iterations(cost_model.get("profile")):
        # jitter draws from measured serving iterations (the model's own, or its overhead donor's)
        cost_model = {**cost_model, "step_jitter": False}
        note = "; no step jitter (the profile has no serving iterations)"
    for seed in range(reps if cost_model.get("step_jitter") else 1):
        sc = scenario_for(meta, trace, cost_model, seed)
        cl, _ = simulate(sc, num_blocks=meta["num_blocks"])
        c = columns(cl.records)
        out.append(metrics_from(c["arrival"], c["first_token"], c["finish"], c["output_tokens"],
                                c["status"] == "completed"))
    m = {k: float(np.mean([o[k] for o in out])) for k in out[0]}
    m["completed"] = out[0]["completed"]
    m["cost_model"] = cl.cost.description + (f"; mean of {len(out)} seeds" if len(out) > 1 else "") + note
    return m


def _has_iterations(profile: str | None) -> bool:
    return bool(profile) and bool(_iteration_models(str(profile)))


@functools.lru_cache(maxsize=8)
def _iteration_models(profile: str) -> frozenset:
    return frozenset(r.model for r in Profile.load(profile).iterations)


def validate(data: Path, profile: str | None, jitter: bool = True, reps: int = 5) -> list[dict]:
    """jitter: the calibrated model with step jitter from the profile's measured iterations (the engine's
    step-time spread, which queueing tails depend on); the roofline model has no measurements to draw on."""
    rows = []
    profile_gpu = None
    if profile:
        profile_gpu = Profile.load(profile).gpu
    for meta_path in sorted(data.glob("*.meta.json")):
        meta = json.loads(meta_path.read_text())
        stem = meta_path.name[: -len(".meta.json")]
        trace = data / f"{stem}.trace.csv"
        replays = [engine_metrics(p) for p in replay_records(data, stem)]
        eng, spread = reference_metrics(replays)
        row = {"model": meta["model"], "gpu": meta["gpu"], "run": meta["label"],
               "offered_req_s": meta["offered_req_s"], "load": meta["offered_req_s"] / meta["capacity_estimate_req_s"],
               "engine": eng, "engine_replays": replays, "engine_spread": spread}
        if "load" in meta:  # a pre-registered run: the load its grid asked for, and what it served with
            k = meta["knobs"]
            row.update(grid_load=meta["load"], tp=k.get("tensor_parallel_size", 1),
                       quantization=k.get("quantization", "bf16"), kv_cache_dtype=k.get("kv_cache_dtype", "auto"),
                       lengths=meta.get("lengths"),
                       knobs={f: k[f] for f in ("max_num_seqs", "max_num_batched_tokens", "enable_chunked_prefill")})
        models = {"roofline": {"kind": "roofline"}}
        if profile:
            models["calibrated"] = {"kind": "calibrated", "profile": profile, "step_jitter": jitter}
            row["profile_gpu"] = profile_gpu
            row["extrapolated"] = profile_gpu != meta["gpu"]
        for name, cm in models.items():
            sm = sim_metrics(meta, trace, cm, reps)
            row[f"{name}_model"] = sm.pop("cost_model")
            row[name] = sm
            row[f"{name}_err"] = {m: (sm[m] - eng[m]) / eng[m] for m in METRICS}
        rows.append(row)
    return rows


TARGETS = ("ttft_p50", "ttft_p95", "e2e_p50", "e2e_p95", "throughput_tok_s")

# Protocol v1 (docs/validation_protocol.md), fixed before the held-out runs: the limit of every scored metric
PROTOCOL_V1 = {"e2e_p50": 0.10, "e2e_p95": 0.10, "tpot_p50": 0.10, "tpot_p95": 0.10, "ttft_p50": 0.15,
               "ttft_p95": 0.15, "ttft_p99": 0.20, "e2e_p99": 0.20, "throughput_tok_s": 0.10}


def protocol_cells(rows: list[dict], cm: str = "calibrated", ref: int | None = None) -> list[dict]:
    """Every scored cell under protocol v1: throughput only at a grid load of 0.95 or more (below saturation
    it is the offered load for any model); a cell is trivial when the roofline model meets it too and it is a
    throughput cell or a TTFT cell at load <= 0.5. ref: score against that one replay instead of the median."""
    cells = []
    for r in rows:
        load = r.get("grid_load", r["load"])
        eng = r["engine"] if ref is None else r["engine_replays"][ref]
        for m, lim in PROTOCOL_V1.items():
            if m == "throughput_tok_s" and load < 0.95:
                continue
            err = (r[cm][m] - eng[m]) / eng[m]
            roof = (r["roofline"][m] - eng[m]) / eng[m]
            trivial = abs(roof) <= lim and (m == "throughput_tok_s" or (m.startswith("ttft") and load <= 0.5))
            cells.append({"run": r["run"], "metric": m, "error": err, "limit": lim, "ok": abs(err) <= lim,
                          "trivial": trivial, "roofline_error": roof, "spread": r["engine_spread"][m]})
    return cells


def limit(row: dict, metric: str) -> float:
    """The accuracy asked of the calibrated simulator for one cell: TTFT within 10%; E2E and throughput within
    5% below saturation and 10% above; everything within 10% on a GPU the profile was not measured on."""
    if row.get("extrapolated") or metric.startswith("ttft") or row["load"] > 1.0:
        return 0.10
    return 0.05


def target_cells(rows: list[dict], cm: str = "calibrated") -> list[tuple[dict, str, float, float]]:
    """(row, metric, error, limit) for every target cell of a cost model's table."""
    return [(r, m, r[f"{cm}_err"][m], limit(r, m)) for r in rows if f"{cm}_err" in r for m in TARGETS]


def target_count(rows: list[dict], cm: str = "calibrated") -> tuple[int, int]:
    """(within their limits, all) target cells of a cost model's table."""
    cells = target_cells(rows, cm)
    return sum(abs(e) <= lim for _, _, e, lim in cells), len(cells)


def replayed(rows: list[dict]) -> bool:
    """Whether any run has more than one engine replay (so spread and per-replay counts mean something)."""
    return any(len(r["engine_replays"]) > 1 for r in rows)


def _err_cell(r: dict, cm: str, m: str) -> tuple[str, bool]:
    """A table cell: the relative error as text, and whether it is within the cell's limit."""
    e = r[f"{cm}_err"][m]
    return f"{e * 100:+.1f}%", abs(e) <= limit(r, m)


def _spread_cells(r: dict) -> list[str]:
    return [f"{r['engine_spread'][m] * 100:.1f}%" for m in METRICS]


def per_replay_targets(rows: list[dict], cm: str = "calibrated") -> list[tuple[int, int]]:
    """(within, cells) of the targets against each replay alone instead of the median: how much one replay's
    luck decides a pass (runs with fewer replays count their last one for the missing)."""
    n = max(len(r["engine_replays"]) for r in rows)
    out = []
    for k in range(n):
        ok = cells = 0
        for r in rows:
            eng = r["engine_replays"][min(k, len(r["engine_replays"]) - 1)]
            for m in TARGETS:
                cells += 1
                ok += abs((r[cm][m] - eng[m]) / eng[m]) <= limit(r, m)
        out.append((ok, cells))
    return out


def median_interval(values, level: float = 0.90) -> tuple[float, float, float]:
    """Distribution-free confidence interval of a median from n draws: the order statistics j and n + 1 - j
    with the largest j whose coverage, P(X_(j) <= median <= X_(n+1-j)) = 1 - 2 P(Binomial(n, 1/2) < j), is at
    least `level`. Returns (low, high, coverage); with too few draws for the level, the full range and its
    coverage. Needs no assumption about how an engine's runs scatter (TTFT tails near saturation are skewed)."""
    x = np.sort(np.asarray(values, float))
    n = len(x)
    if n == 0:
        raise ValueError("median_interval needs at least one value")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    best = 1
    for j in range(1, n // 2 + 1):
        if 1 - 2 * binom.cdf(j - 1, n, 0.5) >= level:
            best = j
    cover = 1 - 2 * binom.cdf(best - 1, n, 0.5)
    return float(x[best - 1]), float(x[n - best]), float(cover)


def misses(rows: list[dict], cm: str = "calibrated", level: float = 0.90) -> list[dict]:
    """The target cells outside their limits, each with the engine median's interval over its replays and
    whether some median inside that interval would put the simulator within the limit: a miss the engine's own
    run-to-run variation cannot tell from a pass at this level (`within_noise`)."""
    out = []
    for r, m, e, lim in target_cells(rows, cm):
        if abs(e) <= lim:
            continue
        vals = [x[m] for x in r["engine_replays"]]
        lo, hi, cover = median_interval(vals, level)
        sim = r[cm][m]
        # medians within the limit of the simulated value: |sim - med| <= lim * med
        ok_lo, ok_hi = sim / (1 + lim), (sim / (1 - lim) if lim < 1 else float("inf"))
        out.append({"model": r["model"], "run": r["run"], "metric": m, "error": e, "limit": lim, "sim": sim,
                    "median": r["engine"][m], "low": lo, "high": hi, "coverage": cover, "replays": len(vals),
                    "within_noise": ok_lo <= hi and lo <= ok_hi})
    return out


def miss_lines(rows: list[dict], cm: str) -> list[str]:
    """One line per target miss: the simulated value, the engine median and its interval, and the verdict."""
    out = []
    for x in misses(rows, cm):
        scale, unit = (1e3, "ms") if x["metric"].startswith(("ttft", "tpot")) else \
            ((1.0, "s") if x["metric"].startswith("e2e") else (1.0, "tok/s"))
        verdict = ("inside the engine's own variation: a median in that interval would meet the limit"
                   if x["within_noise"] else "outside the engine's own variation")
        out.append(f"{x['model']} {x['run']} {x['metric'].replace('_', ' ')}: simulated {x['sim'] * scale:.3g} {unit}, "
                   f"engine median {x['median'] * scale:.3g} {unit} ({x['error']:+.1%}, limit {x['limit']:.0%}); "
                   f"the median's {x['coverage']:.0%} interval over {x['replays']} runs {x['low'] * scale:.3g}-"
                   f"{x['high'] * scale:.3g} {unit}: {verdict}")
    return out


def markdown(rows: list[dict]) -> str:
    """The comparison as Markdown tables (for READMEs and notes): errors per cost model, the engine's spread
    over replays, and the reference values; a cell outside its target is in bold."""
    out = []
    for cm in ("calibrated", "roofline"):
        if not rows or f"{cm}_err" not in rows[0]:
            continue
        out += [f"{cm} cost model vs the engine (relative error; **bold**: outside the target):", "",
                "| model | run | load | " + " | ".join(m.replace("_", " ") for m in METRICS) + " |",
                "|---|---|---|" + "---|" * len(METRICS)]
        for r in rows:
            cells = []
            for m in METRICS:
                text, within = _err_cell(r, cm, m)
                cells.append(f"**{text}**" if m in TARGETS and not within else text)
            out.append(f"| {r['model']} | {r['run']} | {r['load']:.2f} | " + " | ".join(cells) + " |")
        ok, n = target_count(rows, cm)
        out += ["", f"{ok} of {n} target cells within their limits.", ""]
        if replayed(rows):
            each = ", ".join(f"{a}" for a, _ in per_replay_targets(rows, cm))
            out += [f"Against each replay alone instead of the median: {each} of {n}.", ""]
            lines = miss_lines(rows, cm) if cm == "calibrated" else []
            if lines:
                out += ["Cells outside their limits, against the distribution-free interval of the engine's "
                        "median:", ""]
                out += [f"- {x}" for x in lines] + [""]
    if replayed(rows):
        out += ["the engine against itself: (max - min) / median over replays of the same trace:", "",
                "| model | run | replays | " + " | ".join(m.replace("_", " ") for m in METRICS) + " |",
                "|---|---|---|" + "---|" * len(METRICS)]
        for r in rows:
            out.append(f"| {r['model']} | {r['run']} | {len(r['engine_replays'])} | " + " | ".join(_spread_cells(r))
                       + " |")
        out.append("")
    out += ["engine reference (median over replays):", "",
            "| model | run | req/s | TTFT P50 | TTFT P95 | TPOT P50 | E2E P50 | E2E P95 | tok/s |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = r["engine"]
        out.append(f"| {r['model']} | {r['run']} | {r['offered_req_s']:.1f} | {e['ttft_p50'] * 1e3:.0f} ms | "
                   f"{e['ttft_p95'] * 1e3:.0f} ms | {e['tpot_p50'] * 1e3:.1f} ms | {e['e2e_p50']:.2f} s | "
                   f"{e['e2e_p95']:.2f} s | {e['throughput_tok_s']:.0f} |")
    return "\n".join(out) + "\n"


def _metric_table(title: str, third: str):
    """A rich table with model, run, one column per run (load or replays), then one per metric."""
    t = Table(title=title)
    for c in ("model", "run", third, *(m.replace("_", " ") for m in METRICS)):
        t.add_column(c)
    return t


def render(rows: list[dict], con) -> None:
    for cm in ("calibrated", "roofline"):
        if not rows or cm not in rows[0]:
            continue
        title = f"simulator ({cm} cost model) vs the engine: relative error per metric"
        if cm == "calibrated" and "step jitter" in rows[0].get("calibrated_model", ""):
            title += "\n(with step jitter drawn from the profile's measured iterations)"
        if cm == "calibrated" and any(r.get("extrapolated") for r in rows):
            pairs = sorted({(r["profile_gpu"], r["gpu"]) for r in rows if r.get("extrapolated")})
            title += "\nEXTRAPOLATED: " + ", ".join(f"runs on {g} predicted from the {p} profile (each operator's "
                                                      f"roofline part scaled by the GPUs' ratio)" for p, g in pairs)
        t = _metric_table(title, "load")
        for r in rows:
            cells = [f"[{'green' if within else 'red'}]{text}[/]" for text, within in
                     (_err_cell(r, cm, m) for m in METRICS)]
            t.add_row(r["model"], r["run"], f"{r['load']:.2f}", *cells)
        con.print(t)
        ok, n = target_count(rows, cm)
        con.print(f"{cm}: {ok} of {n} target cells (TTFT, E2E P50/P95, throughput) within their limits "
                  f"(TTFT 10%; E2E, throughput 5% below saturation, 10% above; 10% on another GPU)")
        if replayed(rows):
            con.print(f"  against each replay alone instead of the median: "
                      f"{', '.join(str(a) for a, _ in per_replay_targets(rows, cm))} of {n}")
            for line in (miss_lines(rows, cm) if cm == "calibrated" else []):
                con.print(f"  miss: {line}")
    if replayed(rows):
        t = _metric_table("the engine against itself: spread of each metric over replays of the same trace\n"
                          "((max - min) / median; the errors above are against the median)", "replays")
        for r in rows:
            t.add_row(r["model"], r["run"], str(len(r["engine_replays"])), *_spread_cells(r))
        con.print(t)
    t = Table(title="engine measurements (the reference: median over replays)")
    for c in ("model", "run", "replays", "req/s", "TTFT p50", "TTFT p95", "TPOT p50", "E2E p50", "E2E p95", "tok/s"):
        t.add_column(c)
    for r in rows:
        e = r["engine"]
        t.add_row(r["model"], r["run"], str(len(r["engine_replays"])), f"{r['offered_req_s']:.2f}",
                  f"{e['ttft_p50'] * 1e3:.0f} ms", f"{e['ttft_p95'] * 1e3:.0f} ms", f"{e['tpot_p50'] * 1e3:.1f} ms",
                  f"{e['e2e_p50']:.2f} s", f"{e['e2e_p95']:.2f} s", f"{e['throughput_tok_s']:.0f}")
    con.print(t)
