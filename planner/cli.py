"""The `planner` command line: size, simulate, experiment, catalog."""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contract.errors import InputError
from planner import resources
from planner import search as sr
from planner.cost import build_cost_model
from planner.cost.base import ScaledCostModel
from planner.report import render_sizing, render_summary, write_outputs
from planner.scenario import load_scenario, with_overrides
from planner.sim import budget
from planner.sim import simulate as run_sim
from planner.sizing import DEFAULT_STEP_MARGIN
from planner.sizing import size as do_size

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Capacity planner for LLM serving: size, simulate and cost a fleet.")
console = Console() if sys.stdout.isatty() else Console(width=140)
err = Console(stderr=True, soft_wrap=True)


def _load(path: str):
    """A scenario file, or the name of a built-in one (scenarios/NAME.yaml)."""
    p = Path(path)
    builtin = resources.scenarios()
    if not p.exists() and path in builtin:
        p = builtin[path]
    return load_scenario(p)


def _fail(e: Exception) -> None:
    err.print("[bold red]error:[/] invalid input")
    for line in str(e).splitlines():
        err.print(f"  {line}", markup=False, highlight=False)
    raise typer.Exit(2)


@app.command()
def size(scenario: str = typer.Argument(..., help="scenario YAML/JSON, or a built-in name"),
         json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
         alternatives: bool = typer.Option(True, help="also size every TP degree and quantization that fits"),
         step_margin: float = typer.Option(DEFAULT_STEP_MARGIN, help="also answer with every step this fraction "
                                           "slower than modelled (0 turns the check off)")):
    """Analytic sizing: demand, memory, per-instance throughput and latency, instances needed, cost."""
    try:
        _finite("--step-margin", step_margin, zero_ok=True)
        sc = _load(scenario)
        rep = do_size(sc, with_alternatives=alternatives, step_margin=step_margin)
    except (InputError, ValueError) as e:
        _fail(e)
    if json_out:
        print(json.dumps(rep.to_dict(), indent=2, default=float))
    else:
        render_sizing(rep, console)


def _finite(name: str, value: float | None, positive: bool = True, zero_ok: bool = False) -> None:
    """A number option must be a finite number (and positive, or at least zero): NaN, inf and -5 are named."""
    if value is None:
        return
    if not math.isfinite(value):
        raise InputError([(name, f"must be a finite number, got {value}")])
    if positive and (value < 0 or (value == 0 and not zero_ok)):
        raise InputError([(name, f"must be {'at least 0' if zero_ok else 'above 0'}, got {value:g}")])


def _check_out(out: Path | None) -> None:
    """Before any work: --out must be a new or empty folder we can write into."""
    if out is None:
        return
    if out.exists() and not out.is_dir():
        raise InputError([("--out", f"'{out}' exists and is not a folder")])
    if out.is_dir() and any(out.iterdir()):
        raise InputError([("--out", f"'{out}' is not empty; give a new folder (nothing is overwritten)")])
    parent = (out if out.exists() else out.parent).resolve()
    while not parent.exists():
        parent = parent.parent
    try:  # a real write, not a permission bit: root passes os.access on read-only and virtual filesystems
        Path(tempfile.mkdtemp(prefix=".planner-write-check.", dir=parent)).rmdir()
    except OSError as e:
        raise InputError([("--out", f"cannot write into '{parent}': {e.strerror or e}")])


def _write_atomically(out: Path, write) -> list[Path]:
    """`write(folder)` into a temporary folder beside `out`, renamed to `out` at the end: a failed or interrupted
    run leaves no half-written results."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        names = [p.name for p in write(tmp)]
        if out.exists():
            out.rmdir()  # checked empty before the run
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / n for n in names]


# a request the fleet can never serve, whatever the load: the scenario contradicts its own workload
STRUCTURAL = ("prompt + output exceeds", "needs more KV blocks")


@app.command()
def simulate(scenario: str = typer.Argument(..., help="scenario YAML/JSON, or a built-in name"),
             out: Optional[Path] = typer.Option(None, help="write records, summary, time series and plots into "
                                                "this new folder"),
             duration: Optional[float] = typer.Option(None, help="override sim.duration_s"),
             warmup: Optional[float] = typer.Option(None, help="override sim.warmup_s"),
             seed: Optional[int] = typer.Option(None, help="override sim.seed"),
             load: float = typer.Option(1.0, help="multiply the offered load (e.g. 2 for the peak)"),
             step_scale: float = typer.Option(1.0, help="multiply every step's time (1.1: what if steps are 10% "
                                              "slower than modelled; near saturation it moves queueing a lot)"),
             fast_forward: Optional[bool] = typer.Option(None, "--fast-forward/--no-fast-forward"),
             json_out: bool = typer.Option(False, "--json", help="print the summary as JSON"),
             progress: bool = typer.Option(True, help="show a progress bar")):
    """Discrete-event simulation of the cluster: latency percentiles, throughput, SLA attainment, cost."""
    try:
        _finite("--load", load)
        _finite("--step-scale", step_scale)
        _finite("--duration", duration)
        _finite("--warmup", warmup, zero_ok=True)
        _check_out(out)
        sc = with_overrides(_load(scenario), {"sim.duration_s": (duration, "--duration"),
                                              "sim.warmup_s": (warmup, "--warmup"), "sim.seed": (seed, "--seed"),
                                              "sim.fast_forward": (fast_forward, "--fast-forward")})
        est = budget.check(sc, load)
        cost = ScaledCostModel(build_cost_model(sc), step_scale) if step_scale != 1.0 else None
        t0 = time.perf_counter()
        if progress and not json_out and sys.stderr.isatty():
            with Progress(TextColumn(f"simulating ({est.describe()})"), BarColumn(),
                          TextColumn("{task.completed:.0f}/{task.total:.0f} s"), TimeElapsedColumn(), console=err,
                          transient=True) as bar:
                task = bar.add_task("sim", total=sc.sim.duration_s)
                cl, summary = run_sim(sc, cost, load_scale=load,
                                      progress=lambda t, tot: bar.update(task, completed=t))
        else:
            cl, summary = run_sim(sc, cost, load_scale=load)
        summary["wall_s"] = time.perf_counter() - t0
    except (InputError, ValueError) as e:
        _fail(e)
    if json_out:
        print(json.dumps(summary, indent=2, default=float))
    else:
        render_summary(summary, console)
        console.print(f"[dim]wall time {summary['wall_s']:.2f} s[/]")
    for n in summary["notes"]:
        err.print(f"note: {n}", markup=False, highlight=False)
    if out is not None:
        for p in _write_atomically(out, lambda d: write_outputs(cl, summary, d)):
            err.print(f"wrote {p}")
    structural = [n for n in summary["notes"] if any(k in n for k in STRUCTURAL)]
    if structural:
        err.print("[bold red]error:[/] the fleet cannot serve part of the scenario's own workload "
                  "(fleet.max_model_len, or the KV pool per replica): " + "; ".join(structural))
        raise typer.Exit(1)


@app.command()
def experiment(name: str = typer.Argument(..., help="batching | paged"),
               scenario: str = typer.Option("seed-100-a100", help="scenario to run it on"),
               duration: float = typer.Option(600.0, help="simulated seconds per point"),
               cv: Optional[float] = typer.Option(None, help="batching: lognormal lengths with this CV"),
               json_out: bool = typer.Option(False, "--json")):
    """The seeds' claims, tested: continuous vs static batching; paged vs contiguous KV allocation."""
    from planner import experiments
    try:
        sc = _load(scenario)
        if name == "batching":
            res = experiments.batching(sc, duration=duration, cv=cv)
        elif name == "paged":
            res = experiments.paged(sc)
        else:
            raise InputError([("name", f"unknown experiment '{name}'; choose batching or paged")])
    except (InputError, ValueError) as e:
        _fail(e)
    if json_out:
        print(json.dumps(res, indent=2, default=float))
    else:
        experiments.render(name, res, console)


@app.command()
def search(scenario: str = typer.Argument("seed-optimize-cost"),
           backend: str = typer.Option("process", help="process | serial | ray"),
           workers: int = typer.Option(2, help="local processes (or Ray CPUs)"),
           address: Optional[str] = typer.Option(None, help="Ray cluster address (with --backend ray)"),
           no_prune: bool = typer.Option(False, "--no-prune", help="start every bisection at 1 replica"),
           duration: Optional[float] = typer.Option(None, help="simulated seconds per evaluation"),
           out: Optional[Path] = typer.Option(None, help="write results JSON and the Pareto plot here"),
           json_out: bool = typer.Option(False, "--json")):
    """The cheapest fleet meeting every SLA at peak: pruned candidates, bisection by simulation."""
    try:
        _finite("--duration", duration)
        if workers < 1:
            raise InputError([("--workers", f"must be at least 1, got {workers}")])
        _check_out(out)
        sc = with_overrides(_load(scenario), {"search.sim_duration_s": (duration, "--duration")})
        t0 = time.perf_counter()
        if not json_out and sys.stderr.isatty() and backend != "ray":
            with Progress(TextColumn("candidates"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err, transient=True) as bar:
                task = bar.add_task("search", total=None)
                res = sr.search(sc, backend=backend, workers=workers, address=address, prune=not no_prune,
                                progress=lambda d, n: bar.update(task, completed=d, total=n))
        else:
            res = sr.search(sc, backend=backend, workers=workers, address=address, prune=not no_prune)
        res["wall_s"] = time.perf_counter() - t0
    except (InputError, ValueError) as e:
        _fail(e)
    if out is not None:
        def write(d: Path) -> list[Path]:
            (d / "search.json").write_text(json.dumps(res, indent=2, default=float))
            if res["ranked"]:
                sr.plot_pareto(res, d / "pareto.png")
            return sorted(d.iterdir())
        for p in _write_atomically(out, write):
            err.print(f"wrote {p}")
    if json_out:
        print(json.dumps(res, indent=2, default=float))
        return
    from rich.table import Table
    t = Table(title=f"{res['scenario']}: {res['fit']} of {res['candidates']} candidates fit; "
                    f"{res['evaluations']} simulations in {res['wall_s']:.0f} s")
    for c in ("GPU", "TP", "quant", "max seqs", "prefix cache", "spot", "replicas", "GPUs", "$/hour", "$/1M tok",
              "P95 E2E", "Pareto", "binds (analytic)"):
        t.add_column(c)
    pareto = {id(r) for r in res["pareto"]}
    for r in res["ranked"]:
        c = r["candidate"]
        t.add_row(c["gpu"], str(c["tp"]), c["quantization"], str(c["max_num_seqs"]), str(c["prefix_caching"]),
                  f"{c.get('spot_share', 0):.0%}",
                  str(r["replicas"]), str(r["gpus"]), f"{r['per_hour']:,.2f}", f"{r['per_million_tokens']:.3f}",
                  f"{r['e2e_p95']:.2f} s", "*" if id(r) in pareto else "",
                  "; ".join(b.split(":")[0] for b in r.get("binding", [])))
    console.print(t)
    infeasible = [r["candidate"] for r in res["results"] if not r["replicas"]]
    if infeasible:
        console.print(f"[dim]{len(infeasible)} candidates cannot meet the SLAs with any fleet up to "
                      f"{sc.search.max_replicas} replicas[/]")


@app.command("max-rate")
def max_rate_cmd(scenario: str = typer.Argument(..., help="scenario YAML/JSON, or a built-in name"),
                 tol: float = typer.Option(0.02, help="relative width of the final bracket"),
                 json_out: bool = typer.Option(False, "--json")):
    """The highest request rate one replica sustains meeting every SLA (MLPerf server style), by bisection
    over simulations; the analytic capacity beside it."""
    from planner.max_rate import max_rate
    try:
        sc = _load(scenario)
        _finite("--tol", tol)
        with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as prog:
            task = prog.add_task("bracketing", total=None)
            res = max_rate(sc, tol, progress=lambda i, r, ok: prog.update(
                task, description=f"simulation {i}: {r:.3g} req/s {'meets' if ok else 'misses'} the SLAs"))
    except (InputError, ValueError) as e:
        _fail(e)
    from planner.stacks import presets
    if sc.cost_model.kind == "stack" and sc.stack in presets():  # how the preset did on published rates/throughput
        from planner import evidence
        res["evidence"] = evidence.stack_evidence(sc.stack, sc.fleet.gpu)
    if json_out:
        console.print_json(data=res)
        return
    console.print(f"[bold]{sc.name}[/bold] ({build_cost_model(sc).description})")
    if "evidence" in res:
        console.print(f"[dim]evidence: {evidence.describe(res['evidence'])}[/]")
    if not res["at_max"]:
        console.print(res["note"])
        raise typer.Exit(1)
    console.print(f"max rate per replica meeting every SLA: [bold]{res['max_rate_req_s']:.3g} req/s[/bold] "
                  f"({res['per_gpu_req_s']:.3g} per GPU; analytic capacity {res['analytic_capacity_req_s']:.3g}; "
                  f"{len(res['evaluations'])} simulations, bracket {tol:.0%})")
    for r in res["at_max"]["sla"]:
        console.print(f"  {r['tier']}: P{r['percentile']:g} {r['metric']} {r['value']:.3g} s "
                      f"(target {r['target_s']} s)")
    if res["first_miss"]:
        miss = [r for r in res["first_miss"]["sla"] if not r["met"]]
        what = ", ".join(f"P{r['percentile']:g} {r['metric']} {r['value']:.3g} s" for r in miss) or "requests left"
        console.print(f"  at {res['first_miss']['rate']:.3g} req/s it misses: {what}")


@app.command()
def tiers(scenario: str = typer.Argument("seed-multi-tenant"),
          duration: float = typer.Option(600.0, help="simulated seconds per run"),
          json_out: bool = typer.Option(False, "--json")):
    """The multi-tenant question: smallest fleet per policy meeting every tier's SLA; 2x peak per tier."""
    from planner import tiers as tq
    try:
        res = tq.answer(_load(scenario), duration=duration)
    except (InputError, ValueError) as e:
        _fail(e)
    if json_out:
        print(json.dumps(res, indent=2, default=float))
    else:
        tq.render(res, console)




@app.command("pool-profiles")
def pool_profiles(base: Path = typer.Argument(..., help="profile whose operator tables are kept"),
                  others: list[Path] = typer.Argument(..., help="calibrations whose serving iterations join"),
                  out: Path = typer.Option(..., help="pooled profile to write (.json, or .json.gz compressed)")):
    """Pool the serving iterations of several `engine calibrate` runs of one GPU kind into one profile: one
    calibration is one machine, and a plan is for the GPU kind."""
    from contract.profile import Profile, host_speed_warning, pool_iterations
    try:
        loaded = [Profile.load(p) for p in [base, *others]]
        prof = pool_iterations(loaded[0], loaded[1:], [str(p) for p in others])
    except (InputError, ValueError) as e:
        _fail(e)
    for path, p in zip([base, *others], loaded):  # a calibration whose host slowed while its ramps ran: say so
        if p.host_bench_samples_s and (w := host_speed_warning(p.host_bench_samples_s)):
            console.print(f"[yellow]warning[/]: {path}: {w}")
    prof.save(out)
    console.print(f"{len(prof.iterations)} serving iterations from {len(prof.iteration_sources)} calibrations, "
                  f"operator tables from {base} -> {out}")


@app.command("profile-add")
def profile_add(base: Path = typer.Argument(..., help="profile to extend"),
                extra: Path = typer.Argument(..., help="`engine calibrate --extra` output: FP8/INT8 GEMMs, "
                                             "all-reduce, TP serving iterations"),
                out: Path = typer.Option(..., help="profile to write (.json, or .json.gz compressed)"),
                replace_iterations: bool = typer.Option(
                    False, help="the extra's TP/quantized serving iterations replace the profile's of the same weight "
                                "format and TP degree (re-measured after the engine's kernels changed) instead of "
                                "pooling with them")):
    """Add the tables a bf16 calibration lacks to a profile; its bf16 tables and single-GPU iterations stay."""
    from contract.profile import Profile, add_tables
    try:
        merged = add_tables(Profile.load(base), Profile.load(extra), replace_iterations)
    except (InputError, ValueError) as e:
        _fail(e)
    merged.save(out)
    kinds = sorted({(r.quantization, r.kernel or "cublas") for r in merged.gemm})
    console.print(f"{out}: GEMM tables {kinds}; all-reduce TP {sorted({r.tp for r in merged.allreduce})}; "
                  f"serving iterations at TP {sorted({r.tp for r in merged.iterations})}")


stacks_app = typer.Typer(help="Serving-stack presets (vllm, sglang, trtllm, this-engine): list, fit on the "
                         "public-results table, evaluate on its held-out rows.", no_args_is_help=False,
                         invoke_without_command=True)
app.add_typer(stacks_app, name="stacks")


@stacks_app.callback()
def stacks_list(ctx: typer.Context):
    """List the presets (with no subcommand)."""
    if ctx.invoked_subcommand:
        return
    from planner.stacks import load_stack, presets
    t = Table(title="serving-stack presets")
    for c in ("name", "step overhead", "per sequence", "op scale", "all-reduce scale", "fitted on", "versions"):
        t.add_column(c)
    for name in presets():
        s = load_stack(name)
        fitted = "-" if not s.fit else f"{len(s.fit.rows)} rows" + (f" + {len(s.fit.tp_rows)} TP rows"
                                                                    if s.fit.tp_rows else "")
        t.add_row(name, "calibrated" if s.calibrated else f"{s.step_overhead_s * 1e3:.3f} ms",
                  "" if s.calibrated else f"{s.per_seq_overhead_s * 1e6:.2f} us",
                  "" if s.calibrated else f"{s.op_scale:.3f}", "" if s.calibrated else f"{s.allreduce_scale:.3f}",
                  fitted, s.versions)
    console.print(t)


@stacks_app.command("fit")
def stacks_fit(name: str = typer.Argument(..., help="vllm | sglang | trtllm"),
               write: bool = typer.Option(False, "--write", help="write the values into the preset file")):
    """Fit a preset's host terms (and kernel scale, given enough rows) on the table's `fit` rows of that stack;
    then, where the table has `fit_tp` rows of it (tensor-parallel runs), its all-reduce scale with those held."""
    from planner import public
    from planner.stacks import load_stack
    try:
        rows = public.load_rows()
        with Progress(console=console, transient=True) as prog:
            task = prog.add_task(f"fitting {name}", total=None)
            step = lambda i, n, rid: prog.update(task, completed=i, total=n, description=f"{name}: {rid}")  # noqa: E731
            fit = public.fit_stack(name, rows, progress=step)
            tp_fit = None
            if any(r.stack == name and r.split == "fit_tp" for r in rows):
                held = load_stack(name).model_copy(update=public.rounded_terms(fit))
                tp_fit = public.fit_allreduce_scale(name, rows, held, progress=step)
    except (InputError, ValueError) as e:
        _fail(e)
    console.print_json(data=fit if tp_fit is None else {**fit, **tp_fit})
    if write:
        console.print(f"wrote {public.write_preset(fit, tp_fit=tp_fit)}")


@stacks_app.command("evaluate")
def stacks_evaluate(out: Optional[Path] = typer.Option(None, help="write the Markdown report here"),
                    json_out: Optional[Path] = typer.Option(None, "--json", help="write the per-row table as JSON"),
                    workers: int = typer.Option(4, min=1, help="processes"),
                    split: Optional[str] = typer.Option(None, help="only rows of this split (fit | heldout)"),
                    preset_file: list[str] = typer.Option([], "--preset-file", help="NAME=PATH: predict stack NAME's "
                                                          "rows (and, for vllm, every row's vllm column) with the "
                                                          "stack file PATH -- a registered comparison")):
    """Predict every published row under its stack's preset, under vllm and by the roofline; the held-out
    summary against the limits (throughput 10%, TPOT 15%, TTFT 20%)."""
    from planner import public
    from planner.stacks import load_stack, presets
    alt = {}
    for spec in preset_file:
        name, _, path = spec.partition("=")
        if name not in presets() or not path:
            _fail(InputError([("--preset-file", f"'{spec}': NAME=PATH with NAME one of {', '.join(presets())}")]))
        try:
            load_stack(path)
        except InputError as e:
            _fail(e)
        alt[name] = path
    for f, name in ((out, "--out"), (json_out, "--json")):
        if f is not None and (f.is_dir() or not os.access(f.resolve().parent, os.W_OK)):
            _fail(InputError([(name, f"cannot write the file '{f}'")]))
    rows = [r for r in public.load_rows() if split is None or r.split == split]
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("predicting rows", total=len(rows))
        table = public.evaluate(rows, workers, progress=lambda i, n, rid: prog.update(task, completed=i),
                                preset_files=alt)
    s = public.summary(table)
    if json_out:
        _replace_file(json_out, json.dumps({"summary": s, "rows": table}, indent=1, default=float))
    md = public.report(table, s)
    if out:
        _replace_file(out, md)
    console.print(md if not out else f"wrote {out}")


def _replace_file(path: Path, text: str) -> None:
    """Write a whole file or nothing (a temporary file beside it, renamed over it)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.resolve().parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


@app.command()
def validate(data: Optional[Path] = typer.Option(None, help="engine runs (trace, records, meta); default: the "
                                                 "committed H100 runs when run from the repository"),
             profile: Optional[str] = typer.Option(None, help="calibration profile (default: the product "
                                                   "profile; 'none': the roofline model alone)"),
             json_out: bool = typer.Option(False, "--json"),
             markdown: bool = typer.Option(False, "--markdown", help="Markdown tables (for READMEs and notes)"),
             jitter: bool = typer.Option(True, "--jitter/--no-jitter",
                                         help="calibrated model with step jitter from the profile's iterations")):
    """Compare the simulator (calibrated and roofline) with the engine's measured runs, run for run."""
    from planner import validate as v
    try:
        data = data or resources.source_checkout_runs()
        if data is None:
            raise InputError([("--data", "give the folder of engine runs (*.meta.json); the committed runs ship "
                                         "with the repository, not the package")])
        profile = profile or str(resources.product_profile())
        if not data.exists() or not any(data.glob("*.meta.json")):
            raise InputError([("--data", f"no engine runs (*.meta.json) in {data}")])
        if profile and profile != "none" and not Path(profile).exists():
            raise InputError([("--profile", f"calibration profile '{profile}' does not exist")])
        rows = v.validate(data, None if profile in (None, "none") else profile, jitter=jitter)
    except (InputError, ValueError) as e:
        _fail(e)
    if json_out:
        print(json.dumps(rows, indent=2, default=float))
    elif markdown:
        print(v.markdown(rows), end="")
    else:
        v.render(rows, console)


@app.command()
def web(port: int = typer.Option(8501, help="port on localhost")):
    """Open the what-if dashboard (Streamlit) on localhost."""
    import subprocess
    from importlib.util import find_spec
    app_py = find_spec("web.app").origin
    # a tool run on internal infrastructure sends no usage statistics (Streamlit's default is to send them)
    raise typer.Exit(subprocess.call([sys.executable, "-m", "streamlit", "run", str(app_py),
                                      "--server.port", str(port), "--server.address", "127.0.0.1",
                                      "--browser.gatherUsageStats", "false"]))


@app.command()
def reference(out: Optional[Path] = typer.Option(None, help="write the Markdown here instead of printing it")):
    """The scenario reference: every section and field of the schema, with defaults, bounds and meaning."""
    from planner.reference import reference as ref
    text = ref()
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n")


@app.command()
def lengths():
    """The length presets of public datasets (`workload.lengths: NAME`): their sources and means."""
    from planner.scenario import length_presets
    t = Table(title="length presets")
    for c in ("name", "requests", "mean in", "mean out", "source"):
        t.add_column(c)
    for name, p in length_presets().items():
        st = p.get("stats", {})
        t.add_row(name, str(st.get("requests", "")), f"{st.get('input_mean', 0):.0f}",
                  f"{st.get('output_mean', 0):.0f}", p.get("source", ""))
    console.print(t)


@app.command()
def catalog():
    """List the built-in GPUs and models."""
    from rich.table import Table

    from contract.catalog import GPUS, MODELS
    t = Table(title="GPUs")
    for c in ("name", "GiB", "GB/s", "BF16 TF", "FP8 TF", "link GB/s", "$/h"):
        t.add_column(c)
    for g in GPUS.values():
        t.add_row(g.name, f"{g.memory_gib:g}", f"{g.hbm_bandwidth_gbps:g}", f"{g.bf16_tflops:g}",
                  f"{g.fp8_tflops:g}" if g.fp8_tflops else "-", f"{g.interconnect_gbps:g} {g.interconnect}",
                  f"{g.price_per_hour:.2f}")
    console.print(t)
    t = Table(title="Models")
    for c in ("name", "params", "layers", "hidden", "heads/kv", "ffn", "vocab"):
        t.add_column(c)
    for m in MODELS.values():
        t.add_row(m.name, f"{m.num_params / 1e9:.2f}B", str(m.num_layers), str(m.hidden_size),
                  f"{m.num_attention_heads}/{m.num_key_value_heads}", str(m.intermediate_size), str(m.vocab_size))
    console.print(t)


if __name__ == "__main__":
    app()
