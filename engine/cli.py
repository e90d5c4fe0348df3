"""The `engine` command line: generate, replay a trace, calibrate.

Every option is checked before a model is built (that takes minutes for an 8B on a CPU): a bad one is an error
naming it, exit 2. Results go to a new folder unless `--out` names one, never into the repository's data.
"""
from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError

from contract.errors import InputError
from contract.records import write_records
from contract.traces import load_trace
from engine.config import EngineConfig, check_model

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="The compact real engine: generate, replay, calibrate (GPU).")


def _fail(e: Exception) -> None:
    typer.echo("error: invalid input", err=True)
    for line in str(e).splitlines():
        typer.echo(f"  {line}", err=True)
    raise typer.Exit(2)


def _config(**kw) -> EngineConfig:
    """The engine's config from command-line options, each problem named by its option."""
    try:
        cfg = EngineConfig(**kw)
    except ValidationError as e:
        raise InputError([("--" + ".".join(str(x) for x in err["loc"]).replace("_", "-") if err["loc"] else "",
                           err["msg"].removeprefix("Value error, ")) for err in e.errors()])
    spec = check_model(cfg.checkpoint or cfg.model, "--checkpoint" if cfg.checkpoint else "--model")
    if why := spec.tp_problem(cfg.tensor_parallel_size):
        raise InputError([("--tp", why)])
    return cfg


def _fresh_dir(out: Optional[Path], what: str) -> Path:
    """`out`, or a new folder named for the command and the time: results never land in committed data."""
    d = out or Path(f"engine-{what}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    if d.exists() and (not d.is_dir() or any(d.iterdir())):
        raise InputError([("--out", f"'{d}' exists and is not an empty folder")])
    return d


def _cuda_or_warn(command: str) -> bool:
    import torch
    if not torch.cuda.is_available():
        typer.echo(f"warning: no CUDA GPU here; `engine {command}` runs the model on the CPU, which takes minutes "
                   "for a 1B model and far longer for an 8B (the tests use a tiny model)", err=True)
        return False
    return True


@app.command()
def generate(model: str = typer.Option("llama-3.2-1b", help="catalog name or local HF checkpoint dir"),
             checkpoint: Optional[str] = typer.Option(None),
             prompt_len: int = typer.Option(200, min=1), max_tokens: int = typer.Option(150, min=1),
             batch: int = typer.Option(1, min=1, help="prompts generated together"),
             quantization: str = typer.Option("bf16", help="bf16 | fp16 | fp8 | int8"),
             tp: int = typer.Option(1, "--tp", min=1, help="tensor-parallel degree (one process per GPU)"),
             temperature: float = typer.Option(0.0, min=0.0), top_p: float = typer.Option(1.0, min=0.0, max=1.0),
             seed: int = typer.Option(0, min=0),
             kernels: bool = typer.Option(False, help="use the CUDA kernels (CuPy) where they apply")):
    """Offline generation on random prompts (or a checkpoint's vocabulary); prints tokens/s."""
    try:
        cfg = _config(model=model, checkpoint=checkpoint, quantization=quantization, seed=seed, kernels=kernels,
                      tensor_parallel_size=tp)
    except InputError as e:
        _fail(e)
    import torch

    from engine.llm import LLM
    from engine.sequence import SamplingParams
    _cuda_or_warn("generate")
    llm = LLM(cfg)
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(0, llm.spec.vocab_size, (prompt_len,), generator=g).tolist() for _ in range(batch)]
    t = time.perf_counter()
    seqs = llm.generate(prompts, SamplingParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                                seed=seed))
    dt = time.perf_counter() - t
    n = sum(len(s.output) for s in seqs)
    print(f"{n} tokens in {dt:.2f} s = {n / dt:.1f} tokens/s; first output: {seqs[0].output[:16]}")
    llm.shutdown()
    _end()


@app.command()
def replay(trace: Path = typer.Argument(..., help="Azure-format CSV or Mooncake JSONL"),
           model: str = "llama-3.2-1b",
           out: Optional[Path] = typer.Option(None, help="new folder for the records (default: engine-replay-TIME)"),
           duration: float = typer.Option(60.0, min=0.001, help="replay the first N seconds of the trace"),
           quantization: str = typer.Option("bf16", help="bf16 | fp16 | fp8 | int8"),
           tp: int = typer.Option(1, "--tp", min=1, help="tensor-parallel degree (one process per GPU)")):
    """Replay a trace in real time; write request records in the simulator's columns."""
    try:
        cfg = _config(model=model, quantization=quantization, tensor_parallel_size=tp)
        tr = load_trace(str(trace))
        if tr.timestamps is None:
            raise InputError([("trace", f"{trace} has no timestamps (a lengths-only file): nothing to replay")])
        d = _fresh_dir(out, "replay")
    except InputError as e:
        _fail(e)
    from engine.llm import LLM, records
    _cuda_or_warn("replay")
    keep = tr.timestamps < duration
    llm = LLM(cfg)
    seqs = llm.replay(tr.timestamps[keep], tr.input_tokens[keep], tr.output_tokens[keep])
    llm.shutdown()
    d.mkdir(parents=True, exist_ok=True)
    write_records(d / "records.csv", records(seqs))
    print(f"wrote {len(seqs)} records to {d / 'records.csv'}")
    _end()


@app.command()
def calibrate(gpu: str = typer.Option(..., help="catalog GPU this device stands for, e.g. H100-SXM"),
              out: Optional[Path] = typer.Option(None, help="profile file to write (.json or .json.gz; default: "
                                                 "engine-calibration-TIME/profile.json.gz)"),
              kernels: bool = typer.Option(False, help="measure the engine with its CUDA kernels on"),
              ramps: int = typer.Option(2, min=1, help="serving-iteration ramps per model (28 s each), pooled"),
              tp: int = typer.Option(1, "--tp", min=1, help="also time TP serving iterations at this degree"),
              quantization: str = typer.Option("bf16", help="with --extra --parts iterations: the weight format "
                                               "the timed engine serves (bf16, fp8, int8)"),
              extra: bool = typer.Option(False, help="only the tables a bf16 calibration lacks: FP8/INT8 GEMMs, "
                                         "all-reduce, TP serving iterations (merge with planner profile-add)"),
              parts: str = typer.Option("gemm,allreduce,iterations", help="with --extra: which of them (also: "
                                        "attention, gemm_bf16 -- of the --shape-models; attention_fp8kv -- "
                                        "decode attention over an FP8 cache, the --models' and --shape-models' "
                                        "layouts)"),
              models: str = typer.Option("llama-3.2-1b,llama-3.1-8b", help="with --extra --parts iterations: the "
                                         "models whose serving iterations are timed (one TP engine per process is "
                                         "safest: run one model per call)"),
              ramp_max_seqs: Optional[int] = typer.Option(None, min=1, help="with --extra --parts iterations: the ramp "
                                                "engine's max_num_seqs (default the validation knobs' 64), so that "
                                                "the timed batches reach what the plans use"),
              shape_models: str = typer.Option("", help="with --extra: catalog models whose attention layouts "
                                               "(TP 1/2/4) and bf16 GEMM shapes to add, comma-separated")):
    """Measure the calibration profile on this GPU (about 4 minutes on an H100 with 2 ramps)."""
    from contract.catalog import GPUS
    try:
        if gpu not in GPUS:
            raise InputError([("--gpu", f"unknown GPU '{gpu}'; known: {', '.join(sorted(GPUS))}")])
        from engine.calibrate import EXTRA_PARTS
        bad = set(parts.split(",")) - set(EXTRA_PARTS)
        if bad:
            raise InputError([("--parts", f"unknown part(s) {sorted(bad)}; {', '.join(EXTRA_PARTS)}")])
        from contract.catalog import MODELS
        sm = tuple(m for m in shape_models.split(",") if m)
        its_models = tuple(m for m in models.split(",") if m)
        unknown = [m for m in sm + its_models if m not in MODELS]
        if unknown:
            raise InputError([("--shape-models" if set(unknown) & set(sm) else "--models",
                               f"unknown model(s) {unknown}; known: {', '.join(sorted(MODELS))}")])
        if {"attention", "gemm_bf16"} & set(parts.split(",")) and not sm:
            raise InputError([("--shape-models", "the attention and gemm_bf16 parts measure these models' shapes: "
                               "name at least one")])
        if "attention_fp8kv" in parts.split(",") and not kernels:
            raise InputError([("--parts", "attention_fp8kv times the paged kernel: leave the kernels on")])
        if ramp_max_seqs is not None and not (extra and "iterations" in parts.split(",")):
            raise InputError([("--ramp-max-seqs", "sets the iteration ramps of --extra --parts iterations")])
        if tp > 1 and not extra:
            raise InputError([("--tp", "TP serving iterations are measured with --extra")])
        if quantization not in ("bf16", "fp8", "int8"):
            raise InputError([("--quantization", f"'{quantization}': the engine serves bf16, fp8 or int8 weights")])
        if quantization != "bf16" and not (extra and "iterations" in parts.split(",")):
            raise InputError([("--quantization", "sets the weight format of --extra --parts iterations")])
        if out is not None and not out.name.endswith((".json", ".json.gz")):
            raise InputError([("--out", f"'{out}': a profile file ends in .json or .json.gz")])
        if out is not None and out.exists():
            raise InputError([("--out", f"'{out}' exists (nothing is overwritten)")])
        path = out or _fresh_dir(None, "calibration") / "profile.json.gz"
        import torch
        if not torch.cuda.is_available():
            raise InputError([("", "engine calibrate measures a GPU and there is none here")])
        if tp > torch.cuda.device_count():
            raise InputError([("--tp", f"{tp} GPUs asked for, {torch.cuda.device_count()} present")])
    except InputError as e:
        _fail(e)
    from engine.calibrate import calibrate as run
    from engine.calibrate import calibrate_extra
    prof = calibrate_extra(gpu, serve_tp=tp, ramps=1, kernels=kernels, parts=tuple(parts.split(",")),
                           shape_models=sm, models=its_models, ramp_max_seqs=ramp_max_seqs,
                           serve_quantization=quantization) if extra else \
        run(gpu, kernels=kernels, ramps=ramps)
    prof.save(path)
    print(f"wrote {path}")
    _end()


def _end() -> None:
    """After a command's results are written: a process that ran a tensor-parallel engine under NCCL ends here
    (engine.tp.end_process); any other returns normally."""
    from engine.tp import end_process
    end_process(0)


if __name__ == "__main__":
    sys.exit(app())
