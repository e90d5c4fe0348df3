"""The dashboard through Streamlit's AppTest (no browser): every panel, a knob, a bad value, a comparison."""
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
    at.sidebar.number_input(key="tp").set_value(3).run()
    assert not at.exception
    assert any("fleet.tensor_parallel_size" in e.value for e in at.error)


def test_run_a_simulation_then_change_a_knob_and_compare():
    at = app()
    at.sidebar.number_input(key="duration").set_value(120.0).run()
    at.button(key="run").click().run()
    assert not at.exception
    assert any(m.label == "P95 E2E (s)" for m in at.metric)
    assert len(at.get("plotly_chart")) == 2
    at.button(key="pin").click().run()
    at.sidebar.slider(key="replicas").set_value(4).run()
    at.button(key="run").click().run()
    assert not at.exception
    compare = [d for d in at.dataframe if "pinned" in list(d.value.columns)]
    assert compare and list(compare[0].value["metric"])[:2] == ["P50 TTFT (s)", "P95 TTFT (s)"]


def test_calibrated_profile_can_be_chosen():
    at = app()
    opts = at.sidebar.selectbox(key="costmodel").options
    if len(opts) < 2:
        pytest.skip("no committed profile")
    at.sidebar.selectbox(key="costmodel").select(opts[1]).run()
    assert not at.exception
    assert any("calibrated" in c.value for c in at.caption)


def test_loading_a_scenario_shows_its_own_knobs():
    at = app()
    at.sidebar.slider(key="replicas").set_value(3).run()
    at.sidebar.selectbox(key="source").select("seed-multi-tenant").run()
    assert at.sidebar.number_input(key="seed-multi-tenant:tp").value == 4
    assert at.sidebar.slider(key="seed-multi-tenant:replicas").value == 6
