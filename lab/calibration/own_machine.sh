#!/usr/bin/env bash
# Does a profile predict its own machine? One device call on one H100: `engine calibrate` (the product
# calibration, as the README runs it), then a replay of every committed H100 validation run on the same GPU,
# each phase under a time limit so that the call ends inside its 10 minutes with what it has.
# Usage on the device: bash lab/calibration/own_machine.sh   (profile, logs and the replays as one tarball under $OUT)
# Then here: unpack the replays into lab/validation/h100, add the profile to lab/studies/own_machine/own_machine.py PAIRS, and run it
source bench/device_setup.sh > "$OUT/setup.log" 2>&1
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader; uname -r
  grep -m1 "model name" /proc/cpuinfo; nproc; hostname; } > "$OUT/machine.txt"
python3 -c "from engine.host_speed import host_benchmark as h; print('host_bench_s', h())" >> "$OUT/machine.txt"
cat "$OUT/machine.txt"
t0=$SECONDS
timeout "${CAL_S:-270}" python3 -m engine.cli calibrate --gpu H100-SXM --kernels --out "$OUT/profile_h100.json" \
  > "$OUT/calibrate_h100.log" 2>&1
tail -2 "$OUT/calibrate_h100.log"
left=$(( ${TOTAL_S:-575} - (SECONDS - t0) ))
timeout "$left" python3 - <<'PY' 2>&1 | tee "$OUT/replays_h100.log"
import os
from pathlib import Path
from lab.validation_runs import replay_runs
replay_runs(Path("lab/validation/h100"), Path("/tmp/replays_h100"), deadline_s=float(os.environ.get("DEADLINE", 290)))
PY
tar czf "$OUT/replays_h100.tgz" -C /tmp replays_h100
nvidia-smi --query-gpu=temperature.gpu,power.draw,clocks.sm --format=csv,noheader >> "$OUT/machine.txt"
