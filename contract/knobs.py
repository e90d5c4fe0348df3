"""`ServingKnobs`: every engine knob a plan turns, named as vLLM names them, defined once.

The scenario's fleet and the engine's config both inherit this model, so a knob's default, bounds,
options and description live here and nowhere else: the dashboard's widgets and the scenario reference
are generated from these fields.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Quantization = Literal["bf16", "fp16", "fp8", "int8", "int4"]
KvCacheDtype = Literal["auto", "bf16", "fp16", "fp8"]

# Blocks an admission must leave free, as a share of the pool (vLLM's watermark): a new prompt never takes
# the last blocks the running sequences need to decode. Shared by the engine's scheduler and the simulator.
WATERMARK = 0.01


class ServingKnobs(BaseModel):
    """One engine instance's serving configuration (vLLM's engine arguments of the same names)."""

    model_config = ConfigDict(extra="forbid")

    tensor_parallel_size: int = Field(1, ge=1, le=64, description="GPUs one instance shards the model over")
    quantization: Quantization = Field("bf16", description="weight format: bf16/fp16 unquantized; fp8 "
                                       "W8A8 (per-channel weights, per-token activations); int8 W8A16 and "
                                       "int4 W4A16, group 128")
    kv_cache_dtype: KvCacheDtype = Field("auto", description="KV cache storage: auto = the activation dtype; "
                                         "fp8 halves KV bytes")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="share of GPU memory the instance "
                                          "may use for weights, activations and the KV cache")
    max_num_seqs: int = Field(256, ge=1, le=65536, description="sequences in one batch at most")
    max_num_batched_tokens: int = Field(8192, ge=1, le=1048576, description="tokens one iteration may "
                                        "process (prompt chunks plus one per decoding sequence)")
    max_model_len: int | None = Field(None, ge=1, description="longest prompt + output accepted; default: "
                                      "the model's context")
    block_size: int = Field(16, ge=1, le=1024, description="tokens per paged KV block")
    enable_prefix_caching: bool = Field(True, description="reuse KV blocks of identical prompt prefixes")
    enable_chunked_prefill: bool = Field(True, description="split long prompts into chunks mixed with "
                                         "decodes; off: a prompt is prefilled whole in a step of its own")
