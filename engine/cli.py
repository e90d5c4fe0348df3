"""The `engine` command line: generate, replay a trace, calibrate, and the validation runs."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

import typer

from contract.traces import load_trace

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="The compact real engine: generate, replay, calibrate (GPU).")


@app.command()
def generate(model: str = typer.Option("llama-3.2-1b", help="catalog name or local HF checkpoint dir"),
             checkpoint: Optional[str] = typer.Option(None),
             prompt_len: int = 200, max_tokens: int = 150, batch: int = 1, quantization: Optional[str] = None,
             temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
             kernels: bool = typer.Option(False, help="use the CUDA kernels (CuPy) where they apply")):
    """Offline generation on random prompts (or a checkpoint's vocabulary); prints tokens/s."""
    import time

    import torch

    from engine.llm import LLM, EngineConfig
    from engine.sequence import SamplingParams
    llm = LLM(EngineConfig(model=model, checkpoint=checkpoint, quantization=quantization, seed=seed,
                           kernels=kernels))
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(0, llm.spec.vocab_size, (prompt_len,), generator=g).tolist() for _ in range(batch)]
    t = time.perf_counter()
    seqs = llm.generate(prompts, SamplingParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                                seed=seed))
    dt = time.perf_counter() - t
    n = sum(len(s.output) for s in seqs)
    print(f"{n} tokens in {dt:.2f} s = {n / dt:.1f} tokens/s; first output: {seqs[0].output[:16]}")


@app.command()
def replay(trace: str = typer.Argument(..., help="Azure-format CSV or Mooncake JSONL"),
           model: str = "llama-3.2-1b", out: Path = typer.Option(Path("replay.csv")),
           duration: float = typer.Option(60.0, help="replay the first N seconds of the trace")):
    """Replay a trace in real time; write request records in the simulator's columns."""
    from engine.llm import LLM, EngineConfig, records
    tr = load_trace(trace)
    keep = tr.timestamps < duration
    llm = LLM(EngineConfig(model=model))
    seqs = llm.replay(tr.timestamps[keep], tr.input_tokens[keep], tr.output_tokens[keep])
    recs = records(seqs)
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(recs[0]))
        w.writeheader()
        w.writerows(recs)
    print(f"wrote {len(recs)} records to {out}")


@app.command()
def calibrate(gpu: str = typer.Option(..., help="catalog GPU this device stands for, e.g. H100-SXM"),
              out: Path = typer.Option(Path("data/profiles/profile.json")),
              kernels: bool = typer.Option(False, help="measure the engine with its CUDA kernels on"),
              ramps: int = typer.Option(2, min=1, help="serving-iteration ramps per model (28 s each), pooled")):
    """Measure the calibration profile on this GPU (about 4 minutes on an H100 with 2 ramps)."""
    from engine.calibrate import calibrate as run
    prof = run(gpu, kernels=kernels, ramps=ramps)
    prof.save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    app()
