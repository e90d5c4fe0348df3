"""Serving-stack profiles: what differs between engines that run the same model on the same GPUs.

A plan's step cost is the hardware profile's operators (GEMMs by dtype and shape, attention, all-reduce: measured
once, engine-independent) times the stack's `op_scale`, plus the stack's host overhead per step and per
sequence. The presets (`planner/data/stacks/*.yaml`) carry fitted values with the public results they were fitted
on; a user writes their own file in the same form and names its path in `stack:`.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from contract.errors import InputError
from planner.resources import _path

# the public-results splits a preset is fitted on (`fit`: host terms and kernel scale; `fit_tp`: the all-reduce
# scale): never reported as held out, never quoted as an answer's evidence
FIT_SPLITS = ("fit", "fit_tp")
# the metrics of a replica's capacity (throughput, the rate it sustains): what a fleet size rests on
CAPACITY_METRICS = ("output_tok_s", "req_s", "max_req_s")
KNOB_DEFAULTS = ("max_num_seqs", "max_num_batched_tokens", "enable_chunked_prefill", "enable_prefix_caching",
                 "gpu_memory_utilization", "block_size", "kv_admission", "preemption_mode")


class StackFit(BaseModel):
    """Where a preset's numbers came from: the rows of the public-results table, and the command."""
    model_config = ConfigDict(extra="forbid")
    command: str = ""
    table_sha256: str = ""  # the whole table when the fit was made (held-out rows added later change it)
    fit_rows_sha256: str = ""  # the rows the fit read (planner.public.fit_rows_sha256): must still match
    rows: list[str] = Field(default_factory=list, description="ids of the public-results rows fitted on")
    residual_rms_log: float | None = None
    tp_rows: list[str] = Field(default_factory=list, description="ids of the rows allreduce_scale was fitted on")
    tp_fit_rows_sha256: str = ""  # planner.public.fit_rows_sha256(name, rows, "fit_tp"): must still match
    tp_residual_rms_log: float | None = None


class StackProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    versions: str = Field("", description="the stack versions its sources measured")
    step_overhead_s: float = Field(ge=0, description="host time per iteration the GPU waits for")
    per_seq_overhead_s: float = Field(ge=0, description="host time per scheduled sequence per iteration")
    op_scale: float = Field(1.0, gt=0, description="the stack's kernels' time over the hardware tables'")
    allreduce_scale: float = Field(1.0, ge=0, description="the stack's all-reduce time over op_scale x the "
                                   "hardware table's (tensor parallelism: collectives, the synchronisation "
                                   "around them); 1 where no TP>1 rows were fitted")
    host_overlap: bool = Field(False, description="the stack schedules the next batch on the CPU while the GPU "
                               "runs this one (SGLang's overlap scheduler from 0.4): a step takes the longer of the "
                               "two instead of their sum")
    decode_attention: Literal["kv_bytes", "engine_kernel"] = Field(
        "engine_kernel", description="how decode attention is costed from the hardware tables: kv_bytes -- by the KV "
        "bytes read, from the measured layouts where this engine's kernel streams at bandwidth (GQA kernels that read "
        "a KV head once per query group: FlashInfer, FA3, XQA); engine_kernel -- this engine's paged kernel as timed, "
        "which slows with query heads per KV head")
    calibrated: bool = Field(False, description="this engine: use its own calibrated model instead")
    defaults: dict = Field(default_factory=dict, description="the stack's default serving knobs")
    sources: list[str] = Field(default_factory=list)
    fit: StackFit | None = None

    def describe(self) -> str:
        ar = f" (all-reduce x{self.op_scale * self.allreduce_scale:.3f})" if self.allreduce_scale != 1 else ""
        host = f"{self.step_overhead_s * 1e3:.2f} ms per step + {self.per_seq_overhead_s * 1e6:.1f} us per sequence"
        if self.host_overlap:
            return f"stack '{self.name}': the longer of hardware operators x{self.op_scale:.3g}{ar} and host {host}"
        return f"stack '{self.name}': hardware operators x{self.op_scale:.3g}{ar} + {host}"


def stacks_dir() -> Path:
    return _path("data", "stacks")


def presets() -> dict[str, Path]:
    return {p.stem: p for p in sorted(stacks_dir().glob("*.yaml"))}


@functools.lru_cache(maxsize=32)
def _load(path: str, mtime: float) -> StackProfile:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise InputError([("stack", f"{path}: cannot read a stack profile ({e})")])
    try:
        prof = StackProfile.model_validate(doc)
    except Exception as e:
        raise InputError([("stack", f"{path}: not a stack profile: {e}")])
    bad = set(prof.defaults) - set(KNOB_DEFAULTS)
    if bad:
        raise InputError([("stack", f"{path}: defaults may set {', '.join(KNOB_DEFAULTS)}; not {sorted(bad)}")])
    return prof


def load_stack(name_or_path: str) -> StackProfile:
    """A preset by name, or a user's stack profile by path."""
    p = presets().get(name_or_path)
    if p is None:
        p = Path(name_or_path)
        if not p.is_file():
            raise InputError([("stack", f"'{name_or_path}' is neither a preset ({', '.join(presets())}) nor a file")])
    return _load(str(p.resolve()), p.stat().st_mtime)


def hardware_profile_for(sc) -> Path:
    """The hardware profile a stack-cost scenario uses: its cost_model.profile, else the GPU's shipped one."""
    return Path(sc.cost_model.profile) if sc.cost_model.profile else hardware_profile(sc.fleet.gpu)


def hardware_profile(gpu_name: str) -> Path:
    """The shipped hardware profile for a GPU: its own where measured, else the H100's (the calibrated model
    then scales each operator to the GPU and says EXTRAPOLATED)."""
    from planner.resources import profiles
    have = profiles()
    key = {"H200": "h200", "H100-SXM": "h100"}.get(gpu_name, "h100")
    return have[key]
