#!/usr/bin/env bash
# Device round 22 (2x H100, at most about 5 min: the session's last device time): held-out grid 8 as registered
# (FP8/INT8 weight serving of the 8B, replica 0 on GPU 0 and replica 1 on GPU 1 side by side), no run started
# after 200 s. On any other GPU kind it serves nothing (grid 8 is an H100 grid; grid 7 is already served).
# Usage on the device: bash lab/device/round22.sh   (results: $OUT/round22.tgz)
source lab/device/common.sh round22
stamp "setup done"
if grep -q "H100" "$OUT/machine.txt"; then
  serve_side_by_side lab/validation/heldout/grid8.yaml q 200 280 0
  wait
else
  stamp "not H100s: grid 8 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 30; cat "$OUT/timeline.txt"
