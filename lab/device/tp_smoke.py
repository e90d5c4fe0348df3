"""A tensor-parallel engine on GPUs, step by step, with a stack dump of every thread if it stalls for a minute:
start, a prefill, decodes (CUDA graphs with their all-reduces inside), a replay, shutdown.

    python lab/device/tp_smoke.py [--tp 2] [--no-graphs] [--kernels]
"""
import argparse
import faulthandler
import sys
import time

import torch

from engine.config import EngineConfig
from engine.llm import LLM
from engine.sequence import SamplingParams

ap = argparse.ArgumentParser()
ap.add_argument("--tp", type=int, default=2)
ap.add_argument("--no-graphs", action="store_true")
ap.add_argument("--kernels", action="store_true")
ap.add_argument("--model", default="llama-3.2-1b")
a = ap.parse_args()
faulthandler.dump_traceback_later(60, repeat=True, file=sys.stderr)
t = time.time()


def say(msg):
    print(f"[{time.time() - t:6.1f} s] {msg}", flush=True)


say(f"start TP={a.tp} graphs={not a.no_graphs} kernels={a.kernels} on {torch.cuda.device_count()} GPUs")
llm = LLM(EngineConfig(model=a.model, tensor_parallel_size=a.tp, cuda_graphs=not a.no_graphs, kernels=a.kernels,
                       max_num_seqs=16, max_num_batched_tokens=512, max_model_len=2048))
say(f"engine up: {llm.num_blocks} blocks per rank, graphs {llm.runner.use_graphs}")
out = llm.generate([list(range(100, 160))], SamplingParams(max_tokens=1))
say(f"one prefill: token {out[0].output}")
out = llm.generate([list(range(100, 160 + i)) for i in range(8)], SamplingParams(max_tokens=32))
say(f"8 sequences x 32 tokens: {[len(s.output) for s in out]}; captured graphs {len(llm.runner.graphs)}")
seqs = llm.replay([0.0, 0.05, 0.1, 0.2], [40, 60, 20, 90], [10, 20, 30, 5])
say(f"replay: {[s.status for s in seqs]}")
llm.shutdown()
say("shut down")
faulthandler.cancel_dump_traceback_later()
