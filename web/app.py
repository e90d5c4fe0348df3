"""The what-if dashboard: open a scenario, turn the knobs, see latency, throughput, SLAs and cost.

    streamlit run web/app.py        (or: planner web)

Every knob edits the scenario document, which is validated by the planner's own schema; problems are
shown inline, naming the field. Results are cached by the scenario's content.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import yaml

from contract.catalog import GPUS, MODELS
from contract.errors import InputError
from contract.knobs import ServingKnobs
from planner import resources
from planner.scenario import (
    SLA,
    Arrival,
    Autoscaling,
    Client,
    CostModelCfg,
    Efficiency,
    Failures,
    Fleet,
    LengthDist,
    Metering,
    RateProfile,
    Router,
    Scenario,
    Sim,
    Tier,
    Workload,
    scenario_from_dict,
)
from planner.stacks import presets as stack_presets
from web.widgets import default_of, form, scalar_fields, widget

SCENARIOS = resources.scenarios()
SCENARIO_DIR = next(iter(SCENARIOS.values())).parent
PROFILES = resources.profiles()
STACKS = list(stack_presets())
# `planner validate --json` on the committed engine runs (README, "Calibration and validation")
VALIDATIONS = resources.evidence()
DEFAULT = {"name": "defaults", "model": "llama-3.1-8b",
           "workload": {"arrival": {"process": "poisson", "rate": 10}},
           "fleet": {"gpu": "H100-SXM", "replicas": 2}, "slas": [{"metric": "e2e", "target_s": 10}],
           "sim": {"duration_s": 300, "warmup_s": 30}}


def parse_upload(name: str, data: bytes) -> dict:
    """An uploaded scenario as a document, or an InputError naming the file and what is wrong with it (never a
    traceback with the server's paths)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError([("", f"{name}: not UTF-8 text (byte {e.start}); save it as UTF-8")])
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InputError([("", f"{name}: not valid YAML or JSON: {e}")])
    except RecursionError:
        raise InputError([("", f"{name}: nests too deeply to be a scenario")])
    if not isinstance(doc, dict):
        what = "empty" if doc is None else f"a {type(doc).__name__}"
        raise InputError([("", f"{name}: a scenario is a mapping of sections (model, workload, ...); this file is "
                               f"{what}")])
    return doc


def load_doc(source: str, uploaded) -> dict:
    if uploaded is not None:
        return parse_upload(uploaded.name, uploaded.getvalue())
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
    return size(scenario_from_dict(json.loads(doc_json), base_dir=SCENARIO_DIR),
                with_alternatives=False).to_dict()


@st.cache_data(show_spinner=False, max_entries=16)
def run_sim(doc_json: str) -> dict:
    """Simulation results by scenario content: summary, latency samples and time series."""
    from planner.sim import simulate
    from planner.sim.metrics import columns, latencies
    sc = scenario_from_dict(json.loads(doc_json), base_dir=SCENARIO_DIR)
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


CHOICES = {("Fleet", "gpu"): lambda: sorted(GPUS), ("Scenario", "model"): lambda: sorted(MODELS)}


def sidebar(doc: dict, scope: str = "") -> dict:
    """Every knob group edits the document in place; the widgets come from the schema (web/widgets.py).
    Widget keys are scoped by scenario: Streamlit keeps a widget's value by key, so without the scope a newly
    loaded scenario would show the old knobs."""
    sb = st.sidebar
    K = (lambda k: f"{scope}:{k}") if scope else (lambda k: k)
    wl = doc.setdefault("workload", {})
    with sb.expander("Workload", expanded=True):
        if wl.get("arrival") is not None:
            a = wl["arrival"]
            a["process"] = widget(st, Arrival, "process", a.get("process", "poisson"), K("workload.arrival.process"))
            form(st, Arrival, a, K("workload.arrival"), fields=list(Arrival.NEEDS[a["process"]]))
            if a["process"] != "trace":
                for part in ("input_tokens", "output_tokens"):
                    d = wl.setdefault(part, default_of(Workload.model_fields[part]).model_dump(exclude_defaults=True))
                    d["dist"] = widget(st, LengthDist, "dist", d.get("dist", "fixed"), K(f"workload.{part}.dist"))
                    st.caption(f"{part}: {d['dist']}")
                    form(st, LengthDist, d, K(f"workload.{part}"), fields=list(LengthDist.USES[d["dist"]]))
        else:
            st.caption(f"{len(wl.get('tenants', []))} tenants, each with its own arrival process and lengths "
                       "(edit them in the scenario file)")
            scale = st.number_input("load multiplier (all tenants)", value=1.0, min_value=0.01, key=K("load"))
            for t in wl.get("tenants", []):
                if t["arrival"].get("rate"):
                    t["arrival"]["rate"] = t["arrival"]["rate"] * scale
        form(st, RateProfile, wl.setdefault("rate_profile", {}), K("workload.rate_profile"))
    with sb.expander("Model"):
        if not isinstance(doc.get("model"), dict):
            doc["model"] = widget(st, Scenario, "model", doc.get("model"), K("model"), CHOICES)
    f = doc.setdefault("fleet", {})
    knobs = list(ServingKnobs.model_fields)
    with sb.expander("Fleet", expanded=True):
        form(st, Fleet, f, K("fleet"), fields=[n for n in scalar_fields(Fleet) if n not in knobs], choices=CHOICES)
    with sb.expander("Serving knobs (vLLM's names)"):
        form(st, Fleet, f, K("fleet"), fields=knobs)
    if doc.get("tiers"):
        with sb.expander("Tiers"):
            for t in doc["tiers"]:
                st.markdown(f"**{t['name']}**")
                form(st, Tier, t, K(f"tiers.{t['name']}"), fields=[n for n in scalar_fields(Tier) if n != "name"])
                form(st, SLA, t["sla"], K(f"tiers.{t['name']}.sla"), fields=["metric", "percentile", "target_s"])
    for title, section, model in (("Router", "router", Router), ("Clients", "client", Client),
                                  ("Failures", "failures", Failures), ("Autoscaling", "autoscaling", Autoscaling),
                                  ("Simulation", "sim", Sim), ("Metering", "metering", Metering)):
        with sb.expander(title):
            form(st, model, doc.setdefault(section, {}), K(section))
    with sb.expander("Cost model"):
        cm = doc.setdefault("cost_model", {})
        # serving-stack presets (the default: what a user of that stack gets), the roofline bound, and this
        # project's engine as calibrated on each shipped profile
        names = [f"stack: {n}" for n in STACKS] + ["roofline"] + [f"calibrated: {n}" for n in PROFILES]
        kind = cm.get("kind", "stack")
        if kind == "stack":
            cur = f"stack: {doc.get('stack', 'vllm')}"
        elif kind == "roofline":
            cur = "roofline"
        else:
            cur = next((f"calibrated: {n}" for n, pth in PROFILES.items() if str(pth) == cm.get("profile")),
                       names[-1])
        choice = st.selectbox("cost model", names, index=names.index(cur) if cur in names else 0,
                              key=K("cost_model"), help=CostModelCfg.model_fields["kind"].description)
        if choice.startswith("stack: "):
            cm.update(kind="stack")
            cm.pop("profile", None)
            doc["stack"] = choice.removeprefix("stack: ")
        elif choice == "roofline":
            cm.update(kind="roofline")
            cm.pop("profile", None)
        else:
            cm.update(kind="calibrated", profile=str(PROFILES[choice.removeprefix("calibrated: ")]))
        form(st, CostModelCfg, cm, K("cost_model"), fields=["step_jitter"])
        form(st, Efficiency, cm.setdefault("efficiency", {}), K("cost_model.efficiency"))
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
        st.caption(f"{have[which].name}; made by `python -m planner.cli validate --json` on the "
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
    except InputError as e:
        st.error(str(e))
        return
    if trace is not None:
        doc = with_trace(doc, trace.getvalue())
    doc = sidebar(doc, "" if uploaded is None and source == "defaults" and trace is None else
                  (uploaded.name if uploaded is not None else source) + (f"+{trace.name}" if trace else ""))
    try:
        sc = scenario_from_dict(copy.deepcopy(doc), base_dir=SCENARIO_DIR)
    except InputError as e:
        for field, msg in e.problems:
            st.error(f"**{field or 'scenario'}**: {msg}")
        return
    from planner.cost import build_cost_model
    st.caption(f"{sc.name}: {sc.description or sc.model_spec().name} -- cost model: "
               f"{build_cost_model(sc).description}")
    doc_json = json.dumps(doc, sort_keys=True, default=str)

    st.subheader("Analytic sizing")
    rep = run_sizing(doc_json)
    if rep.get("evidence"):
        from planner.evidence import describe
        st.caption(f"evidence: {describe(rep['evidence'])}")
    c = st.columns(4)
    c[0].metric("instances needed at peak", rep["needed"]["with_sla_at_peak"] or "unreachable")
    c[1].metric("capacity of this fleet (tok/s)", f"{rep['fleet_given']['capacity_tok_s']:,.0f}")
    c[2].metric("fleet $/hour", f"{rep['cost']['fleet_per_hour']:,.2f}")
    per = rep["cost"]["per_million_tokens_at_avg"]
    c[3].metric("$ per 1M tokens", f"{per:.3f}" if per else "-")
    if rep.get("margin"):
        from planner.sizing import describe_margin, margin_warns
        (st.warning if margin_warns(rep["margin"]) else st.caption)("margin: " + describe_margin(rep["margin"]))
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
