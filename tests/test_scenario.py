"""The scenario schema: built-ins load, and every kind of bad input names its field and exits 2."""
import json

import pytest
import yaml
from typer.testing import CliRunner

from contract.errors import InputError
from planner.cli import app
from planner.scenario import load_scenario, scenario_from_dict
from tests.conftest import ROOT

runner = CliRunner()
BUILTIN = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", BUILTIN, ids=lambda p: p.stem)
def test_builtin_scenarios_load(path):
    sc = load_scenario(path)
    assert sc.model_spec().num_params > 1e9


def test_defaults_fill_everything_but_the_question(base):
    sc = scenario_from_dict(base)
    assert sc.fleet.block_size == 16 and sc.fleet.max_num_seqs == 256 and sc.fleet.enable_chunked_prefill
    with pytest.raises(InputError) as e:
        scenario_from_dict({"fleet": {"gpu": "H100-SXM"}})
    assert "model" in str(e.value) and "workload" in str(e.value)


BAD = [
    ("unknown field", {"fleet": {"gpu": "H100-SXM", "max_num_seq": 4}}, "fleet.max_num_seq", "Extra inputs"),
    ("negative rate", {"workload": {"arrival": {"process": "poisson", "rate": -3}}}, "workload.arrival.rate",
     "greater than 0"),
    ("tp does not divide heads", {"fleet": {"gpu": "H100-SXM", "tensor_parallel_size": 3}},
     "fleet.tensor_parallel_size", "does not divide the 32 attention heads"),
    ("unknown gpu", {"fleet": {"gpu": "Z100"}}, "fleet.gpu", "unknown GPU 'Z100'"),
    ("unknown model", {"model": "llama-9"}, "model", "unknown model 'llama-9'"),
    ("does not fit", {"model": "llama-3.1-405b", "fleet": {"gpu": "A100-80GB", "tensor_parallel_size": 2}},
     "fleet.tensor_parallel_size", "does not fit"),
    ("warmup beyond duration", {"sim": {"duration_s": 10, "warmup_s": 20}}, "sim", "must be below duration_s"),
    ("poisson without rate", {"workload": {"arrival": {"process": "poisson"}}}, "workload.arrival", "needs rate"),
    ("uniform inverted", {"workload": {"arrival": {"process": "poisson", "rate": 1},
                                       "input_tokens": {"dist": "uniform", "low": 9, "high": 3}}},
     "workload.input_tokens", "above high"),
]


@pytest.mark.parametrize("name,patch,field,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_field_and_reason(tmp_path, base, name, patch, field, reason):
    doc = {**base, **patch}
    if "fleet" in patch and "gpu" not in patch["fleet"]:
        doc["fleet"] = {**base["fleet"], **patch["fleet"]}
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(doc))
    res = runner.invoke(app, ["size", str(p)])
    assert res.exit_code == 2, res.output
    assert field in res.output and reason in res.output, res.output
    assert "Traceback" not in res.output


def test_unparseable_yaml_and_missing_file(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("model: [unclosed\n")
    res = runner.invoke(app, ["size", str(p)])
    assert res.exit_code == 2 and "not valid YAML" in res.output
    res = runner.invoke(app, ["size", str(tmp_path / "none.yaml")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_json_scenarios_load(tmp_path, base):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(base))
    assert load_scenario(p).fleet.gpu == "H100-SXM"


def test_user_catalog_entries_are_usable(base):
    base["catalog"] = {"gpus": [{"name": "MyGPU", "memory_gib": 96, "hbm_bandwidth_gbps": 4000, "bf16_tflops": 1000,
                                 "interconnect_gbps": 400, "price_per_hour": 2.5}],
                       "models": [{"name": "tiny", "num_layers": 2, "hidden_size": 256, "num_attention_heads": 4,
                                   "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 1000}]}
    base["fleet"] = {"gpu": "MyGPU"}
    base["model"] = "tiny"
    sc = scenario_from_dict(base)
    assert sc.gpu_spec().memory_gib == 96 and sc.model_spec().num_layers == 2


def test_tenants_must_name_a_defined_tier(base):
    base["workload"] = {"tenants": [{"name": "a", "tier": "gold", "arrival": {"process": "poisson", "rate": 1}}]}
    with pytest.raises(InputError, match="workload.tenants.0.tier: unknown tier 'gold'"):
        scenario_from_dict(base)
