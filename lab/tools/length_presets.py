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


def preset(source: str, ins: np.ndarray, outs: np.ndarray) -> dict:
    """A preset entry: its source, request count and means, and the quantile tables of both lengths."""
    return {"source": source,
            "stats": {"requests": int(len(ins)), "input_mean": round(float(ins.mean()), 1),
                      "output_mean": round(float(outs.mean()), 1)},
            "input_tokens": {"dist": "quantiles", "quantiles": table(ins)},
            "output_tokens": {"dist": "quantiles", "quantiles": table(outs)}}


def from_trace(path: Path, source: str) -> dict:
    t = load_trace(str(path))
    return preset(source, t.input_tokens, t.output_tokens)


# MLPerf's check on every valid llama2-70b run: generated tokens per sample within 10% of the reference
# implementation's 294.45 (mlcommons/inference language/llama2-70b, TOKENS_PER_SAMPLE); the dataset's own output
# lengths are those of the GPT-4 reference answers, which are shorter
MLPERF_LLAMA2_TOKENS_PER_SAMPLE = 294.45
OPENORCA_SAMPLE = Path(__file__).with_name("data") / "mlperf_openorca_length_sample.csv"


def _sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = np.loadtxt(path, delimiter=",", comments="#", skiprows=1 + sum(
        1 for line in path.read_text().splitlines() if line.startswith("#")), dtype=int)
    return d[:, 0], d[:, 1]


def mlperf_openorca(path: Path = OPENORCA_SAMPLE) -> dict:
    """The MLPerf llama2-70b (OpenOrca) workload from a block sample of its per-sample lengths: prompts as
    sampled; outputs with the sample's shape, scaled to the generated mean MLPerf requires of a valid run."""
    x, y = _sample(path)
    scale = MLPERF_LLAMA2_TOKENS_PER_SAMPLE / y.mean()
    out = np.clip(np.rint(y * scale), 1, 1024).astype(int)  # MLPerf generates at most 1,024 tokens
    return preset(f"MLPerf Inference llama2-70b dataset (OpenOrca, 24,576 samples): a block sample of {len(x)} "
                  "per-sample lengths (lab/tools/data/mlperf_openorca_length_sample.csv says which); prompt "
                  f"quantiles computed here; outputs are the sample's reference-answer lengths (mean "
                  f"{y.mean():.1f}) scaled by {scale:.3f} to the {MLPERF_LLAMA2_TOKENS_PER_SAMPLE} generated "
                  "tokens per sample MLPerf requires of a run (+-10%), at most 1,024", x, out)


ARXIV_SAMPLE = Path(__file__).with_name("data") / "arxiv_summarization_length_sample.csv"


def arxiv_summarization(path: Path = ARXIV_SAMPLE) -> dict:
    """Long prompts, short outputs: the arXiv summarization requests of Sarathi-Serve and Vidur, from a sample."""
    x, y = _sample(path)
    return preset(f"arXiv summarization as Vidur/Sarathi-Serve process it (Llama-2 tokenizer, prompt + output <= "
                  f"4,096; microsoft/vidur, MIT): a sample of {len(x)} requests (lab/tools/data/"
                  "arxiv_summarization_length_sample.csv says which); quantiles computed here", x, y)


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
        "mlperf-openorca": mlperf_openorca(),
        "arxiv-summarization": arxiv_summarization(),
    }
    print("# Length presets of public datasets: `workload.lengths: NAME`. Written by lab/tools/length_presets.py.")
    print(yaml.safe_dump({"presets": presets}, sort_keys=False, width=120))


if __name__ == "__main__":
    main()
