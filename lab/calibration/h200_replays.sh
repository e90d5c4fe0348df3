#!/usr/bin/env bash
# One device call on a 2x H200 machine: replay every committed H200 validation run once on each GPU, at the
# same time (two replays of each trace from one more machine; run concurrently, as replays 1-4 were).
# Usage on the device: bash lab/calibration/h200_replays.sh   (both sets as one tarball under $OUT; the second set's
# replay indices collide with the first's and are renumbered when unpacked)
source bench/device_setup.sh > "$OUT/setup.log" 2>&1
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; uname -r
  grep -m1 "model name" /proc/cpuinfo; nproc; } > "$OUT/machine.txt"
python3 -c "from engine.host_speed import host_benchmark as h; print('host_bench_s', h())" >> "$OUT/machine.txt"
cat "$OUT/machine.txt"
for g in 0 1; do
  CUDA_VISIBLE_DEVICES=$g timeout "${TOTAL_S:-540}" python3 - "$g" <<'PY' > "$OUT/replays_h200_gpu$g.log" 2>&1 &
import sys
from pathlib import Path
from lab.validation_runs import replay_runs
g = sys.argv[1]
replay_runs(Path("lab/validation/h200"), Path(f"/tmp/replays_h200_gpu{g}"), deadline_s=330)
PY
done
wait
cat "$OUT"/replays_h200_gpu*.log
tar czf "$OUT/replays_h200.tgz" -C /tmp replays_h200_gpu0 replays_h200_gpu1
