"""Model catalog: Llama-style decoder architectures.

Every figure comes from the model's published config.json (Hugging Face model
cards); parameter counts are derived from the architecture, never typed in, so
the memory model and the engine agree by construction.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ModelSpec(BaseModel):
    """A Llama-style decoder (RMSNorm, RoPE, SwiGLU, GQA). Users add their own under `catalog.models`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    num_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    head_dim: int | None = Field(default=None, gt=0, description="default hidden_size / num_attention_heads")
    intermediate_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    max_position_embeddings: int = Field(default=4096, gt=0)
    rope_theta: float = Field(default=10000.0, gt=0)
    rope_scaling: dict | None = None
    rms_norm_eps: float = Field(default=1e-5, gt=0)
    tie_word_embeddings: bool = False
    source: str = ""

    @model_validator(mode="after")
    def _heads_consistent(self) -> "ModelSpec":
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must divide by num_attention_heads when head_dim is not given")
        return self

    def tp_problem(self, tp: int) -> str | None:
        """Why tensor parallelism of degree `tp` cannot shard this model, or None: the query heads must split
        evenly, and the KV heads either split evenly or be replicated (TP a multiple of them)."""
        if tp < 1:
            return f"{tp} is not a tensor-parallel degree (at least 1)"
        if self.num_attention_heads % tp:
            return f"{tp} does not divide the {self.num_attention_heads} attention heads of {self.name}"
        if tp > 1 and self.num_key_value_heads % tp and tp % self.num_key_value_heads:
            return f"{tp} neither divides nor is a multiple of the {self.num_key_value_heads} KV heads of {self.name}"
        return None

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def q_dim(self) -> int:
        return self.num_attention_heads * self.hd

    @property
    def kv_dim(self) -> int:
        return self.num_key_value_heads * self.hd

    @property
    def linear_params_per_layer(self) -> int:
        """Weights of the seven projections of one layer (the quantizable part)."""
        h = self.hidden_size
        attn = h * self.q_dim + 2 * h * self.kv_dim + self.q_dim * h
        mlp = 3 * h * self.intermediate_size
        return attn + mlp

    @property
    def embedding_params(self) -> int:
        """Input embedding plus LM head (one matrix when tied)."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    @property
    def norm_params(self) -> int:
        return (2 * self.num_layers + 1) * self.hidden_size

    @property
    def num_params(self) -> int:
        return self.num_layers * self.linear_params_per_layer + self.embedding_params + self.norm_params


_LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192}


def _m(**kw) -> ModelSpec:
    return ModelSpec(**kw)


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in [
        # meta-llama/Llama-2-7b-hf config.json: 6.74B params.
        _m(name="llama-2-7b", num_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=32,
           intermediate_size=11008, vocab_size=32000, max_position_embeddings=4096,
           source="meta-llama/Llama-2-7b-hf config.json"),
        # meta-llama/Llama-2-70b-hf config.json: GQA with 8 KV heads, 69B params.
        _m(name="llama-2-70b", num_layers=80, hidden_size=8192, num_attention_heads=64, num_key_value_heads=8,
           intermediate_size=28672, vocab_size=32000, max_position_embeddings=4096,
           source="meta-llama/Llama-2-70b-hf config.json"),
        # meta-llama/Llama-3.1-8B config.json: 8.03B params, rope_theta 5e5 with llama3 scaling.
        _m(name="llama-3.1-8b", num_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8,
           intermediate_size=14336, vocab_size=128256, max_position_embeddings=131072, rope_theta=500000.0,
           rope_scaling=_LLAMA3_ROPE, source="meta-llama/Llama-3.1-8B config.json"),
        # meta-llama/Llama-3.1-70B config.json: 70.6B params.
        _m(name="llama-3.1-70b", num_layers=80, hidden_size=8192, num_attention_heads=64, num_key_value_heads=8,
           intermediate_size=28672, vocab_size=128256, max_position_embeddings=131072, rope_theta=500000.0,
           rope_scaling=_LLAMA3_ROPE, source="meta-llama/Llama-3.1-70B config.json"),
        # meta-llama/Llama-3.1-405B config.json: 126 layers, 405.9B params.
        _m(name="llama-3.1-405b", num_layers=126, hidden_size=16384, num_attention_heads=128,
           num_key_value_heads=8, intermediate_size=53248, vocab_size=128256, max_position_embeddings=131072,
           rope_theta=500000.0, rope_scaling=_LLAMA3_ROPE, source="meta-llama/Llama-3.1-405B config.json"),
        # Dense "GPT-4-scale" stand-in for the seed's ~220B model (GPT-4's architecture is not public):
        # 102 layers, hidden 12288, 96 query heads of 128, 8 KV heads (GQA), SwiGLU FFN 49152 (4x hidden),
        # Llama-3 vocabulary -> 221.3B parameters.
        _m(name="gpt4-scale-220b", num_layers=102, hidden_size=12288, num_attention_heads=96,
           num_key_value_heads=8, intermediate_size=49152, vocab_size=128256, max_position_embeddings=32768,
           rope_theta=500000.0, source="stand-in architecture defined here, sized to the seed's ~220B"),
        # mistralai/Mistral-7B-v0.1 config.json: 7.24B params, GQA 32/8; its 4096-token sliding window does not bind
        # at the lengths it is planned for here (prompt + output <= 4096).
        _m(name="mistral-7b", num_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8,
           intermediate_size=14336, vocab_size=32000, max_position_embeddings=32768,
           source="mistralai/Mistral-7B-v0.1 config.json (sliding window 4096 not modelled)"),
        # Qwen/Qwen2.5-7B-Instruct config.json dimensions (7.6B params). The engine serves it as a Llama-style
        # decoder (no QKV bias): a shape the calibration never saw, for held-out validation and planning.
        _m(name="qwen2.5-7b", num_layers=28, hidden_size=3584, num_attention_heads=28, num_key_value_heads=4,
           intermediate_size=18944, vocab_size=152064, max_position_embeddings=32768, rope_theta=1000000.0,
           rms_norm_eps=1e-6, source="Qwen/Qwen2.5-7B-Instruct config.json (served without QKV bias)"),
        # Qwen/Qwen2.5-3B-Instruct config.json dimensions (3.09B params; 36 layers, GQA 16/2, tied embeddings).
        _m(name="qwen2.5-3b", num_layers=36, hidden_size=2048, num_attention_heads=16, num_key_value_heads=2,
           intermediate_size=11008, vocab_size=151936, max_position_embeddings=32768, rope_theta=1000000.0,
           rms_norm_eps=1e-6, tie_word_embeddings=True,
           source="Qwen/Qwen2.5-3B-Instruct config.json (served without QKV bias)"),
        # Qwen/Qwen2.5-32B-Instruct config.json dimensions (32.8B params): 65 GB in bf16, two 80 GB GPUs.
        _m(name="qwen2.5-32b", num_layers=64, hidden_size=5120, num_attention_heads=40, num_key_value_heads=8,
           intermediate_size=27648, vocab_size=152064, max_position_embeddings=32768, rope_theta=1000000.0,
           rms_norm_eps=1e-6, source="Qwen/Qwen2.5-32B-Instruct config.json (served without QKV bias)"),
        # Small shapes the engine runs on one GPU for calibration (Llama-3.2-1B config.json; 1.24B params).
        _m(name="llama-3.2-1b", num_layers=16, hidden_size=2048, num_attention_heads=32, num_key_value_heads=8,
           intermediate_size=8192, vocab_size=128256, max_position_embeddings=131072, rope_theta=500000.0,
           rope_scaling={**_LLAMA3_ROPE, "factor": 32.0}, tie_word_embeddings=True,
           source="meta-llama/Llama-3.2-1B config.json"),
    ]
}
