#!/usr/bin/env bash
# One device call that is useful on whichever card comes (a call for an H200 may get an H100):
#   H200: replay the committed H200 validation runs once more (records + step logs), host facts recorded;
#         with a second H200 in the machine, `engine calibrate --gpu H200 --kernels` runs on it meanwhile
#         (the paired H100/H200 operator tables and serving iterations of the cross-GPU rules);
#   H100: calibrate again with --kernels (unless H200_ONLY is set).
# Usage on the device: bash lab/calibration/device_round.sh   (results under $OUT; the replays as one tarball, since a
# call brings back only so many files)
source bench/device_setup.sh > "$OUT/setup.log" 2>&1
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; uname -r; grep -m1 "model name" /proc/cpuinfo; nproc; } > "$OUT/machine.txt"
cat "$OUT/machine.txt"
ngpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
if grep -q H200 "$OUT/machine.txt"; then
  if [ "$ngpu" -ge 2 ]; then
    CUDA_VISIBLE_DEVICES=1 python3 -m engine.cli calibrate --gpu H200 --kernels --out "$OUT/profile_h200.json" > "$OUT/calibrate_h200.log" 2>&1 &
  fi
  CUDA_VISIBLE_DEVICES=0 python3 - <<'PY' 2>&1 | tee "$OUT/replays_h200.log"
import os
from pathlib import Path
from lab.validation_runs import replay_runs
replay_runs(Path("lab/validation/h200"), Path("/tmp/replays_h200"), deadline_s=float(os.environ.get("DEADLINE", 420)))
PY
  tar czf "$OUT/replays_h200.tgz" -C /tmp replays_h200
  wait
  tail -5 "$OUT/calibrate_h200.log" 2>/dev/null
elif [ -z "$H200_ONLY" ]; then
  python3 -m engine.cli calibrate --gpu H100-SXM --kernels --out "$OUT/profile_h100.json" 2>&1 | tee "$OUT/calibrate_h100.log"
fi
