"""The scenario: one pydantic model tree that is the single source of truth for every knob.

Only `model` and `workload` are required (the question); everything else has
the default a vLLM user would expect. Engine knobs use vLLM's names.
`load_scenario` turns every problem -- YAML syntax, unknown field, bad value,
catalog miss, model that does not fit -- into a `InputError` naming the
field and the reason.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from contract.catalog import GPUS, MODELS, GPUSpec, ModelSpec
from contract.errors import InputError
from contract.knobs import Quantization, ServingKnobs
from planner import resources


class _Strict(BaseModel):
    # strict: `true` is not a replica count and `2.5` not a block size; finite: `.inf` is not a duration
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


# ---------------------------------------------------------------- workload
class LengthDist(_Strict):
    """Token-count distribution of prompts or outputs. `empirical` samples a column of a trace file;
    `quantiles` interpolates a published table of percentiles (what the length presets use)."""

    # the fields each distribution reads (the dashboard shows these; the validator requires them)
    USES: ClassVar[dict[str, tuple[str, ...]]] = {"fixed": ("mean",), "uniform": ("low", "high"),
                                                  "lognormal": ("mean", "cv", "max"),
                                                  "empirical": ("trace", "column", "max"),
                                                  "quantiles": ("quantiles",)}

    dist: Literal["fixed", "uniform", "lognormal", "empirical", "quantiles"] = Field(
        "fixed", description="the distribution's family")
    mean: float | None = Field(default=None, gt=0, le=1e7, description="fixed value or lognormal mean (tokens)")
    low: int | None = Field(default=None, ge=1, le=10_000_000, description="uniform: smallest value (tokens)")
    high: int | None = Field(default=None, ge=1, le=10_000_000, description="uniform: largest value (tokens)")
    cv: float = Field(default=0.5, gt=0, le=100, description="lognormal coefficient of variation")
    trace: str | None = Field(default=None, description="CSV/JSONL file for `empirical`")
    column: str | None = Field(default=None, description="column of `trace` to sample")
    max: int | None = Field(default=None, ge=1, description="reject-free cap: samples above are redrawn")
    quantiles: list[tuple[float, int]] | None = Field(
        default=None, description="quantiles: (percentile 0-100, tokens) pairs, increasing, from 0 to 100")

    @field_validator("quantiles", mode="before")
    @classmethod
    def _pairs(cls, v):  # YAML and JSON write a pair as a list
        return [tuple(x) if isinstance(x, list) else x for x in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _complete(self) -> "LengthDist":
        if self.dist in ("fixed", "lognormal") and self.mean is None:
            raise ValueError(f"dist '{self.dist}' needs 'mean'")
        if self.dist == "uniform":
            if self.low is None or self.high is None:
                raise ValueError("dist 'uniform' needs 'low' and 'high'")
            if self.low > self.high:
                raise ValueError(f"low ({self.low}) is above high ({self.high})")
        if self.dist == "empirical" and (self.trace is None or self.column is None):
            raise ValueError("dist 'empirical' needs 'trace' and 'column'")
        if self.dist == "quantiles":
            q = self.quantiles or []
            if len(q) < 2 or q[0][0] != 0 or q[-1][0] != 100:
                raise ValueError("dist 'quantiles' needs (percentile, tokens) pairs from percentile 0 to 100")
            if any(b[0] <= a[0] or b[1] < a[1] for a, b in zip(q, q[1:])) or q[0][1] < 1:
                raise ValueError("quantiles must rise in percentile and not fall in tokens (at least 1 token)")
        return self

    @property
    def expected(self) -> float | None:
        """Mean, where it is known without sampling a file."""
        if self.dist == "uniform":
            return (self.low + self.high) / 2  # type: ignore[operator]
        if self.dist == "quantiles":  # piecewise-linear CDF: each segment's mass at its midpoint
            q = self.quantiles
            return sum((b[0] - a[0]) / 100 * (a[1] + b[1]) / 2 for a, b in zip(q, q[1:]))
        return self.mean

    @property
    def upper(self) -> float | None:
        """The largest value the distribution can draw, where it is bounded."""
        if self.dist == "fixed":
            return self.mean
        if self.dist == "uniform":
            return self.high
        if self.dist == "quantiles":
            return self.quantiles[-1][1]
        return self.max


class RateProfile(_Strict):
    """How load varies over time. `peak_factor` is the ratio of peak to average rate."""

    kind: Literal["constant", "diurnal", "step"] = Field("constant", description="the rate's shape over time")
    peak_factor: float = Field(default=1.0, ge=1.0, le=100, description="peak rate over the average; sizing and "
                               "search plan for the peak")
    period_s: float = Field(default=86400.0, gt=0, description="diurnal period")
    step_at_s: float = Field(default=0.0, ge=0, description="step: the rate multiplies by step_factor from here")
    step_factor: float = Field(default=1.0, gt=0, le=1000, description="step: the rate's multiplier")


class Arrival(_Strict):
    """How requests arrive: an open-loop process at a mean rate, closed-loop users, or a trace's timestamps."""

    NEEDS: ClassVar[dict[str, tuple[str, ...]]] = {"poisson": ("rate", "requests"), "gamma": ("rate", "cv", "requests"),
                                                   "closed_loop": ("users", "think_time_s", "requests"),
                                                   "trace": ("trace", "time_scale"), "offline": ("requests",)}
    REQUIRED: ClassVar[dict[str, tuple[str, ...]]] = {"poisson": ("rate",), "gamma": ("rate",),
                                                      "closed_loop": ("users", "think_time_s"), "trace": ("trace",),
                                                      "offline": ("requests",)}
    process: Literal["poisson", "gamma", "closed_loop", "trace", "offline"] = Field(
        "poisson", description="poisson/gamma: open loop at `rate`; closed_loop: `users` each waiting "
        "`think_time_s` between requests (0: a fixed concurrency, as benchmark clients run); trace: a trace's "
        "timestamps; offline: `requests` all at time 0 (a throughput benchmark)")
    rate: float | None = Field(default=None, gt=0, le=1e6, description="mean requests/s (poisson, gamma)")
    cv: float = Field(default=1.0, gt=0, le=100, description="inter-arrival coefficient of variation (gamma)")
    users: int | None = Field(default=None, gt=0, le=10_000_000, description="closed_loop: concurrent users")
    think_time_s: float | None = Field(default=None, ge=0, description="closed_loop: mean think time (0: each "
                                       "user sends its next request as soon as the last one finishes)")
    trace: str | None = Field(default=None, description="trace file (Azure CSV or Mooncake JSONL)")
    time_scale: float = Field(default=1.0, gt=0, le=1e4, description="trace: multiply the request rate by this")
    requests: int | None = Field(default=None, ge=1, le=100_000_000, description="stop after this many requests "
                                 "(offline: how many arrive at time 0); none: arrivals run for sim.duration_s")

    @model_validator(mode="after")
    def _complete(self) -> "Arrival":
        missing = [f for f in self.REQUIRED[self.process] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"process '{self.process}' needs {', '.join(missing)}")
        return self

    @property
    def mean_rate(self) -> float | None:
        """Offered requests/s before latency feedback (closed loop: users / think time); None where the
        client sets no rate (offline, fixed concurrency, traces)."""
        if self.process in ("poisson", "gamma"):
            return self.rate
        if self.process == "closed_loop" and self.think_time_s:
            return self.users / self.think_time_s  # type: ignore[operator]
        return None

    @property
    def finite(self) -> bool:
        """A fixed number of requests (a benchmark run), not a stream over sim.duration_s."""
        return self.requests is not None


class SharedPrefix(_Strict):
    """System prompts shared across requests: the first `tokens` of each prompt come from one of `count`."""

    tokens: int = Field(ge=0, le=10_000_000, description="tokens of the shared system prompt")
    count: int = Field(default=1, ge=1, le=1_000_000, description="distinct system prompts")


class Tenant(_Strict):
    """A customer: its own arrival process, length mix and (optionally) system prompt, in one tier."""

    name: str = Field(description="the tenant's name (metering and reports)")
    tier: str = Field(description="the tier it belongs to (one of `tiers`)")
    arrival: Arrival = Field(description="its own arrival process")
    input_tokens: LengthDist = Field(LengthDist(mean=200), description="its prompt lengths")
    output_tokens: LengthDist = Field(LengthDist(mean=150), description="its output lengths")
    shared_prefix: SharedPrefix | None = Field(None, description="its system prompt, shared across its requests")


class Workload(_Strict):
    """The traffic: one class (`arrival` and lengths) or several `tenants`, and how load varies over time."""

    arrival: Arrival | None = Field(None, description="one traffic class's arrival process")
    tenants: list[Tenant] = Field([], description="several traffic classes, each with its own arrivals")
    rate_profile: RateProfile = Field(RateProfile(), description="how the rate varies over time")
    lengths: str | None = Field(None, description="a public dataset's prompt and output lengths (`planner "
                                "lengths` lists them); input_tokens / output_tokens given here win")
    input_tokens: LengthDist = Field(LengthDist(mean=200), description="prompt lengths")
    output_tokens: LengthDist = Field(LengthDist(mean=150), description="output lengths")
    shared_prefix: SharedPrefix | None = Field(None, description="system prompts shared across requests")
    sessions: int | None = Field(default=None, gt=0, le=100_000_000,
                                 description="requests carry one of this many session ids")

    @model_validator(mode="after")
    def _one_source(self) -> "Workload":
        if self.arrival is None and not self.tenants:
            raise ValueError("give either 'arrival' (one traffic class) or 'tenants'")
        if self.arrival is not None and self.tenants:
            raise ValueError("give 'arrival' or 'tenants', not both (each tenant has its own arrival)")
        for t in self.tenants:
            if t.arrival.process == "closed_loop":
                raise ValueError(f"tenant '{t.name}': closed_loop arrivals are for single-class workloads")
        return self


# ---------------------------------------------------------------- fleet
class Fleet(ServingKnobs):
    """The replicas that serve the workload: each one an engine with the serving knobs above."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    gpu: str = Field("H100-SXM", description="the GPU each replica runs on (a catalog name)")
    replicas: int = Field(default=1, ge=1, le=100_000, description="engine instances, each of "
                          "tensor_parallel_size GPUs")
    scheduling_policy: Literal["fcfs", "priority", "tier_budget"] = Field(
        "fcfs", description="fcfs; priority: the most important tier first; tier_budget: each tier may fill "
        "only its token_budget_share of max_num_batched_tokens")
    tier_preemption: bool = Field(default=True, description="preempt preemptible lower tiers when a higher "
                                  "tier's wait puts its SLA at risk (priority and tier_budget policies)")
    sla_risk_fraction: float = Field(default=0.5, gt=0, le=1, description="at-risk when a waiting request has "
                                     "waited this fraction of its tier's target")
    preemption_mode: Literal["recompute", "swap"] = Field("recompute", description="a preempted sequence's KV "
                                                          "is recomputed later, or swapped to the host and back")
    kv_admission: Literal["on_demand", "reserve_full"] = Field(
        "on_demand", description="on_demand: KV blocks as tokens arrive, preempting when they run out (vLLM, "
        "SGLang); reserve_full: a request is admitted only with KV for its prompt and all its output, and never "
        "preempted (TensorRT-LLM's default GUARANTEED_NO_EVICT)")
    batching: Literal["continuous", "static"] = Field("continuous", description="continuous: iteration-level "
                                                      "batching; static: a batch runs until its longest member ends")
    price_per_gpu_hour: float | None = Field(default=None, gt=0, le=1000, description="override the catalog price")
    spot_replicas: int = Field(default=0, ge=0, le=100_000, description="extra spot replicas for spot_tiers")
    spot_tiers: list[str] = Field(["budget"], description="tiers spot replicas serve")
    spot_price_multiplier: float = Field(default=0.35, gt=0, le=1, description="spot price over on-demand")
    spot_preemptions_per_hour: float = Field(default=0.1, ge=0, le=3600, description="per spot replica")


class Failures(_Strict):
    """GPU failures: a replica fails when any of its GPUs does; detected after a health check; replaced."""

    mtbf_hours_per_gpu: float | None = Field(default=None, gt=0, description="mean time between failures of one "
                                             "GPU; none: no failures")
    health_check_interval_s: float = Field(default=10.0, ge=0, description="a failure is detected this long after")
    replacement_warmup_s: float = Field(default=120.0, ge=0, description="a replacement serves this long after")
    max_reroutes: int = Field(default=3, ge=0, le=1000, description="times a request is moved off failed replicas")


class Autoscaling(_Strict):
    """A replica-count autoscaler on queue depth or KV use, with cooldown and warm-up."""

    enabled: bool = Field(False, description="scale the fleet between min_replicas and max_replicas")
    metric: Literal["queue_depth", "kv_utilization"] = Field("queue_depth", description="what it scales on")
    scale_up_threshold: float = Field(default=8.0, gt=0, description="mean waiting per replica (or KV fraction)")
    scale_down_threshold: float = Field(default=1.0, ge=0, description="scale in below this")
    interval_s: float = Field(default=10.0, gt=0, description="how often it looks")
    cooldown_s: float = Field(default=60.0, ge=0, description="at least this long between two decisions")
    min_replicas: int = Field(default=1, ge=1, le=100_000, description="never fewer")
    max_replicas: int = Field(default=8, ge=1, le=100_000, description="never more")
    warmup_s: float = Field(default=120.0, ge=0, description="a new replica serves this long after it is paid for")

    @model_validator(mode="after")
    def _order(self) -> "Autoscaling":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})")
        if self.scale_down_threshold >= self.scale_up_threshold:
            raise ValueError("scale_down_threshold must be below scale_up_threshold")
        return self


class Router(_Strict):
    """How requests are spread over replicas."""

    policy: Literal["round_robin", "least_outstanding_tokens", "session_affinity"] = Field(
        "least_outstanding_tokens", description="round_robin; least_outstanding_tokens: the replica with the "
        "fewest tokens to go; session_affinity: a session's requests to one replica")
    max_queue_per_replica: int | None = Field(default=None, ge=1, description="reject beyond this many waiting")


class Client(_Strict):
    """The seed: client timeout 30 s, server timeout 25 s, retries with exponential backoff."""

    timeout_s: float | None = Field(default=None, gt=0, description="the client gives up after this long")
    server_timeout_s: float | None = Field(default=None, gt=0, description="the server aborts after this long")
    max_retries: int = Field(default=0, ge=0, le=100, description="retries after a timeout or rejection")
    backoff_base_s: float = Field(default=1.0, gt=0, description="first retry's mean delay (doubles each time)")
    backoff_max_s: float = Field(default=30.0, gt=0, description="longest retry delay")


class SLA(_Strict):
    """A latency objective: this percentile of this metric under this target."""

    tier: str = Field("default", description="the tier it applies to")
    metric: Literal["ttft", "tpot", "e2e"] = Field("e2e", description="time to first token, time per output "
                                                    "token, or end to end")
    percentile: float = Field(default=95, gt=0, lt=100, description="any percentile in (0, 100)")
    target_s: float = Field(gt=0, le=1e6, description="seconds")


class Tier(_Strict):
    """A service tier: its SLA, scheduling priority (0 = most important), reserved share, preemptibility."""

    name: str = Field(description="the tier's name")
    priority: int = Field(default=0, ge=0, description="0 is the most important")
    sla: SLA = Field(description="its objective")
    reserved_share: float = Field(default=0.0, ge=0, le=1, description="capacity reserved for this tier")
    token_budget_share: float | None = Field(default=None, gt=0, le=1,
                                             description="cumulative share of max_num_batched_tokens it may fill")
    preemptible: bool = Field(False, description="its running sequences may be preempted for a more important "
                              "tier's")


class Search(_Strict):
    """The space `planner size` (analytically) and `planner search` explore for the cheapest fleet."""

    gpus: list[str] | None = Field(None, description="GPUs to consider (default: the fleet's)")
    tensor_parallel_sizes: list[Annotated[int, Field(ge=1, le=64)]] = Field([1, 2, 4, 8], min_length=1,
                                                                           description="TP degrees to consider")
    quantizations: list[Quantization] = Field(["bf16", "fp8", "int8", "int4"], min_length=1,
                                              description="weight formats to consider")
    max_num_seqs: list[Annotated[int, Field(ge=1, le=65536)]] | None = Field(
        None, description="max_num_seqs values to consider (default: the fleet's)")
    enable_prefix_caching: list[bool] | None = Field(None, description="prefix caching on/off to consider")
    spot_shares: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default=[0.0], min_length=1, description="share of each fleet on spot (spot tiers only)")
    max_replicas: int = Field(default=256, ge=1, le=100_000,
                              description="largest fleet the search considers per candidate")
    sim_duration_s: float = Field(default=300.0, gt=0, le=86400, description="simulated seconds per evaluation")


class Efficiency(_Strict):
    """Achievable fractions of the catalog peaks, and the fixed costs, for the roofline model.

    Defaults are measured on the lent H100: copy 2.90 TB/s of 3.35 peak, bf16 GEMM 758 of 989 TF/s.
    """

    bandwidth: float = Field(default=0.866, gt=0, le=1)
    compute: float = Field(default=0.766, gt=0, le=1)
    attention_compute: float = Field(default=0.5, gt=0, le=1, description="prefill attention vs GEMM peak")
    interconnect: float = Field(default=0.8, gt=0, le=1)
    host_link_gbps: float = Field(default=25.0, gt=0, description="GPU<->host bandwidth for KV swap")
    allreduce_latency_s: float = Field(default=1e-5, ge=0)
    step_overhead_s: float = Field(default=1.5e-4, ge=0, description="per-iteration launch/scheduling cost")
    workspace_gib: float = Field(default=1.5, ge=0, description="CUDA context, graphs, allocator slack")


class CostModelCfg(_Strict):
    kind: Literal["stack", "roofline", "calibrated"] = Field(
        "stack", description="stack: the serving stack's profile (`stack:`) on the GPU's hardware profile (the "
        "default); roofline: peaks x efficiencies, an optimistic bound; calibrated: this project's engine as "
        "measured (its profile's own overhead fit)")
    profile: str | None = Field(default=None, description="kind calibrated: calibration profile JSON; kind stack: "
                                "the hardware profile (default: the shipped one for the scenario's GPU)")
    step_jitter: bool = Field(default=False, description="kind calibrated: each step times a ratio drawn from the "
                              "profile's measured serving iterations (mean 1; tails of queueing); "
                              "fast-forward off")
    efficiency: Efficiency = Efficiency()

    @model_validator(mode="after")
    def _jitter_needs_profile(self) -> "CostModelCfg":
        if self.step_jitter and self.kind != "calibrated":
            raise ValueError("step_jitter needs kind 'calibrated': its ratios are the profile's measured iterations")
        return self


class Sim(_Strict):
    """How long and how the simulation runs, and how much work it may take on."""

    duration_s: float = Field(default=600.0, gt=0, le=30 * 86400, description="simulated seconds of arrivals")
    warmup_s: float = Field(default=60.0, ge=0, description="arrivals before this are left out of the statistics")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="the same seed gives the same records")
    fast_forward: bool = Field(True, description="advance runs of identical decode steps in one event (exact)")
    drain_limit_s: float = Field(default=600.0, ge=0, description="after arrivals stop, run on at most this long")
    sample_interval_s: float = Field(default=1.0, gt=0, description="time-series sampling interval")
    max_requests: int = Field(20_000_000, ge=1, description="refuse a simulation expected to create more requests "
                              "than this (memory grows with them: about 1 KB each)")
    max_replica_seconds: float = Field(1e7, gt=0, description="refuse a simulation of more replica-seconds than "
                                       "this (simulated replicas x simulated seconds)")

    @model_validator(mode="after")
    def _warmup_inside(self) -> "Sim":
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"warmup_s ({self.warmup_s}) must be below duration_s ({self.duration_s})")
        return self


class Claims(_Strict):
    """Numbers a design document asserts, so the report can check them against the planner's own."""

    instance_throughput_tok_s: float | None = None
    cluster_throughput_tok_s: float | None = None
    cost_per_million_tokens: float | None = None
    headroom: float | None = None
    prefill_latency_s: float | None = None
    decode_latency_per_token_s: float | None = None
    p95_latency_s: float | None = None
    cost_per_hour: float | None = None


class Catalog(_Strict):
    gpus: list[GPUSpec] = []
    models: list[ModelSpec] = []


class Metering(_Strict):
    tenant_cost_by: Literal["tokens", "gpu_time"] = "tokens"


class Scenario(_Strict):
    name: str = "scenario"
    description: str = ""
    model: Union[str, ModelSpec]
    stack: str = Field("vllm", description="serving stack whose costs and defaults answer (cost_model kind stack): "
                       "a preset (vllm, sglang, trtllm, this-engine; `planner stacks`) or a stack profile file")
    workload: Workload
    fleet: Fleet = Fleet()
    router: Router = Router()
    client: Client = Client()
    failures: Failures = Failures()
    autoscaling: Autoscaling = Autoscaling()
    slas: list[SLA] = []
    tiers: list[Tier] = []
    search: Search = Search()
    cost_model: CostModelCfg = CostModelCfg()
    sim: Sim = Sim()
    claims: Claims = Claims()
    catalog: Catalog = Catalog()
    metering: Metering = Metering()
    # what loading decided for the user (a TP degree chosen because none was given): every report says so
    _derived: list[str] = PrivateAttr(default_factory=list)

    @property
    def derived(self) -> list[str]:
        return self._derived

    # ------------------------------------------------ catalog resolution
    def gpu_spec(self) -> GPUSpec:
        own = {g.name: g for g in self.catalog.gpus}
        return own.get(self.fleet.gpu) or GPUS[self.fleet.gpu]

    def model_spec(self) -> ModelSpec:
        if isinstance(self.model, ModelSpec):
            return self.model
        own = {m.name: m for m in self.catalog.models}
        return own.get(self.model) or MODELS[self.model]

    @property
    def price_per_gpu_hour(self) -> float:
        return self.fleet.price_per_gpu_hour or self.gpu_spec().price_per_hour

    def all_slas(self) -> list[SLA]:
        """Scenario-wide SLAs plus each tier's (tagged with the tier)."""
        return list(self.slas) + [t.sla.model_copy(update={"tier": t.name}) for t in self.tiers]

    @property
    def max_model_len(self) -> int:
        return self.fleet.max_model_len or self.model_spec().max_position_embeddings


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith(("function-", "union["))))


def _semantic_problems(sc: Scenario) -> list[tuple[str, str]]:
    """Checks that need the catalogs: names resolve, TP divides heads, the model fits."""
    from planner.memory import memory_plan  # local: memory imports scenario types

    gpus = {**GPUS, **{g.name: g for g in sc.catalog.gpus}}
    models = {**MODELS, **{m.name: m for m in sc.catalog.models}}
    probs: list[tuple[str, str]] = []
    if sc.fleet.gpu not in gpus:
        probs.append(("fleet.gpu", f"unknown GPU '{sc.fleet.gpu}'; known: {', '.join(sorted(gpus))}"))
    if isinstance(sc.model, str) and sc.model not in models:
        probs.append(("model", f"unknown model '{sc.model}'; known: {', '.join(sorted(models))}"))
    if probs:
        return probs
    tiers = {t.name for t in sc.tiers}
    for i, t in enumerate(sc.workload.tenants):
        if t.tier not in tiers:
            known = ", ".join(sorted(tiers)) or "none"
            probs.append((f"workload.tenants.{i}.tier", f"unknown tier '{t.tier}'; tiers: {known}"))
    for g_name in sc.search.gpus or []:
        if g_name not in gpus:
            probs.append(("search.gpus", f"unknown GPU '{g_name}'"))
    a = sc.autoscaling
    if a.enabled and not a.min_replicas <= sc.fleet.replicas <= a.max_replicas:
        probs.append(("fleet.replicas", f"{sc.fleet.replicas} is outside autoscaling's "
                                        f"[{a.min_replicas}, {a.max_replicas}]"))
    if sc.fleet.spot_replicas:
        if not sc.tiers:
            probs.append(("fleet.spot_replicas", "spot replicas serve spot_tiers: the scenario defines no tiers"))
        elif not set(sc.fleet.spot_tiers) <= tiers:
            probs.append(("fleet.spot_tiers", f"unknown tier(s) {sorted(set(sc.fleet.spot_tiers) - tiers)}"))
        if sc.autoscaling.enabled:
            probs.append(("fleet.spot_replicas", "spot replicas with autoscaling are not modelled"))
    res = sum(t.reserved_share for t in sc.tiers)
    if res and res >= 1:
        probs.append(("tiers", f"reserved shares add up to {res:g}: nothing would be left shared"))
    elif res and sc.autoscaling.enabled:
        probs.append(("tiers", "reserved_share with autoscaling is not modelled: reserve by fixed replicas"))
    if sc.fleet.scheduling_policy != "fcfs" and not sc.tiers:
        probs.append(("fleet.scheduling_policy", f"'{sc.fleet.scheduling_policy}' needs tiers"))
    if probs:
        return probs
    m, g, tp = sc.model_spec(), sc.gpu_spec(), sc.fleet.tensor_parallel_size
    if why := m.tp_problem(tp):
        probs.append(("fleet.tensor_parallel_size", why))
    if sc.fleet.quantization == "fp8" and g.fp8_tflops is None:
        pass  # weight-only FP8 (Marlin-style) still works on pre-Hopper GPUs; the cost model computes in bf16
    if sc.fleet.kv_cache_dtype == "fp8" and g.fp8_tflops is None and g.name.startswith("A100"):
        pass  # FP8 KV is storage only; allowed
    if sc.max_model_len > m.max_position_embeddings:
        probs.append(("fleet.max_model_len",
                      f"{sc.max_model_len} exceeds {m.name}'s context of {m.max_position_embeddings}"))
    if sc.fleet.max_num_batched_tokens < sc.fleet.max_num_seqs and sc.fleet.batching == "continuous":
        probs.append(("fleet.max_num_batched_tokens",
                      f"{sc.fleet.max_num_batched_tokens} is below max_num_seqs ({sc.fleet.max_num_seqs}): "
                      "a full decode batch could never be scheduled"))
    if not sc.fleet.enable_chunked_prefill and sc.fleet.max_num_batched_tokens < sc.max_model_len:
        probs.append(("fleet.max_num_batched_tokens",
                      f"{sc.fleet.max_num_batched_tokens} is below max_model_len ({sc.max_model_len}); without "
                      "chunked prefill a long prompt could never be scheduled (vLLM refuses this too)"))
    if probs:
        return probs
    plan = memory_plan(sc)
    if plan.kv_budget_bytes <= 0:
        probs.append(("fleet.tensor_parallel_size",
                      f"{m.name} at {sc.fleet.quantization} does not fit: weights need "
                      f"{plan.weight_bytes_per_gpu / 2**30:.1f} GiB per GPU with TP={tp}, plus "
                      f"{plan.workspace_bytes / 2**30:.1f} GiB workspace, but {g.name} offers "
                      f"{plan.usable_bytes / 2**30:.1f} GiB at gpu_memory_utilization={sc.fleet.gpu_memory_utilization}"
                      f"; raise TP (at least {plan.min_tp_to_fit or 'more than 8'}) or quantize"))
    elif plan.max_seq_blocks > plan.num_blocks:
        probs.append(("fleet.max_model_len",
                      f"one sequence of {sc.max_model_len} tokens needs {plan.max_seq_blocks} KV blocks but only "
                      f"{plan.num_blocks} fit; lower max_model_len or raise TP"))
    return probs


def scenario_from_dict(data: dict, base_dir: Path | None = None) -> Scenario:
    """Validate a parsed document; relative trace paths resolve against `base_dir`."""
    if not isinstance(data, dict):
        raise InputError([("", f"a scenario must be a mapping, got {type(data).__name__}")])
    try:
        sc = Scenario.model_validate(_with_stack_defaults(_with_length_preset(data), base_dir))
    except ValidationError as e:
        raise InputError([(_loc(err["loc"]), err["msg"].removeprefix("Value error, ")) for err in e.errors()])
    except RecursionError:
        raise InputError([("", "the document nests too deeply to be a scenario")])
    if base_dir is not None:
        _resolve_paths(sc, base_dir)
    probs = _semantic_problems(sc)
    from planner.stacks import load_stack
    try:  # named even where another cost model answers: a stack that does not exist is a mistake either way
        load_stack(sc.stack)
    except InputError as e:
        probs = list(e.problems) + probs
    fleet = data.get("fleet")
    tp_given = isinstance(fleet, dict) and "tensor_parallel_size" in fleet
    if probs and not tp_given and all(f in ("fleet.tensor_parallel_size", "fleet.max_model_len") for f, _ in probs):
        left = _smallest_tp_that_fits(sc)
        probs = probs if left is None else left
    if probs:
        raise InputError(probs)
    return sc


def _smallest_tp_that_fits(sc: Scenario) -> list:
    """No TP degree given and the model does not fit at TP=1: the smallest degree that does (the memory plan and
    the model's heads agree), said in the scenario's derived notes. Returns the remaining problems ([] if one
    fits, None if none up to 64 does)."""
    m = sc.model_spec()
    first = sc.fleet.tensor_parallel_size
    for tp in (2, 4, 8, 16, 32, 64):
        if m.tp_problem(tp):
            continue
        sc.fleet.tensor_parallel_size = tp
        if not _semantic_problems(sc):
            sc._derived.append(f"fleet.tensor_parallel_size not given: {m.name} at {sc.fleet.quantization} does not "
                               f"fit one {sc.fleet.gpu} at TP={first}; TP={tp} is the smallest that does (set it, "
                               "or quantize, to choose otherwise; `planner search` compares the options)")
            return []
    sc.fleet.tensor_parallel_size = first
    return None


def _with_stack_defaults(data: dict, base_dir: Path | None = None) -> dict:
    """Under cost_model kind stack, the fleet knobs a document leaves out take the stack's defaults (what a user
    of that stack gets without setting them); knobs the document sets win. An unknown stack is reported after
    validation, with the other problems."""
    cm = data.get("cost_model")
    kind = cm.get("kind", "stack") if isinstance(cm, dict) else "stack"
    name = data.get("stack", "vllm")
    if kind != "stack" or not isinstance(name, str):
        return data
    from planner.stacks import load_stack, presets
    if name not in presets() and base_dir is not None and not Path(name).is_absolute() \
            and (base_dir / name).is_file():
        name = str(base_dir / name)
    try:
        defaults = load_stack(name).defaults
    except InputError:
        return data
    fleet = data.get("fleet", {})
    if not isinstance(fleet, dict) or not defaults:
        return data
    return {**data, "fleet": {**defaults, **fleet}}


def _resolve_paths(sc: Scenario, base: Path) -> None:
    def fix(p: str | None) -> str | None:
        if p is None or Path(p).is_absolute():
            return p
        cand = (base / p).resolve()
        return str(cand) if cand.exists() else p

    wl = sc.workload
    for src in [wl] + list(wl.tenants):
        for part in (src.arrival, src.input_tokens, src.output_tokens):
            if part is not None:
                part.trace = fix(part.trace)
    sc.cost_model.profile = fix(sc.cost_model.profile)
    from planner.stacks import presets
    if sc.stack not in presets():
        sc.stack = fix(sc.stack)


def load_scenario(path: str | Path) -> Scenario:
    """Read YAML or JSON; every failure becomes an InputError naming the file or the field."""
    p = Path(path)
    if not p.exists():
        raise InputError([("", f"scenario file '{p}' does not exist")])
    if not p.is_file():
        raise InputError([("", f"'{p}' is a directory, not a scenario file")])
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError([("", f"{p}: not UTF-8 text (byte {e.start}): save the scenario as UTF-8")])
    except OSError as e:
        raise InputError([("", f"{p}: unreadable: {e.strerror}")])
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise InputError([("", f"{p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {e}")])
    except RecursionError:
        raise InputError([("", f"{p}: nests too deeply to be a scenario")])
    return scenario_from_dict(data, base_dir=p.parent)


def with_overrides(sc: Scenario, overrides: dict[str, tuple[object, str]]) -> Scenario:
    """The scenario with fields replaced (`"sim.duration_s": (value, "--duration")`), validated again like the
    file was: a bad override is an error naming the option and the field, not a silently clamped value."""
    doc = sc.model_dump(exclude_unset=False)
    for path, (value, _) in overrides.items():
        if value is None:
            continue
        node = doc
        *parents, last = path.split(".")
        for k in parents:
            node = node[k]
        node[last] = value
    try:
        return scenario_from_dict(doc)
    except InputError as e:
        flags = {path: flag for path, (v, flag) in overrides.items() if v is not None}
        raise InputError([(f"{flags[f]} ({f})" if f in flags else f, m) for f, m in e.problems])


def _with_length_preset(data: dict) -> dict:
    """`workload.lengths: NAME` fills input_tokens and output_tokens from a public dataset's lengths, unless the
    document gives them."""
    wl = data.get("workload")
    if not isinstance(wl, dict) or not wl.get("lengths"):
        return data
    name = wl["lengths"]
    presets = length_presets()
    if name not in presets:
        raise InputError([("workload.lengths", f"unknown length preset '{name}'; known: {', '.join(sorted(presets))}")])
    wl = dict(wl)
    for part in ("input_tokens", "output_tokens"):
        wl.setdefault(part, presets[name][part])
    return {**data, "workload": wl}


def length_presets() -> dict[str, dict]:
    """Public datasets' prompt and output lengths (planner/data/lengths.yaml), with their sources."""
    return yaml.safe_load(resources.lengths_file().read_text())["presets"]
