"""Rendering: sizing and simulation summaries as rich tables; files for `simulate --out`."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from planner.plots import plot_all
from planner.sim.metrics import columns


def _f(x, unit: str = "", digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
        return "inf" if x > 0 else "-"
    if isinstance(x, (int,)) and not isinstance(x, bool):
        return f"{x:,}{unit}"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}{unit}"
    if ax >= 1:
        return f"{x:.{digits}g}{unit}" if ax < 100 else f"{x:.1f}{unit}"
    return f"{x:.{digits}g}{unit}"


def _ms(x) -> str:
    return "-" if x is None else f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def render_sizing(rep, console: Console | None = None) -> None:
    con = console or Console()
    d, mem, inst, g, need, cost = rep.demand, rep.memory, rep.instance, rep.fleet_given, rep.needed, rep.cost
    con.rule(f"[bold]planner size[/] {rep.scenario}: {rep.model} on {rep.tp}x {rep.gpu} ({rep.quantization})")
    if rep.cost_model:
        con.print(f"answered by: {rep.cost_model}", style="dim")
    if rep.evidence is not None:
        from planner.evidence import describe
        con.print(f"evidence: {describe(rep.evidence)}", style="dim")
    t = Table(title="Demand", show_header=False, title_justify="left")
    t.add_row("requests/s (average / peak)", f"{_f(d['avg_req_s'])} / {_f(d['peak_req_s'])}")
    t.add_row("tokens per request (in + out)", f"{_f(d['mean_input_tokens'])} + {_f(d['mean_output_tokens'])}")
    t.add_row("tokens/s (average / peak)", f"{_f(d['avg_tok_s'])} / {_f(d['peak_tok_s'])}")
    t.add_row("compute floor (GPUs at 100% of achievable FLOP/s)",
              f"{_f(d['compute_floor_gpus_avg'])} / {_f(d['compute_floor_gpus_peak'])}")
    con.print(t)
    t = Table(title="Memory per GPU", show_header=False, title_justify="left")
    t.add_row("weights", f"{mem['weights_gib_per_gpu']:.1f} GiB (fits from TP={mem['min_tp_to_fit']})")
    t.add_row("workspace (context, activations)", f"{mem['workspace_gib']:.1f} GiB")
    t.add_row("usable at gpu_memory_utilization", f"{mem['usable_gib']:.1f} GiB")
    t.add_row("KV cache", f"{mem['kv_gib_per_gpu']:.1f} GiB = {mem['kv_blocks']:,} blocks = "
                          f"{mem['kv_tokens']:,} tokens ({mem['kv_bytes_per_token_per_gpu']:,} B/token/GPU)")
    con.print(t)
    t = Table(title="One instance", show_header=False, title_justify="left")
    t.add_row("max batch", f"{inst.max_batch} (limited by {inst.batch_limit}; KV fits {inst.kv_limited_batch})")
    t.add_row("prefill of one prompt", _ms(inst.prefill_s))
    t.add_row("decode step at batch 1 / max batch",
              f"{_ms(inst.decode_step_batch1_s)} / {_ms(inst.decode_step_max_batch_s)} ({inst.decode_bound}-bound)")
    t.add_row("capacity", f"{_f(inst.capacity_req_s)} req/s = {_f(inst.capacity_tok_s)} tok/s (in+out)")
    con.print(t)
    t = Table(title="Fleet: given vs needed at peak", title_justify="left")
    for c in ("", "instances", "GPUs", "capacity tok/s", "headroom at peak", "TTFT", "TPOT", "E2E (mean)", "SLA"):
        t.add_column(c)
    def row(name, e):
        pk = e["peak"]
        sat = " (saturated)" if pk["saturated"] else ""
        t.add_row(name, str(e["instances"]), str(e["gpus"]), _f(e["capacity_tok_s"]), f"{e['headroom_at_peak']:.2f}x",
                  _ms(pk["ttft_s"]), _ms(pk["tpot_s"]), _ms(pk["e2e_s"]) + sat,
                  "[green]meets[/]" if e["meets_sla_at_peak"] else "[red]misses[/]")
    row("given", g)
    if need.get("with_sla_at_peak"):
        row("needed", need)
    else:
        t.add_row("needed", "none at this TP", "", "", "", "", "", "", "[red]unreachable[/]")
    con.print(t)
    if rep.sla:
        s = rep.sla
        con.print(f"SLA: P{s['percentile']:g} {s['metric']} < {s['target_s']} s (analytic figures are means; "
                  "check the tail with `planner simulate`)")
    if rep.margin is not None:
        mg = rep.margin
        n = mg["instances_needed_at_peak"]
        same = n == mg["answer_instances"]
        con.print(f"[bold]Margin:[/] steps {mg['step_margin']:.0%} slower than modelled -> "
                  + (f"{n} instances meet the SLA at peak" if n else "no fleet at this TP meets the SLA")
                  + ("" if same else " [yellow](the answer above does not survive it)[/]")
                  + f"; the given fleet {'meets' if mg['given_meets_sla_at_peak'] else 'misses'} it")
    con.print("[bold]What binds:[/] " + "; ".join(rep.binding))
    t = Table(title="Cost", show_header=False, title_justify="left")
    t.add_row("price", f"${cost['price_per_gpu_hour']:.2f}/GPU-hour")
    t.add_row("given fleet", f"${cost['fleet_per_hour']:,.2f}/hour; ${_f(cost['per_million_tokens_at_avg'])} per 1M "
                             f"tokens at average load, ${_f(cost['per_million_tokens_at_capacity'])} at full capacity")
    if cost.get("needed_per_hour"):
        t.add_row("needed fleet", f"${cost['needed_per_hour']:,.2f}/hour; "
                                  f"${_f(cost['needed_per_million_tokens_at_avg'])} per 1M tokens at average load")
    con.print(t)
    if rep.claims:
        t = Table(title="Claims in the scenario vs the planner", title_justify="left")
        for c in ("claim", "claimed", "planner", "claimed/planner", "verdict", "note"):
            t.add_column(c)
        for c in rep.claims:
            style = "green" if c["verdict"] == "consistent" else "bold red"
            t.add_row(c["claim"], _f(c["claimed"]), _f(c["planner"]), f"{c['ratio']:.3g}",
                      f"[{style}]{c['verdict']}[/]", c["note"])
        con.print(t)
    if rep.alternatives:
        t = Table(title="Alternatives, cheapest first (instances to meet every SLA's mean at peak)",
                  title_justify="left")
        for c in ("GPU", "quant", "TP", "max seqs", "instances", "GPUs", "$/hour", "$/1M tok", "E2E at peak",
                  "decode b=1"):
            t.add_column(c)
        for a in sorted(rep.alternatives, key=lambda a: (a["per_hour"] is None, a["per_hour"] or 0)):
            t.add_row(a["gpu"], a["quantization"], str(a["tp"]), str(a["max_num_seqs"]), str(a["instances"] or "-"),
                      str(a["gpus"] or "-"),
                      _f(a["per_hour"]), _f(a["per_million_tokens"]), _ms(a["e2e_at_peak_s"]),
                      _ms(a["decode_batch1_ms"] / 1e3))
        con.print(t)
    for n in rep.notes:
        con.print(f"[dim]{n}[/]")


def render_summary(s: dict, console: Console | None = None) -> None:
    con = console or Console()
    con.rule(f"[bold]planner simulate[/] {s['scenario']}")
    st = s["status"]
    t = Table(title="Requests", show_header=False, title_justify="left")
    t.add_row("total", f"{s['requests']:,}")
    t.add_row("by final status", ", ".join(f"{k} {v:,}" for k, v in st.items()))
    t.add_row("retried / preemptions", f"{s['retried_requests']:,} / {s['preemptions']:,}")
    t.add_row("window", f"arrivals in [{s['warmup_s']:g}, {s['duration_s']:g}) s; simulated to {s['sim_time_s']:.1f} s")
    con.print(t)
    t = Table(title="Latency (requests arriving in the window)", title_justify="left")
    for c in ("metric", "P50", "P95", "P99", "mean"):
        t.add_column(c)
    for k, name in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "end-to-end")):
        v = s[k]
        t.add_row(name, _ms(v["p50"]), _ms(v["p95"]), _ms(v["p99"]), _ms(v["mean"]))
    con.print(t)
    th, c = s["throughput"], s["cost"]
    t = Table(title="Throughput, SLA and cost", show_header=False, title_justify="left")
    t.add_row("requests/s", _f(th["requests_s"]))
    t.add_row("tokens/s in / out / total",
              f"{_f(th['input_tok_s'])} / {_f(th['output_tok_s'])} / {_f(th['total_tok_s'])}")
    if s["slas"]:
        t.add_row("SLA", "; ".join(f"P{x['percentile']:g} {x['metric']} < {x['target_s']} s" for x in s["slas"]))
        t.add_row("SLA attainment / goodput", f"{s['sla_attainment'] * 100:.1f}% / {_f(s['goodput_req_s'])} req/s")
    t.add_row("replica busy fraction", f"{s['replica_busy_fraction'] * 100:.1f}%")
    t.add_row("MFU / weight-bandwidth utilization while busy",
              f"{s['utilization']['mfu'] * 100:.1f}% / {s['utilization'].get('mbu_weights', 0) * 100:.1f}%")
    t.add_row("prefix-cache hit tokens", f"{s['prefix_hit_token_fraction'] * 100:.1f}% of input")
    t.add_row("cost", f"${c['per_hour']:,.2f}/hour; ${_f(c['per_million_tokens'])} per 1M tokens "
                      f"(${_f(c['per_million_output_tokens'])} per 1M output)")
    con.print(t)
    if s.get("tiers"):
        t = Table(title="Per tier", title_justify="left")
        for c in ("tier", "requests", "SLA", "P50", "P95", "P99", "attainment", "goodput req/s", "preemptions"):
            t.add_column(c)
        met = {r["tier"]: r["met"] for r in s["sla_results"]}
        for name, v in s["tiers"].items():
            sl = v["sla"]
            p = v[sl["metric"]]
            ok = met.get(name)
            t.add_row(name, f"{v['requests']:,}", f"P{sl['percentile']:g} {sl['metric']} < {sl['target_s']} s",
                      _ms(p["p50"]), _ms(p["p95"]), _ms(p["p99"]),
                      (f"[green]{v['attainment'] * 100:.1f}%[/]" if ok else f"[red]{v['attainment'] * 100:.1f}%[/]"),
                      _f(v["goodput_req_s"]), f"{v['preemptions']:,}")
        con.print(t)
    if len(s.get("tenants", {})) > 1:
        t = Table(title="Per tenant", title_justify="left")
        for c in ("tenant", "tier", "requests", "TTFT P95", "E2E P95", "preemptions", "cost", "$/1M tokens"):
            t.add_column(c)
        for name, v in s["tenants"].items():
            t.add_row(name, v["tier"], f"{v['requests']:,}", _ms(v["ttft_p95"]), _ms(v["e2e_p95"]),
                      f"{v['preemptions']:,}", f"${v['usd']:,.2f}", f"${_f(v['per_million_tokens'])}")
        con.print(t)
    for r in s["sla_results"]:
        if r["tier"] != "default":
            continue
        if r["value"] is None:
            con.print(f"P{r['percentile']:g} {r['metric']}: no completed request to measure it on: [bold red]missed[/]")
        else:
            con.print(f"P{r['percentile']:g} {r['metric']} = {_ms(r['value'])} vs target {r['target_s']} s: "
                      + ("[green]met[/]" if r["met"] else "[bold red]missed[/]"))
    con.print(f"[dim]cost model: {s['cost_model']}; engine steps {s['engine']['steps']:,}, "
              f"fast-forward jumps {s['engine']['fast_forward_jumps']:,}[/]")


def write_outputs(cluster, summary: dict, out: Path) -> list[Path]:
    """Records (CSV), summary (JSON), time series (CSV) and plots (PNG)."""
    out.mkdir(parents=True, exist_ok=True)
    c = columns(cluster.records)
    paths = []
    p = out / "requests.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        keys = list(c)
        w.writerow(keys)
        for i in range(len(c["rid"])):
            w.writerow([c[k][i] for k in keys])
    paths.append(p)
    p = out / "summary.json"
    p.write_text(json.dumps(summary, indent=2, default=float))
    paths.append(p)
    s = cluster.series
    p = out / "timeseries.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "waiting", "running", "kv_util", "serving_replicas", "active_replicas"])
        w.writerows(zip(s.t, s.waiting, s.running, s.kv_util, s.live_replicas, s.active_replicas))
    paths.append(p)
    paths += plot_all(cluster, summary, out)
    return paths
