"""Step-cost models behind one interface (`StepCostModel`), built by one factory (`build_cost_model`)."""
from planner.cost.base import Batch, ConstantCostModel, StepCostModel, StepTime
from planner.cost.calibrated import CalibratedCostModel
from planner.cost.factory import build_cost_model
from planner.cost.roofline import ACT_BYTES, RooflineCostModel

__all__ = ["ACT_BYTES", "Batch", "CalibratedCostModel", "ConstantCostModel", "RooflineCostModel", "StepCostModel",
           "StepTime", "build_cost_model"]
