"""Memory model: weights, KV cache and workspace per GPU, and what that leaves for KV blocks.

Pure functions of (model, GPU, fleet knobs). The quantized formats carry their
scales: INT8 and INT4 are group-wise (group 128) with one fp16 scale per group
(INT4 also a 4-bit zero point, as AWQ/GPTQ store it); FP8 is per-channel.
Embeddings, LM head and norms stay in 16-bit, as vLLM keeps them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from contract.catalog import GPUSpec, ModelSpec

GROUP_SIZE = 128

# bytes per quantizable weight, scales included
WEIGHT_BYTES: dict[str, float] = {
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0 + 2.0 / GROUP_SIZE,
    "int4": 0.5 + (2.0 + 0.5) / GROUP_SIZE,
}

KV_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1}


def kv_dtype_bytes(kv_cache_dtype: str) -> int:
    return KV_BYTES["bf16" if kv_cache_dtype == "auto" else kv_cache_dtype]


def kv_heads_per_gpu(model: ModelSpec, tp: int) -> int:
    """KV heads each rank stores: split when TP divides them, replicated when TP exceeds them."""
    return max(1, model.num_key_value_heads // tp)


def kv_bytes_per_token(model: ModelSpec, kv_cache_dtype: str = "auto", tp: int = 1) -> int:
    """K and V for one token across all layers, on one GPU of a TP group."""
    return 2 * model.num_layers * kv_heads_per_gpu(model, tp) * model.hd * kv_dtype_bytes(kv_cache_dtype)


def weight_bytes_per_gpu(model: ModelSpec, quantization: str, tp: int = 1) -> float:
    linear = model.num_layers * model.linear_params_per_layer * WEIGHT_BYTES[quantization] / tp
    emb = model.embedding_params * 2.0 / tp  # vocab-parallel embedding and LM head
    return linear + emb + model.norm_params * 2.0


def activation_bytes(model: ModelSpec, tp: int, max_num_batched_tokens: int, max_num_seqs: int) -> float:
    """Peak activation memory of one forward pass (vLLM profiles this with a dummy max-size batch)."""
    per_token = (2 * model.hidden_size + (model.q_dim + 2 * model.kv_dim) / tp + 2 * model.intermediate_size / tp) * 2
    logits = min(max_num_seqs, max_num_batched_tokens) * model.vocab_size / tp * 4
    return max_num_batched_tokens * per_token + logits


@dataclass(frozen=True)
class MemoryPlan:
    usable_bytes: float
    weight_bytes_per_gpu: float
    workspace_bytes: float
    kv_budget_bytes: float
    kv_bytes_per_token_gpu: int
    block_size: int
    num_blocks: int
    max_seq_blocks: int
    min_tp_to_fit: int | None

    @property
    def kv_tokens(self) -> int:
        return self.num_blocks * self.block_size

    def blocks_for(self, tokens: int) -> int:
        return math.ceil(tokens / self.block_size)

    def sequences_that_fit(self, lengths: list[int]) -> int:
        """How many sequences of this length mix (cycled in order) fit in the paged KV pool."""
        if not lengths:
            return 0
        free, n = self.num_blocks, 0
        while True:
            need = self.blocks_for(lengths[n % len(lengths)])
            if need > free:
                return n
            free -= need
            n += 1

    def contiguous_sequences(self, max_len: int) -> int:
        """Sequences that fit when each reserves `max_len` tokens up front (pre-paging allocators)."""
        return int(self.kv_budget_bytes // (max_len * self.kv_bytes_per_token_gpu))


def plan(model: ModelSpec, gpu: GPUSpec, *, tp: int, quantization: str, kv_cache_dtype: str,
         gpu_memory_utilization: float, block_size: int, max_num_batched_tokens: int, max_num_seqs: int,
         max_model_len: int, workspace_gib: float) -> MemoryPlan:
    usable = gpu.memory_gib * 2**30 * gpu_memory_utilization
    workspace = workspace_gib * 2**30 + activation_bytes(model, tp, max_num_batched_tokens, max_num_seqs)
    w = weight_bytes_per_gpu(model, quantization, tp)
    budget = usable - w - workspace
    kvt = kv_bytes_per_token(model, kv_cache_dtype, tp)
    blocks = max(0, int(budget // (kvt * block_size)))
    min_tp = next((t for t in (1, 2, 4, 8) if model.num_attention_heads % t == 0 and
                   usable - weight_bytes_per_gpu(model, quantization, t)
                   - workspace_gib * 2**30 - activation_bytes(model, t, max_num_batched_tokens, max_num_seqs) > 0),
                  None)
    return MemoryPlan(usable, w, workspace, budget, kvt, block_size, blocks,
                      math.ceil(max_model_len / block_size), min_tp)


def memory_plan(sc) -> MemoryPlan:
    """The plan for a scenario's fleet (one replica's GPUs)."""
    f = sc.fleet
    return plan(sc.model_spec(), sc.gpu_spec(), tp=f.tensor_parallel_size, quantization=f.quantization,
                kv_cache_dtype=f.kv_cache_dtype, gpu_memory_utilization=f.gpu_memory_utilization,
                block_size=f.block_size, max_num_batched_tokens=f.max_num_batched_tokens,
                max_num_seqs=f.max_num_seqs, max_model_len=sc.max_model_len,
                workspace_gib=sc.cost_model.efficiency.workspace_gib)
