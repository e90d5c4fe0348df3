"""Compiling CUDA sources through CuPy and launching them on PyTorch tensors.

Tensors never become CuPy arrays (CuPy has no bfloat16): kernels receive raw device pointers and
launch on PyTorch's current stream, so they interleave with PyTorch work and are captured by
PyTorch's CUDA graphs like any other kernel. Sources avoid CUDA headers (bf16 is converted by bit
operations in common.cuh) so NVRTC needs no include path: the same code builds with cupy-cuda12x
and cupy-cuda13x.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np

SRC = Path(__file__).parent / "cuda"


class KernelsUnavailable(RuntimeError):
    """CuPy or a GPU is missing: callers fall back to the PyTorch path."""


@functools.lru_cache(maxsize=None)
def cupy():
    try:
        import cupy as cp
    except Exception as e:  # noqa: BLE001 -- any import failure means: no kernels here
        raise KernelsUnavailable(f"CuPy is not importable ({e!r}); install the 'gpu' extra") from e
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            raise KernelsUnavailable("no CUDA device")
    except cp.cuda.runtime.CUDARuntimeError as e:
        raise KernelsUnavailable(f"no CUDA device ({e})") from e
    return cp


def available() -> bool:
    try:
        cupy()
        return True
    except KernelsUnavailable:
        return False


@functools.lru_cache(maxsize=None)
def arch() -> str:
    return f"sm_{cupy().cuda.Device().compute_capability}"  # e.g. "90" on Hopper


@functools.lru_cache(maxsize=None)
def module(name: str, names: tuple[str, ...] = ()):
    """Compile kernels/cuda/<name>.cu (with common.cuh prepended) for this GPU's architecture."""
    cp = cupy()
    code = (SRC / "common.cuh").read_text() + "\n" + (SRC / f"{name}.cu").read_text()
    opts = ("-std=c++17", f"--gpu-architecture={arch()}")
    mod = cp.RawModule(code=code, options=opts, name_expressions=names or None)
    mod.compile()
    return mod


@functools.lru_cache(maxsize=None)
def function(name: str, kernel: str, names: tuple[str, ...] = ()):
    return module(name, names).get_function(kernel)


_SMEM_SET: dict[int, int] = {}
_LOW: dict = {}


@functools.lru_cache(maxsize=64)
def _stream(ptr: int):
    cp = cupy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # cupy 14 prefers Stream.from_external
        return cp.cuda.ExternalStream(ptr)


def _current_stream_ptr() -> int:
    """PyTorch's current stream as a raw pointer: the C accessor inductor's generated code uses (about 1 us),
    not torch.cuda.current_stream(), which builds a Stream object per call (measured ~40 us of host time per
    launch under cProfile -- two launches per layer of every eager step)."""
    import torch
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is None:
        return torch.cuda.current_stream().cuda_stream
    return raw(torch._C._cuda_getDevice())


def convert(args) -> tuple:
    """Kernel arguments as CuPy takes them: tensors as device pointers, ints as int32, floats as float32,
    None as a null pointer; numpy scalars pass as they are."""
    import torch

    conv = []
    for a in args:
        if isinstance(a, torch.Tensor):
            conv.append(np.uint64(a.data_ptr()))
        elif isinstance(a, bool):
            conv.append(np.int32(a))
        elif isinstance(a, int):
            conv.append(np.int32(a))
        elif isinstance(a, float):
            conv.append(np.float32(a))
        elif a is None:
            conv.append(np.uint64(0))
        else:
            conv.append(a)
    return tuple(conv)


def launcher(fn, grid, block, shared_mem: int = 0):
    """A launch of fn on PyTorch's current stream (taken now) with everything fixed but the arguments:
    -> call(converted args). For a kernel launched once per layer with the same grid (the paged decode of an
    eager step): the per-call host cost is CuPy's own launch, nothing else."""
    if shared_mem > 48 * 1024 and _SMEM_SET.get(id(fn), 0) < shared_mem:
        fn.max_dynamic_shared_size_bytes = shared_mem
        _SMEM_SET[id(fn)] = shared_mem
    stream = _stream(_current_stream_ptr())
    grid, block = tuple(int(g) for g in grid), tuple(int(b) for b in block)
    low = _LOW.get(id(fn))
    if low is None:  # cupy.cuda.Function behind the RawKernel (the property is not free): look it up once
        low = _LOW[id(fn)] = getattr(fn, "kernel", False)
    if low:
        return lambda conv: low(grid, block, conv, shared_mem, stream)

    def call(conv):
        with stream:
            fn(grid, block, conv, shared_mem=shared_mem)
    return call


def launch(fn, grid, block, args, shared_mem: int = 0) -> None:
    """Launch on PyTorch's current stream. args: tensors (passed as pointers), ints (int32), floats (f32),
    or numpy scalars passed as they are."""
    launcher(fn, grid, block, shared_mem)(convert(args))


@functools.lru_cache(maxsize=None)
def num_sms() -> int:
    return cupy().cuda.Device().attributes["MultiProcessorCount"]


def use_device(index: int) -> None:
    """Make CuPy's current device PyTorch's (a tensor-parallel worker runs on GPU `index`: modules must load and
    launch there). Nothing to do without CuPy."""
    try:
        cupy().cuda.Device(index).use()
    except KernelsUnavailable:
        pass
