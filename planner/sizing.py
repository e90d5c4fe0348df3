"""Analytic sizing: the senior engineer's back-of-envelope, computed from the cost model.

Steady-state continuous batching at a per-instance rate lambda: every step
decodes the running batch B and mixes in the prompts that arrived meanwhile,
so a step lasts t = t_decode(B) / (1 - lambda * t_prefill) and B = lambda * out * t
(Little's law over a request's `out` steps). Solving that fixed point gives the
operating batch, the step time and so the latency; capacity is the rate at which
B reaches its limit (max_num_seqs or the KV pool). Means only: tails need
`planner simulate`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from contract.errors import InputError
from planner.cost import RooflineCostModel, StepCostModel, build_cost_model
from planner.cost.base import ScaledCostModel
from planner.memory import MemoryPlan, memory_plan
from planner.space import candidates, configure, fits
from planner.stacks import presets
from planner.workload_stats import mean_lengths, mean_rate, share_too_long


@dataclass
class OperatingPoint:
    rate: float  # req/s offered to one instance
    batch: float
    step_s: float
    ttft_s: float
    tpot_s: float
    e2e_s: float
    saturated: bool


@dataclass
class InstancePerf:
    max_batch: int
    kv_limited_batch: int
    batch_limit: str  # "max_num_seqs" or "KV capacity"
    prefill_s: float  # isolated prompt prefill
    decode_step_batch1_s: float
    decode_step_max_batch_s: float
    marginal_prefill_s: float
    capacity_req_s: float
    capacity_tok_s: float  # input + output tokens/s at max batch
    decode_bound: str  # at max batch: "bandwidth" or "compute"


@dataclass
class SizingReport:
    scenario: str
    model: str
    gpu: str
    tp: int
    quantization: str
    demand: dict
    memory: dict
    instance: InstancePerf
    fleet_given: dict
    needed: dict
    binding: list[str]
    cost: dict
    sla: dict | None
    claims: list[dict] = field(default_factory=list)
    alternatives: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cost_model: str = ""
    roofline_bound: dict | None = None
    # the published results of the answering stack on this GPU, held out from its fit (planner/evidence.py)
    evidence: dict | None = None
    # the same question with every step `step_margin` slower than modelled (see `margin_check`)
    margin: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _decode_step(cost: StepCostModel, b: float, ctx: float) -> float:
    """Decode step at a (possibly fractional) batch: interpolate between integer batches."""
    lo = max(1, int(b))
    hi = lo + 1
    t_lo = cost.decode_time(lo, int(lo * ctx))
    if b <= lo:
        return t_lo
    t_hi = cost.decode_time(hi, int(hi * ctx))
    return t_lo + (b - lo) * (t_hi - t_lo)


def marginal_prefill(cost: StepCostModel, b: int, ctx: float, n_in: int) -> float:
    """Extra step time from one more prompt in a step of batch b that already mixes one in: at load, steps with
    prompts are the rule, and comparing a mixed step with a decode-only one would charge the gap between the two
    kinds of step (their host paths differ) to every prompt."""
    one = cost.time(b + n_in, b + 1, int(b * ctx), [(n_in, 0)])
    two = cost.time(b + 2 * n_in, b + 2, int(b * ctx), [(n_in, 0), (n_in, 0)])
    return max(two - one, 0.0)


def operating_point(cost: StepCostModel, rate: float, n_in: float, n_out: float, max_batch: int,
                    memo: dict | None = None) -> OperatingPoint:
    """The steady state at `rate`: the batch at which arrivals balance completions. `memo` keeps the marginal
    prefill per integer batch across calls for the same cost model and lengths (a sizing loop asks for the same
    batches at many rates; the cost model is pure, so this changes no answer)."""
    ctx = n_in + n_out / 2
    t_pf_alone = cost.time(int(n_in), 1, 0, [(int(n_in), 0)])
    b, t = 1.0, _decode_step(cost, 1, ctx)
    saturated = False
    memo = {} if memo is None else memo
    for _ in range(200):
        bi = max(1, round(b))
        t_pf = memo.get(bi)
        if t_pf is None:
            t_pf = memo[bi] = marginal_prefill(cost, bi, ctx, int(n_in))
        load = rate * t_pf
        if load >= 1:
            saturated = True
            break
        t = _decode_step(cost, max(b, 1.0), ctx) / (1 - load)
        nb = rate * n_out * t
        if nb > max_batch:
            saturated = True
            b = float(max_batch)
            t = _decode_step(cost, b, ctx) / (1 - min(load, 0.999))
            break
        if abs(nb - b) < 1e-4 * max(b, 1):
            b = nb
            break
        b = 0.5 * (b + nb)
    ttft = t_pf_alone + t / 2  # wait for the step in flight, then the prompt's own step
    tpot = t
    e2e = ttft + max(n_out - 1, 0) * tpot
    return OperatingPoint(rate, b, t, ttft, tpot, e2e, saturated)


def saturated_step(cost: StepCostModel, b: float, ctx: float, n_in: float, n_out: float) -> tuple[float, float]:
    """(seconds, prompts) of the step a saturated engine repeats: `b` decodes and the b / n_out prompts per step
    that keep the batch full (a fractional count averages the steps with floor and ceil prompts). This is the
    step the simulator reaches at saturation: mixed, not decode-only plus separate prefills."""
    k = b / max(n_out, 1.0)
    lo = int(k)
    ctx_sum = int(b * ctx)

    def step(j: int) -> float:
        if j == 0:
            return cost.time(int(b), int(b), ctx_sum)
        return cost.time(int(b) + j * int(n_in), int(b) + j, ctx_sum, [(int(n_in), 0)] * j)
    frac = k - lo
    return (1 - frac) * step(lo) + (frac * step(lo + 1) if frac else 0.0), k


def instance_perf(cost: StepCostModel, mem: MemoryPlan, max_num_seqs: int, n_in: float, n_out: float,
                  max_num_batched_tokens: int | None = None) -> InstancePerf:
    ctx = n_in + n_out / 2
    kv_batch = mem.num_blocks // max(1, mem.blocks_for(math.ceil(ctx)))
    b = max(1, min(max_num_seqs, kv_batch))
    if max_num_batched_tokens:  # the token budget caps the batch it can keep full: b + (b / n_out) n_in <= budget
        b = max(1, min(b, int(max_num_batched_tokens * n_out / (n_in + n_out))))
    t_pf = marginal_prefill(cost, b, ctx, int(n_in))
    t_d = cost.decode_time(b, int(b * ctx))
    t_sat, k = saturated_step(cost, b, ctx, n_in, n_out)
    cap = k / t_sat
    bound = "bandwidth"
    if isinstance(cost, RooflineCostModel):
        bound = cost.gemm_bound(b)
    return InstancePerf(max_batch=b, kv_limited_batch=kv_batch,
                        batch_limit="KV capacity" if kv_batch < max_num_seqs else "max_num_seqs",
                        prefill_s=cost.time(int(n_in), 1, 0, [(int(n_in), 0)]),
                        decode_step_batch1_s=cost.decode_time(1, int(ctx)), decode_step_max_batch_s=t_d,
                        marginal_prefill_s=t_pf, capacity_req_s=cap, capacity_tok_s=cap * (n_in + n_out),
                        decode_bound=bound)


def _meets(op: OperatingPoint, slas) -> bool:
    if op.saturated:
        return False
    return all({"ttft": op.ttft_s, "tpot": op.tpot_s, "e2e": op.e2e_s}[s.metric] <= s.target_s for s in slas)


def instances_needed(cost, perf: InstancePerf, rate: float, n_in, n_out, slas,
                     max_util: float = 1.0) -> tuple[int, int]:
    """(instances for throughput alone, instances that also meet the SLA's mean). 0 = impossible."""
    n_cap = max(1, math.ceil(rate / (perf.capacity_req_s * max_util)))
    n = n_cap
    memo: dict = {}
    for _ in range(10000):
        if _meets(operating_point(cost, rate / n, n_in, n_out, perf.max_batch, memo), slas):
            return n_cap, n
        if n > 64 * n_cap + 64:
            return n_cap, 0
        n += max(1, n // 50)
    return n_cap, 0


# Held-out serving runs of this engine put the calibrated model's per-step time at 0.93-1.05 of the measured one
# (grids 5 and 6, lab/validation/heldout); near saturation that error decides whether a queue forms. A plan is
# checked against steps this much slower than modelled unless the caller asks for another margin.
DEFAULT_STEP_MARGIN = 0.10


def margin_check(cost: StepCostModel, mem: MemoryPlan, f, peak: float, n_in: float, n_out: float, slas,
                 n_sla: int, cap: float, margin: float) -> dict:
    """The sizing answer again with every step `margin` slower: capacity per instance, instances needed, and
    whether the given fleet and the needed one (`n_sla` instances, 0: none) still meet the SLA at peak; beside
    them the answer's own instances and utilization at peak (`cap`: its capacity per instance), which
    `describe_margin` reads."""
    slow = ScaledCostModel(cost, 1.0 + margin)
    perf = instance_perf(slow, mem, f.max_num_seqs, n_in, n_out, f.max_num_batched_tokens)
    _, n_slow = instances_needed(slow, perf, peak, n_in, n_out, slas)
    out = dict(step_margin=margin, capacity_req_s=perf.capacity_req_s, instances_needed_at_peak=n_slow or None,
               given_meets_sla_at_peak=_meets(operating_point(slow, peak / f.replicas, n_in, n_out, perf.max_batch),
                                              slas),
               answer_instances=n_sla or None, answer_utilization_at_peak=peak / (n_sla * cap) if n_sla else None)
    if n_sla:
        out["needed_meets_sla_at_peak"] = _meets(operating_point(slow, peak / n_sla, n_in, n_out, perf.max_batch),
                                                 slas)
    return out


def size(sc, cost: StepCostModel | None = None, with_alternatives: bool = True, bound: bool = True,
         step_margin: float = DEFAULT_STEP_MARGIN) -> SizingReport:
    """bound: also what is shown beside the answer -- the scenario sized under the roofline (the optimistic bound),
    the stack preset's published evidence and the answer with steps `step_margin` slower (callers that only read
    a capacity -- the alternatives, search's lower bounds, max-rate -- leave it out)."""
    if not (math.isfinite(step_margin) and 0 <= step_margin < 10):
        raise InputError([("step_margin", f"must be a fraction in [0, 10), got {step_margin}")])
    m, g, f = sc.model_spec(), sc.gpu_spec(), sc.fleet
    cost = cost or build_cost_model(sc)
    mem = memory_plan(sc)
    n_in, n_out = mean_lengths(sc)
    avg = mean_rate(sc)
    if avg is None:
        raise InputError([("workload.arrival.process", f"'{sc.workload.arrival.process}' sets no arrival rate "
                           "(a benchmark's fixed count or concurrency): `planner simulate` answers it; `planner "
                           "size` needs a rate (poisson, gamma, a trace, or closed_loop with a think time)")])
    too_long = share_too_long(sc)
    peak = avg * sc.workload.rate_profile.peak_factor
    slas = sc.all_slas()
    sla = min(slas, key=lambda s: s.target_s) if slas else None
    demand = dict(avg_req_s=avg, peak_req_s=peak, mean_input_tokens=n_in, mean_output_tokens=n_out,
                  avg_tok_s=avg * (n_in + n_out), peak_tok_s=peak * (n_in + n_out),
                  avg_output_tok_s=avg * n_out)
    perf = instance_perf(cost, mem, f.max_num_seqs, n_in, n_out, f.max_num_batched_tokens)
    # the floor no batching can beat: every token costs 2 x params FLOPs at the achievable compute rate
    flops_per_req = 2.0 * (m.num_params - m.vocab_size * m.hidden_size) * (n_in + n_out)
    gpu_flops = (g.fp8_tflops if f.quantization == "fp8" and g.fp8_tflops else g.bf16_tflops) * 1e12 \
        * sc.cost_model.efficiency.compute
    demand["compute_floor_gpus_avg"] = avg * flops_per_req / gpu_flops
    demand["compute_floor_gpus_peak"] = peak * flops_per_req / gpu_flops
    memory = dict(weights_gib_per_gpu=mem.weight_bytes_per_gpu / 2**30, workspace_gib=mem.workspace_bytes / 2**30,
                  usable_gib=mem.usable_bytes / 2**30, kv_gib_per_gpu=max(mem.kv_budget_bytes, 0) / 2**30,
                  kv_bytes_per_token_per_gpu=mem.kv_bytes_per_token_gpu, kv_blocks=mem.num_blocks,
                  kv_tokens=mem.kv_tokens, min_tp_to_fit=mem.min_tp_to_fit)

    def evaluate(n: int) -> dict:
        op_avg = operating_point(cost, avg / n, n_in, n_out, perf.max_batch)
        op_peak = operating_point(cost, peak / n, n_in, n_out, perf.max_batch)
        cap = n * perf.capacity_req_s
        return dict(instances=n, gpus=n * f.tensor_parallel_size, capacity_req_s=cap,
                    capacity_tok_s=cap * (n_in + n_out), headroom_at_avg=cap / avg if avg else math.inf,
                    headroom_at_peak=cap / peak if peak else math.inf,
                    avg=asdict(op_avg), peak=asdict(op_peak),
                    meets_sla_at_peak=_meets(op_peak, slas))

    given = evaluate(f.replicas)
    n_cap, n_sla = instances_needed(cost, perf, peak, n_in, n_out, slas)
    needed = dict(for_throughput_at_peak=n_cap, with_sla_at_peak=n_sla or None,
                  gpus=(n_sla * f.tensor_parallel_size) if n_sla else None)
    if n_sla:
        needed.update(evaluate(n_sla))

    binding: list[str] = []
    if too_long:
        binding.append(f"max_model_len: {too_long:.1%} of the requests need more than fleet.max_model_len "
                       f"({sc.max_model_len}) tokens; the engine rejects them at any load")
        # rejected requests count against every SLA: past its tail, no fleet meets it
        if too_long >= 1 or (slas and too_long > 1 - min(x.percentile for x in slas) / 100):
            n_sla = 0
            needed.update(with_sla_at_peak=None, gpus=None)
    floor = demand["compute_floor_gpus_peak"]
    if floor > f.replicas * f.tensor_parallel_size:
        eff = sc.cost_model.efficiency.compute
        binding.append(f"compute: peak demand needs at least {floor:.0f} GPUs at {eff:.0%} "
                       f"of {g.name}'s peak even at perfect batching; the given fleet has "
                       f"{f.replicas * f.tensor_parallel_size}")
    if mem.min_tp_to_fit and mem.min_tp_to_fit > 1:
        binding.append(f"memory: weights need TP >= {mem.min_tp_to_fit} on {g.name}")
    if perf.batch_limit == "KV capacity":
        binding.append(f"KV capacity: at most {perf.kv_limited_batch} sequences of mean length fit "
                       f"(max_num_seqs is {f.max_num_seqs})")
    binding.append(f"decode at max batch {perf.max_batch} is {perf.decode_bound}-bound")
    if not n_sla and sla is not None:
        b1 = operating_point(cost, 1e-9, n_in, n_out, perf.max_batch)
        binding.append(f"latency SLA: unreachable at this TP -- even an idle instance takes "
                       f"{ {'ttft': b1.ttft_s, 'tpot': b1.tpot_s, 'e2e': b1.e2e_s}[sla.metric]:.2f} s "
                       f"({sla.metric}) against a {sla.target_s} s target")
    elif n_sla > n_cap:
        binding.append(f"latency SLA: {n_sla} instances needed to meet it vs {n_cap} for throughput alone")
    else:
        binding.append("throughput: the SLA is met once capacity covers peak demand")

    price = sc.price_per_gpu_hour
    per_hour_given = f.replicas * f.tensor_parallel_size * price
    served_tok_s = min(avg, given["capacity_req_s"]) * (n_in + n_out)
    cost_d = dict(price_per_gpu_hour=price, fleet_per_hour=per_hour_given,
                  per_million_tokens_at_avg=per_hour_given / (served_tok_s * 3600) * 1e6 if served_tok_s else None,
                  per_million_tokens_at_capacity=per_hour_given / (given["capacity_tok_s"] * 3600) * 1e6,
                  needed_per_hour=(n_sla * f.tensor_parallel_size * price) if n_sla else None)
    if n_sla:
        cost_d["needed_per_million_tokens_at_avg"] = cost_d["needed_per_hour"] / (avg * (n_in + n_out) * 3600) * 1e6

    rep = SizingReport(scenario=sc.name, model=m.name, gpu=g.name, tp=f.tensor_parallel_size,
                       quantization=f.quantization, demand=demand, memory=memory, instance=perf,
                       fleet_given=given, needed=needed, binding=binding, cost=cost_d,
                       sla=sla.model_dump() if sla else None)
    rep.claims = check_claims(sc, rep)
    rep.notes += sc.derived
    rep.cost_model = cost.description
    rep.notes.append(f"cost model: {cost.description}")
    if bound and sc.cost_model.kind == "stack" and sc.stack in presets():  # its public results say how good it is
        from planner import evidence
        rep.evidence = evidence.stack_evidence(sc.stack, g.name)
        rep.notes.append(evidence.describe(rep.evidence))
    if bound and sc.cost_model.kind != "roofline":  # the optimistic bound beside the answer
        rl = sc.model_copy(update={"cost_model": sc.cost_model.model_copy(update={"kind": "roofline",
                                                                                  "profile": None})})
        rb = size(rl, with_alternatives=False, bound=False)
        rep.roofline_bound = {"capacity_req_s": rb.instance.capacity_req_s,
                              "instances_needed_at_peak": rb.needed.get("with_sla_at_peak")}
        nb = rb.needed.get("with_sla_at_peak")
        rep.notes.append(f"roofline bound (peaks x efficiencies, no host overhead): capacity "
                         f"{rb.instance.capacity_req_s:.3g} req/s per instance vs {perf.capacity_req_s:.3g} here"
                         + (f"; {nb} instances at peak vs {n_sla}" if nb and n_sla else ""))
    if bound and step_margin > 0:
        rep.margin = margin_check(cost, mem, f, peak, n_in, n_out, slas, n_sla, perf.capacity_req_s, step_margin)
        rep.notes.append(describe_margin(rep.margin))
    rep.notes.append("latencies are means at steady state; tails and queueing come from `planner simulate`")
    if with_alternatives:
        rep.alternatives = alternatives(sc)
    return rep


def margin_warns(mg: dict) -> bool:
    """The answer does not survive the margin, or runs above 90% of capacity at peak."""
    return mg["instances_needed_at_peak"] != mg["answer_instances"] or (mg["answer_utilization_at_peak"] or 0) > 0.9


def describe_margin(mg: dict) -> str:
    """One line a user reads beside the answer: does it survive slower steps, and how close to saturation is it."""
    m, n, n_sla = mg["step_margin"], mg["instances_needed_at_peak"], mg["answer_instances"]
    util_at_peak = mg["answer_utilization_at_peak"]
    txt = f"with steps {m:.0%} slower than modelled: "
    if not n_sla:
        txt += "still no fleet at this TP meets the SLA" if not n else f"{n} instances would meet the SLA"
    elif n == n_sla:
        txt += f"the same {n_sla} instances still meet the SLA at peak"
    else:
        txt += (f"{n} instances are needed (vs {n_sla})" if n else "no fleet at this TP meets the SLA") + \
            " -- size with that margin if the model's step times are not checked on your stack"
    if util_at_peak is not None and util_at_peak > 0.9:
        txt += (f"; the answer runs at {util_at_peak:.0%} of capacity at peak, where a few per cent of step time "
                "change queueing latency by tens of per cent")
    return txt


def alternatives(sc) -> list[dict]:
    """The same question over the scenario's search space (planner.space), sized analytically: what a reviewer
    asks next. Ranked by $/hour by the renderer. Prefix caching and spot shares do not change the analytic
    answer, so each (GPU, quantization, TP, max_num_seqs) is sized once."""
    out, seen = [], set()
    for c in candidates(sc):
        dims = (c.gpu, c.quantization, c.tp, c.max_num_seqs)
        if dims in seen or not fits(sc, c):
            continue
        seen.add(dims)
        r = size(configure(sc, c), with_alternatives=False, bound=False)
        out.append(dict(gpu=c.gpu, quantization=c.quantization, tp=c.tp, max_num_seqs=c.max_num_seqs,
                        instances=r.needed["with_sla_at_peak"], gpus=r.needed["gpus"],
                        per_hour=r.cost.get("needed_per_hour"),
                        per_million_tokens=r.cost.get("needed_per_million_tokens_at_avg"),
                        e2e_at_peak_s=(r.needed.get("peak") or {}).get("e2e_s"),
                        decode_batch1_ms=r.instance.decode_step_batch1_s * 1e3))
    return out


def check_claims(sc, rep: SizingReport) -> list[dict]:
    """Each number the scenario says a document claimed, beside the planner's figure."""
    c = sc.claims
    given = rep.fleet_given
    rows = []

    def add(what: str, claimed, ours, note: str = ""):
        if claimed is None or ours is None:
            return
        ratio = claimed / ours if ours else math.inf
        rows.append(dict(claim=what, claimed=claimed, planner=ours, ratio=ratio,
                         verdict="consistent" if 0.8 <= ratio <= 1.25 else "DISAGREES", note=note))

    add("instance throughput (tok/s)", c.instance_throughput_tok_s, rep.instance.capacity_tok_s)
    add("cluster throughput (tok/s)", c.cluster_throughput_tok_s, given["capacity_tok_s"])
    add("headroom at average load", c.headroom, given["headroom_at_avg"])
    add("prefill latency (s)", c.prefill_latency_s, rep.instance.prefill_s)
    add("decode time per token (s)", c.decode_latency_per_token_s, given["peak"]["tpot_s"],
        "at the given fleet's peak operating point")
    add("P95 end-to-end latency (s)", c.p95_latency_s, given["peak"]["e2e_s"], "planner: mean at peak")
    add("fleet cost ($/hour)", c.cost_per_hour, rep.cost["fleet_per_hour"])
    add("$ per 1M tokens", c.cost_per_million_tokens, rep.cost["per_million_tokens_at_capacity"],
        "planner: the given fleet at its own capacity")
    if c.cost_per_million_tokens is not None and c.cost_per_hour and c.cluster_throughput_tok_s:
        implied = c.cost_per_hour / (c.cluster_throughput_tok_s * 3600) * 1e6
        add("$ per 1M tokens vs the claim's own $/hour and tok/s", c.cost_per_million_tokens, implied,
            f"${c.cost_per_hour:g}/h / ({c.cluster_throughput_tok_s:g} tok/s x 3600 s) x 1e6 = ${implied:.3f}")
    return rows
