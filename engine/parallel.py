"""Tensor parallelism over torch.distributed (NCCL on GPUs, gloo on CPUs for tests).

Column-parallel QKV and gate/up, row-parallel O and down with one all-reduce each per layer,
vocabulary-parallel embedding and LM head; KV heads split across ranks. Process-group timeouts and
asynchronous error handling are set at init, so a rank that dies or stalls makes the others fail within
the timeout instead of hanging (seed 004). NVLink multicast stays off (NCCL_NVLS_ENABLE=0).
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import tempfile
import time
from datetime import timedelta

import torch
import torch.distributed as dist


def init(rank: int, world_size: int, backend: str = "nccl", timeout_s: float = 60.0,
         init_method: str | None = None) -> None:
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s),
                            init_method=init_method or "env://")


def all_reduce(x: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(x)
    return x


def gather_vocab(local_logits: torch.Tensor, tp: int) -> torch.Tensor:
    """Each rank holds a contiguous vocabulary shard of the logits: concatenate them on every rank."""
    parts = [torch.empty_like(local_logits) for _ in range(tp)]
    dist.all_gather(parts, local_logits.contiguous())
    return torch.cat(parts, dim=-1)


def shard_tensor(name: str, t: torch.Tensor, spec, rank: int, tp: int) -> torch.Tensor:
    """One of our (fused) parameters, full -> this rank's shard. Norms are replicated."""
    def rows(x):
        return x.chunk(tp, dim=0)[rank]
    q, kv, ff = spec.q_dim, spec.kv_dim, spec.intermediate_size
    if name.endswith("attn.qkv.weight"):
        out = torch.cat([rows(t[:q]), rows(t[q:q + kv]), rows(t[q + kv:])], 0)
    elif name.endswith("mlp.gate_up.weight"):
        out = torch.cat([rows(t[:ff]), rows(t[ff:])], 0)
    elif name.endswith("attn.o.weight") or name.endswith("mlp.down.weight"):
        out = t.chunk(tp, dim=1)[rank]
    elif name in ("embed.weight", "lm_head.weight"):
        out = rows(t)
    else:
        out = t
    return out.contiguous()


def shard_state(full: dict, spec, rank: int, tp: int) -> dict:
    """Our (fused) parameter names, full -> this rank's shard. Norms are replicated."""
    return {name: shard_tensor(name, t, spec, rank, tp) for name, t in full.items()}


def measure_allreduce(sizes=tuple(4096 * 4 ** i for i in range(8)) + (256 << 20,), reps: int = 10,
                      dtype=torch.bfloat16, inner: int = 1, graph: bool = False) -> list[dict]:
    """Median seconds of one all-reduce per message size (bytes), on this process group: the calibration
    profile's `allreduce` table. Call on every rank; every rank gets the same rows (rank 0's timings).
    inner: all-reduces back to back per timed sample (divided out), as a serving step issues them -- one
    alone after a barrier also times the ranks' launch skew (2x H200: 36 us at 4 KiB alone).
    graph: the `inner` all-reduces are captured in one CUDA graph and the graph is replayed, as the engine's
    decode and piecewise prefill graphs issue them; eager calls are bound by the host's launch path instead
    (2x H200: 34 us per eager call at decode sizes, about 13 us per call implied inside graphs)."""
    tp = dist.get_world_size()
    cuda = dist.get_backend() == "nccl"
    if graph and not cuda:
        raise ValueError("all-reduces are captured in CUDA graphs only under NCCL")
    dev = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    rows = []
    elem = torch.tensor([], dtype=dtype).element_size()
    for nbytes in sizes:
        x = torch.ones(max(1, nbytes // elem), dtype=dtype, device=dev)
        for _ in range(2):
            dist.all_reduce(x)
        def eager(x=x):  # `inner` calls, each launched from the host
            for _ in range(inner):
                dist.all_reduce(x)
        run = eager
        if graph:
            torch.cuda.synchronize()
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for _ in range(inner):
                    dist.all_reduce(x)
            run = g.replay
            run()
            torch.cuda.synchronize()
        ts = []
        for _ in range(reps):
            dist.barrier()
            if cuda:
                torch.cuda.synchronize()
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                run()
                e.record()
                e.synchronize()
                ts.append(s.elapsed_time(e) / 1e3 / inner)
            else:
                t = time.perf_counter()
                run()
                ts.append((time.perf_counter() - t) / inner)
        t = torch.tensor([statistics.median(ts)], dtype=torch.float64, device=dev)  # NCCL: on the GPU
        dist.broadcast(t, 0)
        rows.append({"bytes": int(x.numel() * elem), "tp": tp, "seconds": float(t.item()), "graph": graph})
        if graph:
            del g
        del x
    return rows


def free_port() -> int:
    """A free TCP port on localhost for a process group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _allreduce_worker(rank: int, world: int, port: int, backend: str, sizes, reps: int, inner: int,
                      out: str, graph: bool = False) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    init(rank, world, backend=backend, timeout_s=120)
    dtype = torch.bfloat16 if backend == "nccl" else torch.float32
    rows = measure_allreduce(sizes=sizes, reps=reps, dtype=dtype, inner=inner)
    if graph:
        rows += measure_allreduce(sizes=sizes, reps=reps, dtype=dtype, inner=inner, graph=True)
    if rank == 0:
        with open(out, "w") as fh:
            json.dump(rows, fh)
    dist.barrier()
    dist.destroy_process_group()


def allreduce_table(tps=None, backend: str = "nccl", sizes=tuple(4096 * 4 ** i for i in range(8)) + (256 << 20,),
                    reps: int = 10, inner: int = 20, graph: bool | None = None) -> list[dict]:
    """The calibration profile's all-reduce rows for each TP degree in `tps` (default: 2, 4, 8 up to the GPUs
    present), each measured in its own group of processes on the first `tp` GPUs (NCCL; gloo on CPUs): eager
    rows, and under NCCL (graph None or True) rows timed inside a CUDA graph too."""
    graph = (backend == "nccl") if graph is None else graph
    import torch.multiprocessing as mp
    n = torch.cuda.device_count() if backend == "nccl" else 2
    tps = tps or [t for t in (2, 4, 8) if t <= n]
    if backend == "nccl" and any(t > n for t in tps):
        raise ValueError(f"TP degrees {tps} need more GPUs than the {n} present")
    rows = []
    for tp in tps:
        with tempfile.TemporaryDirectory() as d:
            out = f"{d}/allreduce.json"
            mp.spawn(_allreduce_worker, args=(tp, free_port(), backend, sizes, reps, inner, out, graph), nprocs=tp,
                     join=True)
            with open(out) as fh:
                rows += json.load(fh)
    return rows
