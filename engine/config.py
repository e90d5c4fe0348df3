"""The engine's configuration (the contract's serving knobs plus how this engine runs), and its model
architecture: a catalog ModelSpec, or a Hugging Face config.json. Nothing here needs torch, so a command line
can check its options before it builds a model."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from contract.catalog import MODELS, ModelSpec
from contract.errors import InputError
from contract.knobs import ServingKnobs


class EngineConfig(ServingKnobs):
    """The engine's configuration: the serving knobs the planner plans with, plus how this engine runs."""

    model: str = Field("llama-3.2-1b", description="catalog name or local HF checkpoint directory")
    checkpoint: str | None = None
    dtype: Literal["bfloat16", "bf16", "float16", "fp16", "float32", "fp32", "float64"] = "bfloat16"
    device: str | None = None
    max_model_len: int | None = Field(8192, ge=1, description="longest prompt + output accepted")
    num_blocks: int | None = Field(None, ge=2, description="KV blocks; default: sized from free GPU memory")
    cuda_graphs: bool = True
    piecewise_graphs: bool = Field(True, description="steps with a prefill: CUDA graphs around eager attention")
    piecewise_uncaptured: bool = Field(False, description="run the piecewise pieces without capturing them, on "
                                       "any device (tests of that path on the CPU)")
    fuse_elementwise: bool = Field(False, description="torch.compile'd RMSNorm / RoPE / SiLU*mul (opt-in)")
    kernels: bool = Field(False, description="use the CuPy kernels where available")
    pad_tokens_to: int | None = Field(None, ge=1, description="eager-step token padding (default 64 on CUDA)")
    capture_graphs_at_start: bool = Field(True, description="every decode graph before serving; kernels only")
    async_decode: bool = Field(False, description="launch the next decode step before reading this one's tokens")
    seed: int = Field(0, ge=0)
    tp_timeout_s: float = Field(60.0, gt=0, description="a collective waiting longer on a rank fails")

    @model_validator(mode="after")
    def _supported(self) -> "EngineConfig":
        if self.quantization == "int4":
            raise ValueError("quantization 'int4' is not supported by the engine (bf16, fp16, fp8 or int8)")
        if self.async_decode and self.tensor_parallel_size > 1:
            raise ValueError("async_decode runs on one GPU only (tensor_parallel_size 1)")
        return self


def check_model(name_or_path: str, field: str = "--model") -> ModelSpec:
    """The architecture a catalog name or a checkpoint folder names, or an InputError saying which exists."""
    if name_or_path in MODELS:
        return MODELS[name_or_path]
    p = Path(name_or_path)
    if not (p / "config.json").is_file() and not (p.is_file() and p.suffix == ".json"):
        raise InputError([(field, f"'{name_or_path}' is neither a catalog model ({', '.join(sorted(MODELS))}) nor "
                                  f"a checkpoint folder with a config.json")])
    try:
        return from_hf_config(p)
    except (KeyError, ValueError, json.JSONDecodeError) as e:
        raise InputError([(field, f"{p}: not a Llama-style config.json ({e})")])


def from_hf_config(path: str | Path) -> ModelSpec:
    """Read a local checkpoint's config.json into the same ModelSpec the planner uses."""
    cfg = json.loads(Path(path, "config.json").read_text() if Path(path).is_dir() else Path(path).read_text())
    return ModelSpec(
        name=cfg.get("_name_or_path") or Path(path).name or "hf-model",
        num_layers=cfg["num_hidden_layers"], hidden_size=cfg["hidden_size"],
        num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
        head_dim=cfg.get("head_dim"), intermediate_size=cfg["intermediate_size"], vocab_size=cfg["vocab_size"],
        max_position_embeddings=cfg.get("max_position_embeddings", 4096),
        rope_theta=cfg.get("rope_theta", 10000.0), rope_scaling=cfg.get("rope_scaling"),
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-5), tie_word_embeddings=cfg.get("tie_word_embeddings", False),
        source=str(path))


def to_hf_config(spec: ModelSpec) -> dict:
    """The config.json a transformers LlamaForCausalLM needs for this architecture."""
    d = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": spec.hidden_size,
         "intermediate_size": spec.intermediate_size, "num_hidden_layers": spec.num_layers,
         "num_attention_heads": spec.num_attention_heads, "num_key_value_heads": spec.num_key_value_heads,
         "head_dim": spec.hd, "vocab_size": spec.vocab_size, "max_position_embeddings": spec.max_position_embeddings,
         "rope_theta": spec.rope_theta, "rms_norm_eps": spec.rms_norm_eps, "hidden_act": "silu",
         "tie_word_embeddings": spec.tie_word_embeddings, "attention_bias": False, "mlp_bias": False,
         "bos_token_id": 1, "eos_token_id": 2}
    if spec.rope_scaling:
        d["rope_scaling"] = dict(spec.rope_scaling)
    return d


def tiny(vocab: int = 512, layers: int = 2, hidden: int = 128, heads: int = 4, kv_heads: int = 2,
         ffn: int = 256, rope_scaling: dict | None = None) -> ModelSpec:
    """A small Llama-3-style shape for CPU tests."""
    return ModelSpec(name="tiny", num_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                     num_key_value_heads=kv_heads, intermediate_size=ffn, vocab_size=vocab,
                     max_position_embeddings=2048, rope_theta=500000.0, rope_scaling=rope_scaling)


def resolve(name_or_path: str) -> ModelSpec:
    if name_or_path in MODELS:
        return MODELS[name_or_path]
    return from_hf_config(name_or_path)
