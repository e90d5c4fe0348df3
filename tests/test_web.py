"""The dashboard through Streamlit's AppTest (no browser): every panel, a knob, a bad value, a comparison."""
import json

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.conftest import ROOT  # noqa: E402

APP = str(ROOT / "web" / "app.py")


def app(**session):
    at = AppTest.from_file(APP, default_timeout=60)
    return at.run()


@pytest.mark.parametrize("name", ["defaults", "seed-100-a100", "seed-multi-tenant", "seed-optimize-cost"])
def test_each_builtin_scenario_loads_and_sizes(name):
    at = app()
    at.sidebar.selectbox(key="source").select(name).run()
    assert not at.exception
    assert any("instances needed" in m.label for m in at.metric)
    assert any("What binds" in m.value for m in at.markdown)


def test_a_bad_value_shows_an_inline_error_naming_the_field():
    at = app()
    at.sidebar.number_input(key="fleet.tensor_parallel_size").set_value(3).run()
    assert not at.exception
    assert any("fleet.tensor_parallel_size" in e.value for e in at.error)


def test_run_a_simulation_then_change_a_knob_and_compare():
    at = app()
    at.sidebar.number_input(key="sim.duration_s").set_value(120.0).run()
    before = len(at.get("plotly_chart"))  # the validation panel's heatmaps
    at.button(key="run").click().run()
    assert not at.exception
    assert any(m.label == "P95 E2E (s)" for m in at.metric)
    assert len(at.get("plotly_chart")) == before + 2  # latency CDFs and time series
    at.button(key="pin").click().run()
    at.sidebar.number_input(key="fleet.replicas").set_value(4).run()
    at.button(key="run").click().run()
    assert not at.exception
    compare = [d for d in at.dataframe if "pinned" in list(d.value.columns)]
    assert compare and list(compare[0].value["metric"])[:2] == ["P50 TTFT (s)", "P95 TTFT (s)"]


def test_cost_model_choices_are_the_stack_presets_the_roofline_and_the_calibrated_profiles():
    at = app()
    opts = at.sidebar.selectbox(key="cost_model").options
    stacks = [o for o in opts if o.startswith("stack: ")]
    assert opts[:len(stacks)] == stacks  # the presets first
    assert {"stack: sglang", "stack: sglang-0.4", "stack: vllm", "stack: trtllm"} <= set(stacks)
    assert "roofline" in opts and "calibrated: h100" in opts and "calibrated: h200" in opts
    assert at.sidebar.selectbox(key="cost_model").value == "stack: vllm"  # the default a new user gets
    at.sidebar.selectbox(key="cost_model").select("calibrated: h100").run()
    assert not at.exception
    assert any("calibrated" in c.value for c in at.caption)
    assert not any(c.value.startswith("evidence:") for c in at.caption)  # not a stack preset: no public evidence
    at.sidebar.selectbox(key="cost_model").select("stack: trtllm").run()
    assert not at.exception
    assert any("stack 'trtllm'" in c.value for c in at.caption)
    assert any(c.value.startswith("evidence: ") and "trtllm" in c.value for c in at.caption)  # beside the answer


def test_loading_a_scenario_shows_its_own_knobs():
    at = app()
    at.sidebar.number_input(key="fleet.replicas").set_value(3).run()
    at.sidebar.selectbox(key="source").select("seed-multi-tenant").run()
    assert at.sidebar.number_input(key="seed-multi-tenant:fleet.tensor_parallel_size").value == 4
    assert at.sidebar.number_input(key="seed-multi-tenant:fleet.replicas").value == 6


def test_an_uploaded_azure_trace_becomes_the_arrival_process():
    """AppTest cannot upload files, so the uploader's handler is tested directly."""
    import importlib.util

    from planner.scenario import scenario_from_dict
    from planner.sim import simulate
    spec = importlib.util.spec_from_file_location("web_app", APP)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # main() does not run outside a Streamlit runtime
    data = (ROOT / "lab" / "validation" / "traces" / "azure_conv_first60s.csv").read_bytes()
    doc = mod.with_trace(dict(mod.DEFAULT), data)
    sc = scenario_from_dict(doc)
    assert sc.workload.arrival.process == "trace"
    doc["sim"] = {"duration_s": 60, "warmup_s": 5}
    _, s = simulate(scenario_from_dict(doc))
    assert s["requests"] == 191


def test_router_client_and_autoscaling_knobs_are_reachable():
    at = app()
    assert at.sidebar.selectbox(key="router.policy").value == "least_outstanding_tokens"
    at.sidebar.checkbox(key="autoscaling.enabled").check().run()
    assert not at.exception
    assert at.sidebar.number_input(key="autoscaling.max_replicas").value >= 2


def test_tier_knobs_change_the_answer():
    at = app()
    at.sidebar.selectbox(key="source").select("seed-multi-tenant").run()
    before = [m.value for m in at.metric if m.label == "instances needed at peak"]
    at.sidebar.number_input(key="seed-multi-tenant:tiers.premium.sla.target_s").set_value(0.05).run()
    assert not at.exception
    after = [m.value for m in at.metric if m.label == "instances needed at peak"]
    assert before != after  # a 50 ms premium TTFT target needs more instances (or none will do)


def test_the_validation_panel_shows_the_committed_evidence_for_each_gpu():
    at = app()
    sel = at.selectbox(key="validation_set")
    assert not at.exception
    assert len(sel.options) == 2
    charts = len(at.get("plotly_chart"))
    assert charts >= 2  # calibrated and roofline heatmaps
    counts = [m.value for m in at.metric if "target cells" in m.label]
    assert counts[0] == "40 of 40" and counts[1].endswith("of 40")
    sel.select(sel.options[1]).run()
    assert not at.exception
    assert [m.value for m in at.metric if "target cells" in m.label][0] == "40 of 40"
    # each miss of the committed set gets a caption with its verdict (planner.validate.miss_lines; none on
    # these runs)
    from planner.validate import miss_lines
    rows = json.loads((ROOT / "planner" / "data" / "evidence" / "validate_h200_from_h100_profile.json").read_text())
    assert [c.value for c in at.caption if c.value.startswith("miss:")] == [f"miss: {x}" for x in miss_lines(rows, "calibrated")]



def test_every_serving_knob_of_the_schema_has_a_widget_with_its_default_and_description():
    """The dashboard's widgets come from the schema: each ServingKnobs field is in the sidebar, showing the
    schema's default and description (a knob added to the schema appears without editing the app)."""
    from contract.knobs import ServingKnobs
    at = app()
    widgets = {w.key: w for kind in ("number_input", "selectbox", "checkbox") for w in getattr(at.sidebar, kind)}
    for name, info in ServingKnobs.model_fields.items():
        key = f"fleet.{name}" if info.default is not None else f"fleet.{name}:set"
        assert key in widgets, name
        w = widgets[key]
        if info.default is not None:
            assert w.value == info.default, name
        assert info.description and info.description in (w.help or ""), name


def test_latency_cdf_labels_each_sla_target_without_stacking_the_labels():
    from web.app import cdf_figure
    slas = [{"tier": "premium", "percentile": 95, "metric": "ttft", "target_s": 0.5},
            {"tier": "standard", "percentile": 95, "metric": "ttft", "target_s": 0.6}]
    fig = cdf_figure({"ttft": [0.1, 0.2, 0.4], "tpot": [0.01], "e2e": [1.0, 2.0]}, slas)
    notes = fig.layout.annotations
    assert [a.x for a in notes] == [0.5, 0.6] and "premium" in notes[0].text and "standard" in notes[1].text
    assert notes[0].y != notes[1].y  # 0.1 s apart on a 20 s axis: side by side they would overprint
    assert len([s for s in fig.layout.shapes if s.line.dash == "dash"]) == 2
