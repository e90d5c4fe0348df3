"""The what-if dashboard: open a scenario, turn the knobs, see latency, throughput, SLAs and cost.

    streamlit run web/app.py        (or: planner web)

Every knob edits the scenario document, which is validated by the planner's own schema; problems are
shown inline, naming the field. Results are cached by the scenario's content.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.catalog import GPUS, MODELS  # noqa: E402
from planner.scenario import ScenarioError, scenario_from_dict  # noqa: E402

SCENARIOS = {p.stem: p for p in sorted((ROOT / "scenarios").glob("*.yaml"))}
PROFILES = {p.name.split(".json")[0]: p for p in sorted((ROOT / "data" / "profiles").glob("*.json*"))}
# `planner validate --json` on the committed engine runs (README, "Calibration and validation")
VALIDATIONS = {"H100 (profile measured on H100s)": ROOT / "bench" / "results" / "validate_h100.json",
               "H200 (predicted from the H100 profile)": ROOT / "bench" / "results" / "validate_h200_from_h100_profile.json"}
DEFAULT = {"name": "defaults", "model": "llama-3.1-8b",
           "workload": {"arrival": {"process": "poisson", "rate": 10}},
           "fleet": {"gpu": "H100-SXM", "replicas": 2}, "slas": [{"metric": "e2e", "target_s": 10}],
           "sim": {"duration_s": 300, "warmup_s": 30}}


def load_doc(source: str, uploaded) -> dict:
    if uploaded is not None:
        return yaml.safe_load(uploaded.getvalue().decode())
    if source == "defaults":
        return copy.deepcopy(DEFAULT)
    return yaml.safe_load(SCENARIOS[source].read_text())


def with_trace(doc: dict, data: bytes) -> dict:
    """An uploaded trace replaces the arrival process (its lengths come with it); saved by content hash."""
    import hashlib
    import tempfile
    path = Path(tempfile.gettempdir()) / f"planner-trace-{hashlib.sha1(data).hexdigest()[:12]}.csv"
    path.write_bytes(data)
    doc = copy.deepcopy(doc)
    wl = doc.setdefault("workload", {})
    wl["arrival"] = {"process": "trace", "trace": str(path)}
    wl.pop("tenants", None)
    return doc


@st.cache_data(show_spinner=False, max_entries=32)
def run_sizing(doc_json: str) -> dict:
    from planner.sizing import size
    return size(scenario_from_dict(json.loads(doc_json), base_dir=ROOT / "scenarios"),
                with_alternatives=False).to_dict()


@st.cache_data(show_spinner=False, max_entries=16)
def run_sim(doc_json: str) -> dict:
    """Simulation results by scenario content: summary, latency samples and time series."""
    from planner.sim import simulate
    from planner.sim.metrics import columns, latencies
    sc = scenario_from_dict(json.loads(doc_json), base_dir=ROOT / "scenarios")
    cl, summ = simulate(sc)
    c = columns(cl.records)
    lat = latencies(c)
    inw = (c["arrival"] >= sc.sim.warmup_s) & (c["arrival"] < sc.sim.duration_s)
    s = cl.series
    done = c["status"] == "completed"
    bins = np.arange(0, max(s.t[-1] if s.t else 1, 1) + 10, 10.0)
    h, _ = np.histogram(c["finish"][done], bins=bins, weights=c["output_tokens"][done])
    records_csv = "\n".join([",".join(c)] + [",".join(str(c[k][i]) for k in c) for i in range(len(c["rid"]))])
    return {"summary": summ, "lat": {k: v[inw & ~np.isnan(v)].tolist() for k, v in lat.items()},
            "series": {"t": s.t, "waiting": s.waiting, "running": s.running, "kv_util": s.kv_util,
                       "serving": s.live_replicas, "bins": bins[:-1].tolist(),
                       "out_tok_s": (h / 10.0 / 100).tolist()}, "records_csv": records_csv}


def sidebar(doc: dict, scope: str = "") -> dict:
    """Every knob group edits the document in place. Widget keys are scoped by scenario: Streamlit keeps a
    widget's value by key, so without the scope a newly loaded scenario would show the old knobs."""
    sb = st.sidebar
    K = (lambda k: f"{scope}:{k}") if scope else (lambda k: k)
    wl = doc.setdefault("workload", {})
    with sb.expander("Workload", expanded=True):
        if wl.get("arrival"):
            a = wl["arrival"]
            if a.get("process") in ("poisson", "gamma"):
                a["rate"] = st.number_input("arrival rate (req/s)", value=float(a.get("rate") or 1.0), key=K("rate"))
            elif a.get("process") == "closed_loop":
                a["users"] = int(st.number_input("users", value=int(a["users"]), step=100, key=K("users")))
                a["think_time_s"] = st.number_input("think time (s)", value=float(a["think_time_s"]), key=K("think"))
            for k, label in (("input_tokens", "input tokens"), ("output_tokens", "output tokens")):
                d = wl.setdefault(k, {"dist": "fixed", "mean": 200 if k == "input_tokens" else 150})
                if d.get("dist", "fixed") in ("fixed", "lognormal"):
                    dists = ["fixed", "lognormal"]
                    d["dist"] = st.radio(f"{label}: distribution", dists, horizontal=True,
                                         index=dists.index(d.get("dist", "fixed")), key=K(k + "_dist"))
                    d["mean"] = st.number_input(f"{label} (mean)", value=float(d.get("mean", 100)), key=K(k))
                    if d["dist"] == "lognormal":
                        d["cv"] = st.number_input(f"{label} CV", value=float(d.get("cv", 0.5)), key=K(k + "_cv"))
        else:
            st.caption(f"{len(wl.get('tenants', []))} tenants, each with its own arrival process and lengths "
                       "(edit them in the scenario file)")
            scale = st.number_input("load multiplier (all tenants)", value=1.0, min_value=0.01, key=K("load"))
            for t in wl.get("tenants", []):
                if t["arrival"].get("rate"):
                    t["arrival"]["rate"] = t["arrival"]["rate"] * scale
        prof = wl.setdefault("rate_profile", {})
        prof["peak_factor"] = st.number_input("peak factor", value=float(prof.get("peak_factor", 1.0)), key=K("peak"))
    with sb.expander("Model"):
        names = sorted(MODELS)
        cur = doc.get("model") if isinstance(doc.get("model"), str) else names[0]
        doc["model"] = st.selectbox("model", names, index=names.index(cur) if cur in names else 0, key=K("model"))
    f = doc.setdefault("fleet", {})
    with sb.expander("Fleet", expanded=True):
        gpus = sorted(GPUS)
        f["gpu"] = st.selectbox("GPU", gpus, index=gpus.index(f.get("gpu", "H100-SXM")), key=K("gpu"))
        f["replicas"] = int(st.slider("replicas", 1, 128, int(f.get("replicas", 1)), key=K("replicas")))
        f["tensor_parallel_size"] = int(st.number_input("tensor parallel size", min_value=1, max_value=16,
                                                        value=int(f.get("tensor_parallel_size", 1)), key=K("tp")))
        qs = ["bf16", "fp16", "fp8", "int8", "int4"]
        f["quantization"] = st.selectbox("quantization", qs, index=qs.index(f.get("quantization", "bf16")),
                                         key=K("quant"))
    with sb.expander("Engine"):
        f["block_size"] = int(st.selectbox("block_size", [8, 16, 32], index=[8, 16, 32].index(f.get("block_size", 16)),
                                           key=K("bs")))
        f["gpu_memory_utilization"] = st.slider("gpu_memory_utilization", 0.5, 0.98,
                                                float(f.get("gpu_memory_utilization", 0.9)), key=K("gmu"))
        kvs = ["auto", "bf16", "fp16", "fp8"]
        f["kv_cache_dtype"] = st.selectbox("kv_cache_dtype", kvs, index=kvs.index(f.get("kv_cache_dtype", "auto")),
                                           key=K("kvdtype"))
        f["max_num_seqs"] = int(st.number_input("max_num_seqs", value=int(f.get("max_num_seqs", 256)), key=K("mns")))
        f["max_num_batched_tokens"] = int(st.number_input("max_num_batched_tokens",
                                                          value=int(f.get("max_num_batched_tokens", 8192)),
                                                          key=K("mnbt")))
        f["enable_chunked_prefill"] = st.checkbox("chunked prefill", value=f.get("enable_chunked_prefill", True),
                                                  key=K("chunked"))
        f["enable_prefix_caching"] = st.checkbox("prefix caching", value=f.get("enable_prefix_caching", True),
                                                 key=K("prefix"))
        f["batching"] = st.radio("batching", ["continuous", "static"],
                                 index=["continuous", "static"].index(f.get("batching", "continuous")), key=K("batching"))
    if doc.get("tiers"):
        with sb.expander("Tiers"):
            pols = ["fcfs", "priority", "tier_budget"]
            f["scheduling_policy"] = st.selectbox("scheduling policy", pols,
                                                  index=pols.index(f.get("scheduling_policy", "fcfs")), key=K("policy"))
            f["tier_preemption"] = st.checkbox("preempt lower tiers at SLA risk", value=f.get("tier_preemption", True),
                                               key=K("preempt"))
            modes = ["recompute", "swap"]
            f["preemption_mode"] = st.radio("preemption", modes, horizontal=True,
                                            index=modes.index(f.get("preemption_mode", "recompute")), key=K("pmode"))
            for t in doc["tiers"]:
                st.markdown(f"**{t['name']}** (priority {t.get('priority', 0)})")
                t["sla"]["target_s"] = st.number_input(f"{t['name']}: P{t['sla'].get('percentile', 95):g} "
                                                       f"{t['sla'].get('metric', 'e2e')} target (s)",
                                                       value=float(t["sla"]["target_s"]), key=K("t_" + t["name"]))
                t["token_budget_share"] = st.slider(f"{t['name']}: token budget share", 0.05, 1.0,
                                                    float(t.get("token_budget_share") or 1.0),
                                                    key=K("tb_" + t["name"]))
                t["reserved_share"] = st.slider(f"{t['name']}: reserved share of replicas", 0.0, 0.9,
                                                float(t.get("reserved_share", 0.0)), key=K("rs_" + t["name"]))
                t["preemptible"] = st.checkbox(f"{t['name']}: preemptible", value=t.get("preemptible", False),
                                               key=K("pe_" + t["name"]))
    with sb.expander("Router and clients"):
        r = doc.setdefault("router", {})
        pols = ["round_robin", "least_outstanding_tokens", "session_affinity"]
        r["policy"] = st.selectbox("routing", pols, index=pols.index(r.get("policy", "least_outstanding_tokens")),
                                   key=K("router"))
        c = doc.setdefault("client", {})
        c["timeout_s"] = st.number_input("client timeout (s, 0 = none)", value=float(c.get("timeout_s") or 0),
                                         key=K("cto")) or None
        c["server_timeout_s"] = st.number_input("server timeout (s, 0 = none)",
                                                value=float(c.get("server_timeout_s") or 0), key=K("sto")) or None
        c["max_retries"] = int(st.number_input("client retries", min_value=0, value=int(c.get("max_retries", 0)),
                                               key=K("retries")))
        c["backoff_base_s"] = st.number_input("retry backoff base (s)", value=float(c.get("backoff_base_s", 1.0)),
                                              key=K("backoff"))
        q = st.number_input("reject when a replica has this many waiting (0 = never)",
                            value=int(r.get("max_queue_per_replica") or 0), min_value=0, key=K("maxq"))
        r["max_queue_per_replica"] = int(q) or None
    with sb.expander("Failures and autoscaling"):
        fl = doc.setdefault("failures", {})
        mtbf = st.number_input("MTBF per GPU (hours, 0 = none)", value=float(fl.get("mtbf_hours_per_gpu") or 0),
                               key=K("mtbf"))
        fl["mtbf_hours_per_gpu"] = mtbf or None
        if mtbf:
            fl["health_check_interval_s"] = st.number_input("health-check interval (s)",
                                                            value=float(fl.get("health_check_interval_s", 10)),
                                                            key=K("hc"))
            fl["replacement_warmup_s"] = st.number_input("replacement warm-up (s)",
                                                         value=float(fl.get("replacement_warmup_s", 120)), key=K("rw"))
        au = doc.setdefault("autoscaling", {})
        au["enabled"] = st.checkbox("autoscaling", value=au.get("enabled", False), key=K("auto"))
        if au["enabled"]:
            au["max_replicas"] = int(st.number_input("max replicas", min_value=1,
                                                     value=int(au.get("max_replicas", max(8, f["replicas"]))),
                                                     key=K("amax")))
            au["min_replicas"] = int(st.number_input("min replicas", min_value=1,
                                                     value=int(au.get("min_replicas", 1)), key=K("amin")))
            au["scale_up_threshold"] = st.number_input("scale up above (waiting per replica)",
                                                       value=float(au.get("scale_up_threshold", 8)), key=K("aup"))
            au["warmup_s"] = st.number_input("warm-up (s)", value=float(au.get("warmup_s", 120)), key=K("awarm"))
            au["scale_down_threshold"] = st.number_input("scale down below", value=float(au.get("scale_down_threshold", 1)),
                                                         key=K("adown"))
            au["cooldown_s"] = st.number_input("cooldown (s)", value=float(au.get("cooldown_s", 60)), key=K("acool"))
            ms = ["queue_depth", "kv_utilization"]
            au["metric"] = st.radio("scale on", ms, index=ms.index(au.get("metric", "queue_depth")), key=K("ametric"))
    with sb.expander("Cost and simulation"):
        price = st.number_input("$ per GPU-hour (0 = catalog)", value=float(f.get("price_per_gpu_hour") or 0),
                                key=K("price"))
        f["price_per_gpu_hour"] = price or None
        sim = doc.setdefault("sim", {})
        sim["duration_s"] = st.number_input("simulated seconds", value=float(min(sim.get("duration_s", 600), 600)),
                                            key=K("duration"))
        sim["warmup_s"] = min(float(sim.get("warmup_s", 60)), sim["duration_s"] / 5)
        sim["seed"] = int(st.number_input("seed", value=int(sim.get("seed", 0)), key=K("seed")))
        sim["drain_limit_s"] = st.number_input("run on after arrivals stop, at most (s)",
                                               value=float(sim.get("drain_limit_s", 600)), key=K("drain"))
        me = doc.setdefault("metering", {})
        by = ["tokens", "gpu_time"]
        me["tenant_cost_by"] = st.radio("tenant cost by", by, index=by.index(me.get("tenant_cost_by", "tokens")),
                                        horizontal=True, key=K("meter"))
        eff = doc.setdefault("cost_model", {}).get("efficiency", {})
        bw = st.slider("achievable bandwidth fraction", 0.3, 1.0, float(eff.get("bandwidth", 0.866)), key=K("effbw"))
        fl_ = st.slider("achievable compute fraction", 0.3, 1.0, float(eff.get("compute", 0.766)), key=K("effc"))
        ovh = st.number_input("per-step overhead (ms)", value=float(eff.get("step_overhead_s", 1.5e-4)) * 1e3,
                              key=K("ovh"))
        eff = dict(eff, bandwidth=bw, compute=fl_, step_overhead_s=ovh / 1e3)
        cms = ["roofline"] + list(PROFILES)
        cm = st.selectbox("cost model", cms, key=K("costmodel"))
        doc["cost_model"] = {"kind": "roofline", "efficiency": eff} if cm == "roofline" else {
            "kind": "calibrated", "profile": str(PROFILES[cm]), "efficiency": eff}
    return doc


def cdf_figure(lat: dict, slas: list) -> go.Figure:
    fig = go.Figure()
    for key, name in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "end-to-end")):
        x = np.sort(np.asarray(lat[key]))
        if len(x):
            fig.add_trace(go.Scatter(x=x, y=np.arange(1, len(x) + 1) / len(x), name=name, mode="lines"))
    for i, s in enumerate(slas):  # labels stepped down the chart: close targets' labels would overlap
        fig.add_vline(x=s["target_s"], line_dash="dash", line_color="red")
        fig.add_annotation(x=s["target_s"], y=1.0 - 0.12 * (i % 4), yref="y", xanchor="left", showarrow=False,
                           text=f"{s.get('tier', '')} P{s['percentile']:g} {s['metric']} < {s['target_s']} s",
                           font={"size": 11}, bgcolor="rgba(255,255,255,0.8)")
    fig.update_layout(title="latency CDF", xaxis_title="seconds", yaxis_title="fraction", height=360)
    return fig


def series_figure(ser: dict) -> go.Figure:
    fig = go.Figure()
    if ser.get("out_tok_s"):
        fig.add_trace(go.Scatter(x=ser["bins"], y=ser["out_tok_s"], name="output tok/s (/100)", mode="lines",
                                 line_shape="hv"))
    for k in ("waiting", "running"):
        fig.add_trace(go.Scatter(x=ser["t"], y=ser[k], name=k, mode="lines"))
    fig.add_trace(go.Scatter(x=ser["t"], y=[100 * v for v in ser["kv_util"]], name="KV used %", mode="lines",
                             yaxis="y2"))
    fig.update_layout(title="queue, batch and KV over time", xaxis_title="simulated s", height=360,
                      yaxis2=dict(overlaying="y", side="right", title="KV %"))
    return fig


def validation_figure(rows: list, cm: str = "calibrated") -> go.Figure:
    """Simulator error per run and metric as a heatmap, coloured by error over its target limit (1 = at the limit);
    the columns that are no target (TPOT) are left uncoloured, so a red cell is always a missed target."""
    from planner.validate import METRICS, TARGETS, limit
    ys = [f"{r['model']} {r['run']} ({r['load']:.2f})" for r in rows]
    z = [[abs(r[f"{cm}_err"][m]) / limit(r, m) if m in TARGETS else None for m in METRICS] for r in rows]
    text = [[f"{r[f'{cm}_err'][m] * 100:+.1f}%" for m in METRICS] for r in rows]
    fig = go.Figure(go.Heatmap(z=z, x=[m.replace("_", " ") + ("" if m in TARGETS else " (info)") for m in METRICS],
                               y=ys, text=text, texttemplate="%{text}", zmin=0, zmax=2,
                               colorscale=[[0, "#e8f5e9"], [0.5, "#a5d6a7"], [0.5001, "#ffcdd2"], [1, "#c62828"]],
                               colorbar={"title": "|error| / limit"}))
    fig.update_layout(height=90 + 32 * len(rows), margin={"t": 30, "b": 10}, yaxis={"autorange": "reversed"},
                      title=f"{cm} cost model vs the engine")
    return fig


def validation_panel() -> None:
    """The evidence behind the calibrated cost model: the simulator against the real engine, run for run."""
    from planner.validate import miss_lines, per_replay_targets, replayed, target_count
    have = {k: p for k, p in VALIDATIONS.items() if p.exists()}
    if not have:
        return
    with st.expander("How far to trust the calibrated cost model: simulator vs the real engine", expanded=False):
        which = st.selectbox("engine runs", list(have), key="validation_set")
        rows = json.loads(have[which].read_text())
        for cm in ("calibrated", "roofline"):
            if f"{cm}_err" not in rows[0]:
                continue
            ok, n = target_count(rows, cm)
            st.metric(f"{cm}: target cells within their limits", f"{ok} of {n}",
                      help="TTFT P50/P95 within 10%; E2E P50/P95 and throughput within 5% below saturation, 10% "
                           "above; everything within 10% on a GPU the profile was not measured on")
            if replayed(rows):
                st.caption("against each engine replay alone instead of their median: "
                           + ", ".join(str(a) for a, _ in per_replay_targets(rows, cm)) + f" of {n}")
                for line in (miss_lines(rows, cm) if cm == "calibrated" else []):
                    st.caption(f"miss: {line}")
            st.plotly_chart(validation_figure(rows, cm), width="stretch", key=f"validation_{cm}")
        st.caption(f"{have[which].relative_to(ROOT)}; made by `python -m planner.cli validate --json` on the "
                   "committed runs (data/validation*/); the engine reference is each metric's median over replays.")


def headline(summ: dict) -> dict:
    return {"P50 TTFT (s)": summ["ttft_s"]["p50"], "P95 TTFT (s)": summ["ttft_s"]["p95"],
            "P95 E2E (s)": summ["e2e_s"]["p95"], "tokens/s": summ["throughput"]["total_tok_s"],
            "SLA attainment": summ["sla_attainment"], "$/hour": summ["cost"]["per_hour"],
            "$/1M tokens": summ["cost"]["per_million_tokens"]}


def main() -> None:
    st.set_page_config(page_title="LLM serving planner", layout="wide")
    st.title("LLM serving capacity planner")
    source = st.sidebar.selectbox("scenario", ["defaults"] + list(SCENARIOS), key="source")
    uploaded = st.sidebar.file_uploader("or upload a scenario (YAML/JSON)", type=["yaml", "yml", "json"])
    trace = st.sidebar.file_uploader("or replay a trace (Azure CSV: TIMESTAMP, ContextTokens, GeneratedTokens)",
                                     type=["csv"])
    try:
        doc = load_doc(source, uploaded)
    except yaml.YAMLError as e:
        st.error(f"the uploaded file is not valid YAML: {e}")
        return
    if trace is not None:
        doc = with_trace(doc, trace.getvalue())
    doc = sidebar(doc, "" if uploaded is None and source == "defaults" and trace is None else
                  (uploaded.name if uploaded is not None else source) + (f"+{trace.name}" if trace else ""))
    try:
        sc = scenario_from_dict(copy.deepcopy(doc), base_dir=ROOT / "scenarios")
    except ScenarioError as e:
        for field, msg in e.problems:
            st.error(f"**{field or 'scenario'}**: {msg}")
        return
    st.caption(f"{sc.name}: {sc.description or sc.model_spec().name} -- cost model: "
               f"{doc['cost_model']['kind']}")
    doc_json = json.dumps(doc, sort_keys=True, default=str)

    st.subheader("Analytic sizing")
    rep = run_sizing(doc_json)
    c = st.columns(4)
    c[0].metric("instances needed at peak", rep["needed"]["with_sla_at_peak"] or "unreachable")
    c[1].metric("capacity of this fleet (tok/s)", f"{rep['fleet_given']['capacity_tok_s']:,.0f}")
    c[2].metric("fleet $/hour", f"{rep['cost']['fleet_per_hour']:,.2f}")
    per = rep["cost"]["per_million_tokens_at_avg"]
    c[3].metric("$ per 1M tokens", f"{per:.3f}" if per else "-")
    st.markdown("**What binds:** " + "; ".join(rep["binding"]))

    st.subheader("Simulation")
    if st.button("Run simulation", key="run", type="primary"):
        bar = st.progress(0, text="simulating")
        res = run_sim(doc_json)
        bar.progress(100, text="done")
        st.session_state["result"] = res
        st.session_state["result_doc"] = doc_json
    res = st.session_state.get("result")
    if res and st.session_state.get("result_doc") == doc_json:
        summ = res["summary"]
        h = headline(summ)
        cols = st.columns(len(h))
        for col, (k, v) in zip(cols, h.items()):
            col.metric(k, "-" if v is None else f"{v:,.3g}")
        slas = summ["slas"] + [dict(t["sla"], tier=n) for n, t in summ["tiers"].items()]
        st.plotly_chart(cdf_figure(res["lat"], slas), width="stretch")
        st.plotly_chart(series_figure(res["series"]), width="stretch")
        if summ["tiers"]:
            st.dataframe([{"tier": n, "attainment": t["attainment"], "P95": t[t["sla"]["metric"]]["p95"],
                           "target": t["sla"]["target_s"], "preemptions": t["preemptions"],
                           "$ per 1M tokens": t.get("per_million_tokens")} for n, t in summ["tiers"].items()],
                         key="tiers_table")
        if len(summ["tenants"]) > 1:
            st.dataframe([{"tenant": n, "tier": t["tier"], "requests": t["requests"], "cost $": t["usd"],
                           "$ per 1M tokens": t["per_million_tokens"], "P95 TTFT": t["ttft_p95"]}
                          for n, t in summ["tenants"].items()], key="tenants_table")
        st.download_button("records (CSV)", res["records_csv"], "requests.csv", key="dl_csv")
        st.download_button("summary (JSON)", json.dumps(summ, default=float, indent=1), "summary.json",
                           key="dl_json")
        if st.button("Pin this configuration for comparison", key="pin"):
            st.session_state["pinned"] = {"doc": doc, "headline": h}
    elif res:
        st.info("knobs changed since the last run: press Run simulation")
    st.download_button("scenario (YAML)", yaml.safe_dump(doc, sort_keys=False), "scenario.yaml", key="dl_yaml")

    pinned = st.session_state.get("pinned")
    if pinned and res and st.session_state.get("result_doc") == doc_json:
        st.subheader("Compare: pinned vs current")
        cur = headline(res["summary"])
        st.dataframe([{"metric": k, "pinned": pinned["headline"][k], "current": cur[k]} for k in cur],
                     key="compare_table")
    validation_panel()


if __name__ == "__main__" or st.runtime.exists():
    main()
