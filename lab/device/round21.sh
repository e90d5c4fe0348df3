#!/usr/bin/env bash
# Device round 21 (2 GPUs, about 5 min). On 2x H100: held-out grid 8 as registered (FP8/INT8 weight serving of the
# 8B, replica 0 on GPU 0 and replica 1 on GPU 1 side by side). On 2x H200 (the kind is often substituted): grid 7
# as registered instead (two 8B TP=2 runs, replicas in turn). Nothing merged, no calibration.
# Usage on the device: bash lab/device/round21.sh   (results: $OUT/round21.tgz)
source lab/device/common.sh round21
stamp "setup done"
if grep -q H200 "$OUT/machine.txt"; then
  serve_replicas lab/validation/heldout/grid7.yaml tp 0,1 330 120 g7-tp2-8b-sharegpt-0.5 g7-tp2-8b-mns128-azureconv-0.95
else
  serve_side_by_side lab/validation/heldout/grid8.yaml q 330 420 0
  wait
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 30; cat "$OUT/timeline.txt"
