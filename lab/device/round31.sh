#!/usr/bin/env bash
# Device round 31 (1x H100, about 3 min; prepared, not yet run): FP8 and INT8 serving iterations of the 8B (the
# calibration ramp, one fresh engine per format) for the H100 profile -- the calibrated model then fits an FP8 or
# INT8 engine's overhead on its own format's iterations (grids 8 and 11: FP8 steps at <= 32 rows 7-9% slower than
# the overhead fitted on bf16 iterations). After it: planner profile-add, then a fresh grid registered before runs.
# Usage on the device: bash lab/device/round31.sh   (results: $OUT/round31.tgz)
source lab/device/common.sh round31
stamp "setup done"
if grep -q H200 "$OUT/machine.txt"; then GPU=H200; TAG=h200; else GPU=H100-SXM; TAG=h100; fi
for q in fp8 int8; do
  timeout 150 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts iterations --quantization $q \
    --models llama-3.1-8b --out "$OUT/${TAG}_${q}_iterations_8b.json.gz" > "$OUT/iterations_$q.log" 2>&1
  stamp "$q iterations ($GPU) exit $?"; tail -n 2 "$OUT/iterations_$q.log"
done
cat "$OUT/timeline.txt"
