#!/usr/bin/env bash
# Device round 7 (1x H100, about 2.5 min): the FP8 and INT8 GEMM tables of the H100 profile, as device round 1
# measured them for the H200 (engine calibrate --extra --parts gemm). Usage on the device: bash lab/device/round7.sh
set -u
export PYTHONUNBUFFERED=1
source bench/device_setup.sh > "$OUT/setup.log" 2>&1
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
nvidia-smi -L > "$OUT/machine.txt"
timeout 240 python3 -m engine.cli calibrate --gpu H100-SXM --extra --parts gemm --out "$OUT/extra_gemm.json.gz" \
  > "$OUT/extra_gemm.log" 2>&1; echo "exit $?"
tail -n 3 "$OUT/extra_gemm.log"
