#!/usr/bin/env bash
# Device round 19 (2 GPUs asked as 2x H200, about 8 min). On H200s: held-out grid 7 as registered (two 8B TP=2
# runs, replicas in turn; bf16, untouched by the quantized-kernel change), then the FP8/INT8 GEMM tables of the
# engine's new 8-bit kernels. On H100s (the kind is often substituted): only the GEMM tables, labelled H100.
# Usage on the device: bash lab/device/round19.sh   (results: $OUT/round19.tgz)
source lab/device/common.sh round19
stamp "setup done"
if grep -q H200 "$OUT/machine.txt"; then
  G=lab/validation/heldout/grid7.yaml; H=$OUT/heldout; mkdir -p "$H"
  serve_replicas $G tp 0,1 330 120 g7-tp2-8b-sharegpt-0.5 g7-tp2-8b-mns128-azureconv-0.95
  grep -v -e Warning -e return "$H"/*/lane.log | tail -n 30
  GPU=H200; NAME=h200_fp8_int8_gemms_v2
else
  GPU=H100-SXM; NAME=h100_fp8_int8_gemms_v2
fi
CUDA_VISIBLE_DEVICES=0 timeout 240 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts gemm \
  --out "$OUT/$NAME.json.gz" > "$OUT/gemms.log" 2>&1; stamp "gemm tables ($GPU) exit $?"
tail -4 "$OUT/gemms.log"; cat "$OUT/timeline.txt"
