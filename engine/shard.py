"""One rank's part of an engine: its model shard (built, quantized, with kernels when asked), its KV pool and
its model runner. Rank 0 builds it inside the LLM; under tensor parallelism every other rank builds its own in a
worker process (engine/tp.py), collectively: the ranks agree on one KV pool size."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist

from contract.catalog import ModelSpec
from engine.config import EngineConfig
from engine.kernel_hooks import attach
from engine.model import Llama
from engine.model_runner import ModelRunner
from engine.quant import quantize_model
from engine.weights import build_model
from kernels.runtime import KernelsUnavailable

DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
          "float32": torch.float32, "fp32": torch.float32, "float64": torch.float64}
KV_DTYPES = {"fp8": torch.float8_e4m3fn}


@dataclass
class Shard:
    model: Llama
    runner: ModelRunner
    num_blocks: int
    quant_report: dict | None
    kernels_active: bool
    graphs_at_start: int


def kv_pool_blocks(cfg: EngineConfig, spec: ModelSpec, model: Llama, dev: torch.device) -> int:
    """vLLM's rule: total memory x utilization, minus what is in use, minus an activation reserve."""
    per_block = ModelRunner.kv_bytes_per_block(model, cfg.block_size, kv_dtype_bytes(cfg, model))
    if dev.type != "cuda":
        return max(2, (256 << 20) // per_block)
    torch.cuda.synchronize(dev)
    torch.cuda.empty_cache()  # blocks the allocator caches but no tensor holds are free for the pool
    free, total = torch.cuda.mem_get_info(dev)
    used = total - free
    reserve = cfg.max_num_batched_tokens * (4 * spec.hidden_size + 3 * spec.intermediate_size) * 2 \
        + cfg.max_num_seqs * spec.vocab_size * 4 * 2 + (1 << 30)
    budget = total * cfg.gpu_memory_utilization - used - reserve
    if budget < 2 * per_block:
        raise RuntimeError(f"no room for a KV cache: {used / 2**30:.1f} GiB in use of {total / 2**30:.1f} GiB "
                           f"at gpu_memory_utilization={cfg.gpu_memory_utilization}")
    return int(budget // per_block)


def kv_dtype_bytes(cfg: EngineConfig, model: Llama) -> int:
    return 1 if cfg.kv_cache_dtype == "fp8" else model.embed.weight.element_size()


def build_shard(cfg: EngineConfig, spec: ModelSpec, rank: int, dev: torch.device, model: Llama | None = None,
                max_model_len: int | None = None) -> Shard:
    tp = cfg.tensor_parallel_size
    if model is None:
        model = build_model(spec, checkpoint=cfg.checkpoint, seed=cfg.seed, dtype=DTYPES[cfg.dtype], device=dev,
                            rank=rank, tp=tp)
    report = quantize_model(model, cfg.quantization) if cfg.quantization in ("int8", "fp8") else None
    active = False
    if cfg.kernels:
        try:
            attach(model)
            active = True
        except KernelsUnavailable as e:  # the PyTorch path serves the same model, only slower
            warnings.warn(f"kernels requested but unavailable, running the PyTorch path: {e}")
    blocks = cfg.num_blocks or kv_pool_blocks(cfg, spec, model, dev)
    if tp > 1:  # one pool size for every rank: the smallest any of them has room for
        t = torch.tensor([blocks], dtype=torch.int64, device=dev if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        blocks = int(t.item())
    runner = ModelRunner(model, blocks, cfg.block_size, cuda_graphs=cfg.cuda_graphs,
                         max_graph_batch=min(512, cfg.max_num_seqs), fuse=cfg.fuse_elementwise,
                         pad_tokens_to=cfg.pad_tokens_to, kv_dtype=KV_DTYPES.get(cfg.kv_cache_dtype),
                         piecewise_tokens=cfg.max_num_batched_tokens if cfg.piecewise_graphs else None,
                         piecewise_uncaptured=cfg.piecewise_uncaptured)
    graphs = 0
    # with the paged kernel, table width costs nothing but its bytes, so doubling widths can all be captured
    # now; the PyTorch path gathers the whole width, so it keeps narrow widths, captured when first seen
    if cfg.capture_graphs_at_start and active and runner.use_graphs and max_model_len:
        graphs = runner.capture_decode_graphs(cfg.max_num_seqs, -(-max_model_len // cfg.block_size))
    return Shard(model, runner, blocks, report, active, graphs)
