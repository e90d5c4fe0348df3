"""Built-in GPU and model catalogs, merged with a scenario's own additions."""
from planner.catalog.gpus import GPUS, GPUSpec
from planner.catalog.models import MODELS, ModelSpec

__all__ = ["GPUS", "GPUSpec", "MODELS", "ModelSpec"]
