"""Where one engine step's time goes, by torch.profiler: GPU kernel time against wall time.

    python -m lab.studies.profile_step.profile_step --model llama-3.1-8b [--kernels] [--decode-batch 10] [--chunks 1] [--piecewise off]

Builds a steady state (decode-batch sequences decoding), then times and profiles steps that add
`chunks` prompts of `--prompt / chunks` tokens each to the decodes (the mixed steps of a replay), and
pure batch-1 decode steps; prints wall vs summed GPU kernel time and the top kernels and CPU ops.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from engine.llm import LLM, EngineConfig, quiet_gc
from engine.sequence import SamplingParams
from lab.validation_runs import KNOBS


def gpu_busy_ms(prof) -> float:
    """Union of kernel intervals on the device (overlaps counted once), in ms."""
    iv = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                if e.device_type == torch.autograd.DeviceType.CUDA)
    busy, cur_s, cur_e = 0.0, None, None
    for s, e in iv:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                busy += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        busy += cur_e - cur_s
    return busy / 1e3


def steady_decodes(llm: LLM, batch: int, context: int, seed: int = 0):
    """Bring `batch` sequences of `context` random prompt tokens to decoding (the steady state a mixed step
    joins); -> prompt(n), more random prompts from the same generator."""
    g = torch.Generator().manual_seed(seed)
    V = llm.spec.vocab_size

    def prompt(n):
        return torch.randint(0, V, (n,), generator=g).tolist()

    for _ in range(batch):
        llm.add(prompt(context), SamplingParams(max_tokens=4000))
    while any(s.uncomputed > 1 for s in llm.sched.running) or llm.sched.waiting:
        llm.step()
    return prompt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.1-8b")
    ap.add_argument("--kernels", action="store_true")
    ap.add_argument("--decode-batch", type=int, default=10)
    ap.add_argument("--context", type=int, default=350)
    ap.add_argument("--prompt", type=int, default=600)
    ap.add_argument("--chunks", type=int, default=1)
    ap.add_argument("--reps", type=int, default=12)
    ap.add_argument("--rows", type=int, default=18)
    ap.add_argument("--piecewise", default="on", choices=["on", "off"])
    a = ap.parse_args()
    llm = LLM(EngineConfig(model=a.model, kernels=a.kernels, num_blocks=8192, piecewise_graphs=a.piecewise == "on",
                           **KNOBS))
    with quiet_gc():
        prompt = steady_decodes(llm, a.decode_batch, a.context)

        def mixed_step():
            for _ in range(a.chunks):
                llm.add(prompt(a.prompt // a.chunks), SamplingParams(max_tokens=1))
            torch.cuda.synchronize()
            t = time.perf_counter()
            llm.step()
            torch.cuda.synchronize()
            return time.perf_counter() - t

        for _ in range(3):
            mixed_step()
        walls = [mixed_step() for _ in range(a.reps)]
        print(f"{a.model} kernels={a.kernels} piecewise={a.piecewise}: mixed step ({a.decode_batch} decodes at ~{a.context} + {a.chunks} "
              f"chunk(s), {a.prompt} prompt tokens): wall median {statistics.median(walls) * 1e3:.2f} ms")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            w = [mixed_step() for _ in range(5)]
        print(f"  under the profiler: wall/step {sum(w) / 5 * 1e3:.2f} ms, GPU busy/step {gpu_busy_ms(prof) / 5:.2f} ms")
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=a.rows))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.rows))

        for s in list(llm.sched.running):  # batch-1 decode: one sequence left
            llm.sched.finish(s)
        llm.add(prompt(200), SamplingParams(max_tokens=4000))
        for _ in range(30):
            llm.step()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(50):
            llm.step()
        torch.cuda.synchronize()
        print(f"batch-1 decode step: wall {(time.perf_counter() - t) / 50 * 1e3:.3f} ms")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                llm.step()
            torch.cuda.synchronize()
        print(f"  GPU busy/step {gpu_busy_ms(prof) / 10:.3f} ms")
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=a.rows))



if __name__ == "__main__":
    main()
