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
PROFILES = {p.stem: p for p in sorted((ROOT / "data" / "profiles").glob("*.json"))}
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
    records_csv = "\n".join([",".join(c)] + [",".join(str(c[k][i]) for k in c) for i in range(len(c["rid"]))])
    return {"summary": summ, "lat": {k: v[inw & ~np.isnan(v)].tolist() for k, v in lat.items()},
            "series": {"t": s.t, "waiting": s.waiting, "running": s.running, "kv_util": s.kv_util,
                       "serving": s.live_replicas}, "records_csv": records_csv}


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
            for k, label in (("input_tokens", "input tokens (mean)"), ("output_tokens", "output tokens (mean)")):
                d = wl.setdefault(k, {"dist": "fixed", "mean": 200 if k == "input_tokens" else 150})
                if d.get("dist", "fixed") in ("fixed", "lognormal"):
                    d["mean"] = st.number_input(label, value=float(d.get("mean", 100)), key=K(k))
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
    with sb.expander("Failures and autoscaling"):
        fl = doc.setdefault("failures", {})
        mtbf = st.number_input("MTBF per GPU (hours, 0 = none)", value=float(fl.get("mtbf_hours_per_gpu") or 0),
                               key=K("mtbf"))
        fl["mtbf_hours_per_gpu"] = mtbf or None
    with sb.expander("Cost and simulation"):
        price = st.number_input("$ per GPU-hour (0 = catalog)", value=float(f.get("price_per_gpu_hour") or 0),
                                key=K("price"))
        f["price_per_gpu_hour"] = price or None
        sim = doc.setdefault("sim", {})
        sim["duration_s"] = st.number_input("simulated seconds", value=float(min(sim.get("duration_s", 600), 600)),
                                            key=K("duration"))
        sim["warmup_s"] = min(float(sim.get("warmup_s", 60)), sim["duration_s"] / 5)
        sim["seed"] = int(st.number_input("seed", value=int(sim.get("seed", 0)), key=K("seed")))
        cms = ["roofline"] + list(PROFILES)
        cm = st.selectbox("cost model", cms, key=K("costmodel"))
        doc["cost_model"] = {"kind": "roofline"} if cm == "roofline" else {
            "kind": "calibrated", "profile": str(PROFILES[cm])}
    return doc


def cdf_figure(lat: dict, slas: list) -> go.Figure:
    fig = go.Figure()
    for key, name in (("ttft", "TTFT"), ("e2e", "end-to-end")):
        x = np.sort(np.asarray(lat[key]))
        if len(x):
            fig.add_trace(go.Scatter(x=x, y=np.arange(1, len(x) + 1) / len(x), name=name, mode="lines"))
    for s in slas:
        fig.add_vline(x=s["target_s"], line_dash="dash", line_color="red",
                      annotation_text=f"{s.get('tier', '')} P{s['percentile']:g} {s['metric']} < {s['target_s']} s")
    fig.update_layout(title="latency CDF", xaxis_title="seconds", yaxis_title="fraction", height=360)
    return fig


def series_figure(ser: dict) -> go.Figure:
    fig = go.Figure()
    for k in ("waiting", "running"):
        fig.add_trace(go.Scatter(x=ser["t"], y=ser[k], name=k, mode="lines"))
    fig.add_trace(go.Scatter(x=ser["t"], y=[100 * v for v in ser["kv_util"]], name="KV used %", mode="lines",
                             yaxis="y2"))
    fig.update_layout(title="queue, batch and KV over time", xaxis_title="simulated s", height=360,
                      yaxis2=dict(overlaying="y", side="right", title="KV %"))
    return fig


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
    try:
        doc = load_doc(source, uploaded)
    except yaml.YAMLError as e:
        st.error(f"the uploaded file is not valid YAML: {e}")
        return
    doc = sidebar(doc, "" if uploaded is None and source == "defaults" else
                  (uploaded.name if uploaded is not None else source))
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


main()
