"""Built-in GPU and model catalogs, merged with a scenario's own additions."""
from contract.catalog.gpus import GPUS, GPUSpec
from contract.catalog.models import MODELS, ModelSpec

__all__ = ["GPUS", "GPUSpec", "MODELS", "ModelSpec"]
