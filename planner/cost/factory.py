"""The one place a scenario's cost model is built."""
from __future__ import annotations

from planner.cost.base import StepCostModel
from planner.cost.calibrated import CalibratedCostModel
from planner.cost.roofline import RooflineCostModel


def roofline_kwargs(sc) -> dict:
    """The roofline's parameters for a scenario's fleet and efficiencies."""
    e, f = sc.cost_model.efficiency, sc.fleet
    return dict(tp=f.tensor_parallel_size, quantization=f.quantization, kv_cache_dtype=f.kv_cache_dtype,
                bandwidth_eff=e.bandwidth, compute_eff=e.compute, attention_compute_eff=e.attention_compute,
                interconnect_eff=e.interconnect, allreduce_latency_s=e.allreduce_latency_s,
                step_overhead_s=e.step_overhead_s)


def build_cost_model(sc) -> StepCostModel:
    """The cost model a scenario asks for."""
    kw = roofline_kwargs(sc)
    if sc.cost_model.kind == "stack":
        from planner.cost.stack import StackCostModel
        from planner.stacks import hardware_profile_for, load_stack
        stack = load_stack(sc.stack)
        hw = hardware_profile_for(sc)
        if stack.calibrated:  # this engine: its own calibrated model
            return CalibratedCostModel.from_profile(hw, sc.model_spec(), sc.gpu_spec(),
                                                    max_num_batched_tokens=sc.fleet.max_num_batched_tokens, **kw)
        return StackCostModel.from_profile(hw, sc.model_spec(), sc.gpu_spec(), stack,
                                    max_num_batched_tokens=sc.fleet.max_num_batched_tokens, **kw)
    if sc.cost_model.kind == "calibrated":
        return CalibratedCostModel.from_profile(sc.cost_model.profile, sc.model_spec(), sc.gpu_spec(),
                                                max_num_batched_tokens=sc.fleet.max_num_batched_tokens, **kw)
    return RooflineCostModel(sc.model_spec(), sc.gpu_spec(), **kw)
