"""GPU catalog: the hardware figures every cost and memory estimate rests on.

Rates are *dense* (no 2:4 sparsity) vendor peaks; the cost model multiplies
them by achievable-fraction factors that live in the scenario, so nothing here
is tuned. Memory is what the driver reports (nvidia-smi MiB / 1024) where we
have seen the card, else the datasheet figure. Interconnect is one direction of
one GPU's link bandwidth, which is what a ring all-reduce streams over.
Prices are default on-demand $/GPU-hour assumptions (override per scenario).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GPUSpec(BaseModel):
    """One accelerator type. Users add their own under `catalog.gpus`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    memory_gib: float = Field(gt=0, description="usable device memory, GiB")
    hbm_bandwidth_gbps: float = Field(gt=0, description="peak memory bandwidth, GB/s")
    bf16_tflops: float = Field(gt=0, description="dense BF16/FP16 tensor-core peak")
    fp8_tflops: float | None = Field(default=None, gt=0, description="dense FP8 peak; None = no FP8 tensor cores")
    int8_tops: float | None = Field(default=None, gt=0, description="dense INT8 tensor-core peak")
    interconnect: str = Field(default="nvlink", pattern="^(nvlink|pcie)$")
    interconnect_gbps: float = Field(gt=0, description="per-GPU, per-direction link bandwidth, GB/s")
    price_per_hour: float = Field(gt=0, description="default $/GPU-hour")
    source: str = ""


def _g(**kw) -> GPUSpec:
    return GPUSpec(**kw)


GPUS: dict[str, GPUSpec] = {
    g.name: g
    for g in [
        # NVIDIA A100 datasheet (2021): 40GB HBM2 1,555 GB/s; BF16 312 TF, INT8 624 TOPS dense;
        # NVLink 3 600 GB/s total (300 GB/s per direction). No FP8 tensor cores.
        _g(name="A100-40GB", memory_gib=40.0, hbm_bandwidth_gbps=1555, bf16_tflops=312, int8_tops=624,
           interconnect_gbps=300, price_per_hour=1.50, source="NVIDIA A100 datasheet; price: assumed on-demand"),
        # A100 80GB SXM: HBM2e 2,039 GB/s, same tensor rates. The seed prices it at $2/GPU-hour.
        _g(name="A100-80GB", memory_gib=80.0, hbm_bandwidth_gbps=2039, bf16_tflops=312, int8_tops=624,
           interconnect_gbps=300, price_per_hour=2.00, source="NVIDIA A100 datasheet; price: seed 000 ($2/hour)"),
        # H100 SXM5 datasheet: 80GB HBM3 3.35 TB/s; BF16 989 TF, FP8 1,979 TF, INT8 1,979 TOPS dense;
        # NVLink 4 900 GB/s total. Memory: 81,559 MiB seen by nvidia-smi on the lent H100.
        _g(name="H100-SXM", memory_gib=79.65, hbm_bandwidth_gbps=3350, bf16_tflops=989, fp8_tflops=1979,
           int8_tops=1979, interconnect_gbps=450, price_per_hour=3.00,
           source="NVIDIA H100 datasheet; memory: nvidia-smi on the lent H100; price: assumed"),
        # H100 PCIe datasheet: 80GB HBM2e 2.0 TB/s; BF16 756 TF, FP8 1,513 TF dense; NVLink bridge 600 GB/s.
        _g(name="H100-PCIe", memory_gib=79.65, hbm_bandwidth_gbps=2000, bf16_tflops=756, fp8_tflops=1513,
           int8_tops=1513, interconnect_gbps=300, price_per_hour=2.50, source="NVIDIA H100 datasheet; price: assumed"),
        # H200 datasheet: 141GB HBM3e 4.8 TB/s, compute as H100 SXM. Memory: 143,771 MiB seen by nvidia-smi here.
        _g(name="H200", memory_gib=140.4, hbm_bandwidth_gbps=4800, bf16_tflops=989, fp8_tflops=1979,
           int8_tops=1979, interconnect_gbps=450, price_per_hour=3.80,
           source="NVIDIA H200 datasheet; memory: nvidia-smi on the lent H200; price: assumed"),
        # L4 datasheet: 24GB GDDR6 300 GB/s; BF16 121 TF, FP8 242.5 TF, INT8 242.5 TOPS dense (half the
        # with-sparsity figures); PCIe Gen4 x16 = 32 GB/s per direction, no NVLink.
        _g(name="L4", memory_gib=22.5, hbm_bandwidth_gbps=300, bf16_tflops=121, fp8_tflops=242.5, int8_tops=242.5,
           interconnect="pcie", interconnect_gbps=32, price_per_hour=0.80,
           source="NVIDIA L4 datasheet; price: assumed"),
        # L40S datasheet: 48GB GDDR6 864 GB/s; BF16 362 TF, FP8 733 TF, INT8 733 TOPS dense; PCIe Gen4.
        _g(name="L40S", memory_gib=45.0, hbm_bandwidth_gbps=864, bf16_tflops=362, fp8_tflops=733, int8_tops=733,
           interconnect="pcie", interconnect_gbps=32, price_per_hour=1.80,
           source="NVIDIA L40S datasheet; price: assumed"),
        # HGX B200: 180GB HBM3e 8 TB/s per GPU; BF16 2.25 PF, FP8 4.5 PF dense; NVLink 5 1.8 TB/s total.
        _g(name="B200", memory_gib=178.0, hbm_bandwidth_gbps=8000, bf16_tflops=2250, fp8_tflops=4500,
           int8_tops=4500, interconnect_gbps=900, price_per_hour=6.00,
           source="NVIDIA HGX B200 datasheet; price: assumed"),
    ]
}
