"""Tensor-parallel serving: one process per GPU, the scheduler on rank 0.

Rank 0 (the LLM's own process) schedules every iteration and plans it (engine/model_runner.py: a header and one
flat int64 array); it broadcasts the plan -- the sizes first, then one packed tensor -- and every rank runs the
same step on its shard: column-parallel QKV and gate/up, row-parallel O and down with an all-reduce each (inside
the decode CUDA graphs), the vocabulary-parallel LM head gathered. Only rank 0 samples.

A rank that dies is noticed by rank 0's supervisor within half a second: it says which rank and how, ends the
others, and -- if the main thread is stuck in a collective with the dead rank -- ends this process too, so no GPU
process is left behind. A worker whose rank 0 dies ends itself. Collectives time out after `timeout_s`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import torch
import torch.distributed as dist

from engine import parallel
from engine.config import EngineConfig, resolve
from engine.shard import build_shard
from kernels import runtime

STOP = -1  # the sizes a plan broadcast carries to end the workers


def _device(rank: int, backend: str) -> torch.device:
    return torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")


def _send(sizes: list[int], payload: np.ndarray | None, dev: torch.device) -> torch.Tensor | None:
    """Rank 0: broadcast the sizes, then the payload; returns the payload on this rank's device."""
    dist.broadcast(torch.tensor(sizes, dtype=torch.int64, device=dev), 0)
    if payload is None:
        return None
    buf = torch.from_numpy(payload).to(dev, non_blocking=True)
    dist.broadcast(buf, 0)
    return buf


def _recv(dev: torch.device) -> tuple[np.ndarray, torch.Tensor] | None:
    """Every other rank: the next plan's header (on the host) and flat inputs (on the device), or None: stop."""
    sizes = torch.empty(2, dtype=torch.int64, device=dev)
    dist.broadcast(sizes, 0)
    nh, nf = sizes.tolist()
    if nh == STOP:
        return None
    buf = torch.empty(nh + nf, dtype=torch.int64, device=dev)
    dist.broadcast(buf, 0)
    return buf[:nh].cpu().numpy(), buf[nh:]


def _watch_parent(parent: int) -> None:
    """A worker whose rank 0 is gone ends itself (it would otherwise wait in a collective until the timeout)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


def worker_main(rank: int, world: int, port: int, cfg_json: str, backend: str, parent: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), NCCL_NVLS_ENABLE="0")
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    cfg = EngineConfig.model_validate_json(cfg_json)
    dev = _device(rank, backend)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        if cfg.kernels:
            runtime.use_device(rank)
    else:
        torch.set_num_threads(1)
    parallel.init(rank, world, backend=backend, timeout_s=cfg.tp_timeout_s)
    spec = resolve(cfg.checkpoint or cfg.model)
    shard = build_shard(cfg, spec, rank, dev, max_model_len=cfg.max_model_len or spec.max_position_embeddings)
    dist.barrier()
    with torch.inference_mode():
        while (plan := _recv(dev)) is not None:
            shard.runner.execute(*plan)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    # no interpreter teardown and no destroy_process_group: with collectives captured in CUDA graphs, NCCL's
    # communicator teardown waited forever on the H200s (rank 0 does the same below)
    os._exit(0)


def _destroy_group() -> None:
    try:
        dist.destroy_process_group()
    except Exception:  # a group torn down by a dead peer: nothing left to release
        pass


# Set once rank 0 of an NCCL group ran in this process: whoever ends the process must skip the interpreter's
# teardown (see end_process), since the group may not have let go.
NCCL_RAN = {"rank0": False}


def end_process(code: int = 0) -> None:
    """End a process that was rank 0 of an NCCL group, once everything is written: without interpreter teardown,
    which with collectives captured in CUDA graphs waits in the communicators' destructors or aborts (the
    SIGABRT, exit 134, of `engine calibrate --extra --tp 2` after the profile was saved). Elsewhere it returns
    and the process ends normally."""
    if NCCL_RAN["rank0"]:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Worker:
    """A worker process of one rank (a subprocess running this module)."""

    def __init__(self, rank: int, proc: subprocess.Popen):
        self.rank, self.proc, self.pid = rank, proc, proc.pid

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self.proc.poll()

    def join(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass


class TensorParallel:
    """Rank 0's side of a tensor-parallel engine: its workers, the plan broadcast, their supervision."""

    def __init__(self, cfg: EngineConfig):
        self.world = cfg.tensor_parallel_size
        self.backend = "nccl" if torch.cuda.is_available() and (cfg.device or "cuda").startswith("cuda") else "gloo"
        if self.backend == "nccl" and torch.cuda.device_count() < self.world:
            raise RuntimeError(f"tensor_parallel_size {self.world} needs {self.world} GPUs, "
                               f"{torch.cuda.device_count()} present")
        self.dev = _device(0, self.backend)
        port = parallel.free_port()
        # workers are fresh interpreters running this module (not multiprocessing's spawn, which re-imports the
        # caller's main script and so needs a guard in every script that builds an engine)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), NCCL_NVLS_ENABLE="0",
                   ENGINE_TP_CONFIG=cfg.model_dump_json())
        self.procs = [Worker(r, subprocess.Popen([sys.executable, "-m", "engine.tp", str(r), str(self.world),
                                                  str(port), self.backend, str(os.getpid())], env=env))
                      for r in range(1, self.world)]
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), NCCL_NVLS_ENABLE="0")
        if self.dev.type == "cuda":
            torch.cuda.set_device(self.dev)
        parallel.init(0, self.world, backend=self.backend, timeout_s=cfg.tp_timeout_s)
        if self.backend == "nccl":
            NCCL_RAN["rank0"] = True
        self.dead: str | None = None
        self._busy = False
        self._closed = False
        threading.Thread(target=self._supervise, daemon=True).start()

    def ready(self) -> None:
        dist.barrier()

    def _supervise(self) -> None:
        while not self._closed:
            time.sleep(0.5)
            for w in self.procs:
                if not w.is_alive() and not self._closed:
                    self.dead = f"tensor-parallel rank {w.rank} (pid {w.pid}) died with exit code {w.exitcode}"
                    print(f"error: {self.dead}; stopping the other ranks", file=sys.stderr, flush=True)
                    self.kill()
                    time.sleep(2.0)
                    if self._busy:  # the main thread waits in a collective with the dead rank: end here
                        print("error: rank 0 was waiting on it in a collective; exiting", file=sys.stderr, flush=True)
                        os._exit(1)
                    return

    def check(self) -> None:
        if self.dead:
            raise RuntimeError(self.dead)

    def explain(self, e: Exception) -> RuntimeError:
        """The error to raise for a failed step: which rank died, when one did (a peer's death reaches rank 0 as
        a transport error first, before the supervisor's next look)."""
        for _ in range(40):
            if self.dead:
                break
            gone = [w for w in self.procs if not w.is_alive()]
            if gone:
                w = gone[0]
                self.dead = f"tensor-parallel rank {w.rank} (pid {w.pid}) died with exit code {w.exitcode}"
                break
            time.sleep(0.05)
        self._busy = False
        return RuntimeError(self.dead or f"tensor-parallel step failed: {e}")

    def broadcast(self, head: np.ndarray, flat: np.ndarray) -> torch.Tensor:
        """Send a planned step to every rank; returns its flat inputs on rank 0's device."""
        self.check()
        self._busy = True
        try:
            buf = _send([len(head), len(flat)], np.concatenate([head, flat]), self.dev)
        except RuntimeError as e:
            raise RuntimeError(self.dead or f"tensor-parallel broadcast failed: {e}") from e
        return buf[len(head):]

    def step_done(self) -> None:
        self._busy = False

    def kill(self) -> None:
        for w in self.procs:
            if w.is_alive():
                w.proc.kill()
        for w in self.procs:
            w.join(timeout=5)

    def close(self) -> None:
        """Stop the workers (they leave their loop and exit), then let go of the process group. Its teardown runs
        in a daemon thread given a few seconds: with collectives captured in CUDA graphs, NCCL's communicator
        teardown never returned on the H200s, and a stopped engine must not hang its caller."""
        if self._closed:
            return
        try:
            if not self.dead:
                _send([STOP, 0], None, self.dev)
        except RuntimeError:
            pass
        self._closed = True
        for w in self.procs:
            w.join(timeout=30)
        self.kill()
        t = threading.Thread(target=_destroy_group, daemon=True)
        t.start()
        t.join(timeout=5)


if __name__ == "__main__":  # a worker: python -m engine.tp RANK WORLD PORT BACKEND PARENT_PID (config in the env)
    r, w, port, backend, parent = sys.argv[1:6]
    worker_main(int(r), int(w), int(port), os.environ["ENGINE_TP_CONFIG"], backend, int(parent))
