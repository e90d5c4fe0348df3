"""An answer carries the published evidence for its stack on its GPU (planner/evidence.py)."""
import json

from typer.testing import CliRunner

from planner import evidence, public
from planner.cli import app


def test_stack_evidence_counts_held_out_rows_of_that_stack_on_that_gpu_only():
    rows = [{"stack": "vllm", "gpu": "H100-SXM", "split": "heldout", "err_preset": 0.05, "limit": 0.10,
             "metric": "output_tok_s"},
            {"stack": "vllm", "gpu": "H100-SXM", "split": "heldout5", "err_preset": -0.40, "limit": 0.10,
             "metric": "ttft_p50_ms"},
            {"stack": "vllm", "gpu": "H100-SXM", "split": "fit", "err_preset": 0.0, "limit": 0.10},     # fitted on
            {"stack": "vllm", "gpu": "H100-SXM", "split": "fit_tp", "err_preset": 0.0, "limit": 0.10},  # fitted on
            {"stack": "vllm", "gpu": "A100-80GB", "split": "heldout", "err_preset": 0.0, "limit": 0.10},  # other GPU
            {"stack": "sglang", "gpu": "H100-SXM", "split": "heldout", "err_preset": 0.0, "limit": 0.10},
            {"stack": "vllm", "gpu": "H100-SXM", "split": "heldout", "err_preset": None, "limit": 0.10}]  # no answer
    ev = evidence.stack_evidence("vllm", "H100-SXM", rows)
    assert ev == {"stack": "vllm", "gpu": "H100-SXM", "rows": 2, "within": 1, "median_abs_err": 0.225,
                  "sets": ["heldout", "heldout5"],
                  "capacity": {"rows": 1, "within": 1, "median_abs_err": 0.05},
                  "latency": {"rows": 1, "within": 0, "median_abs_err": 0.40}}
    text = evidence.describe(ev)
    assert "1 of 2 within limits" in text and "capacity 1 of 1 (median |error| 5%)" in text
    assert "latency 0 of 1 (median |error| 40%)" in text
    none = evidence.stack_evidence("trtllm", "L4", rows)
    assert none["rows"] == 0 and "unchecked" in evidence.describe(none)


def test_the_packaged_evaluation_covers_every_published_row():
    """Regenerated whenever rows are added: `planner stacks evaluate --json planner/data/public/evaluation.json`."""
    assert {r["id"] for r in evidence.evaluation_rows()} == {r.id for r in public.load_rows()}


def test_size_shows_the_evidence_for_the_answering_stack():
    res = CliRunner().invoke(app, ["size", "seed-100-a100", "--json"])
    assert res.exit_code == 0, res.output
    ev = json.loads(res.output)["evidence"]
    mine = [r for r in evidence.evaluation_rows()
            if r["stack"] == "vllm" and r["gpu"] == "A100-80GB" and r["split"] != "fit" and r["err_preset"] is not None]
    assert ev["stack"] == "vllm" and ev["gpu"] == "A100-80GB" and ev["rows"] == len(mine) > 0
    text = CliRunner().invoke(app, ["size", "seed-100-a100"]).output
    assert "evidence: published vllm results on A100-80GB" in text.replace("\n", " ")
