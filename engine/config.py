"""Model architecture for the engine: the planner's catalog ModelSpec, or a Hugging Face config.json."""
from __future__ import annotations

import json
from pathlib import Path

from contract.catalog import MODELS, ModelSpec


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
