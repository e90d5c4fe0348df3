"""Writes planner/data/lengths.yaml: the length presets of public datasets, as quantile tables.

    python -m lab.tools.length_presets --traces ../shared/traces > planner/data/lengths.yaml

Quantiles of the traces the project was given (whole files, not the test slices) are computed here; a preset
known only by published means is written as a lognormal with its source and the spread stated as assumed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from contract.traces import load_trace

PCTS = [0, 1, 2.5, 5, *range(10, 100, 10), 95, 97.5, 99, 99.5, 99.9, 100]


def table(x: np.ndarray) -> list[list]:
    q = np.percentile(np.maximum(x, 1), PCTS, method="inverted_cdf")
    return [[float(p), int(v)] for p, v in zip(PCTS, q)]


def from_trace(path: Path, source: str) -> dict:
    t = load_trace(str(path))
    return {"source": source,
            "stats": {"requests": int(len(t.input_tokens)), "input_mean": round(float(t.input_tokens.mean()), 1),
                      "output_mean": round(float(t.output_tokens.mean()), 1)},
            "input_tokens": {"dist": "quantiles", "quantiles": table(t.input_tokens)},
            "output_tokens": {"dist": "quantiles", "quantiles": table(t.output_tokens)}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=Path, required=True)
    a = ap.parse_args()
    azure = "Azure LLM inference trace 2023 (Azure Public Dataset, CC-BY-4.0), whole hour; quantiles computed here"
    presets = {
        "azure-code": from_trace(a.traces / "AzureLLMInferenceTrace_code.csv", azure + " (code completion)"),
        "azure-conversation": from_trace(a.traces / "AzureLLMInferenceTrace_conv.csv", azure + " (conversation)"),
        "mooncake-conversation": from_trace(a.traces / "mooncake_conversation_trace.jsonl",
                                            "Mooncake FAST'25 conversation trace (Apache-2.0), whole hour; quantiles "
                                            "computed here"),
        "sharegpt-conversations": from_trace(a.traces / "sharegpt_lengths_llama2_tokenizer.csv",
                                             "ShareGPT whole conversations as Sarathi-Serve processed them (Llama-2 "
                                             "tokenizer; Apache-2.0); quantiles computed here"),
        # what vLLM's and SGLang's benchmark clients sample from ShareGPT (first turn, prompt <= 1024, prompt +
        # output <= 2048): only means are published for it
        "sharegpt": {"source": "vLLM `vllm bench serve --dataset-name sharegpt`, 1000 prompts, Llama-3.1 tokenizer: "
                               "229,711 input and 203,068 output tokens (vllm-project/vllm pull request 18566, "
                               "2025-05-22); the spread (CV 1.0) is assumed, no published quantiles were found",
                     "stats": {"requests": 1000, "input_mean": 229.7, "output_mean": 203.1},
                     "input_tokens": {"dist": "lognormal", "mean": 229.7, "cv": 1.0, "max": 1024},
                     "output_tokens": {"dist": "lognormal", "mean": 203.1, "cv": 1.0, "max": 1024}},
    }
    print("# Length presets of public datasets: `workload.lengths: NAME`. Written by lab/tools/length_presets.py.")
    print(yaml.safe_dump({"presets": presets}, sort_keys=False, width=120))


if __name__ == "__main__":
    main()
