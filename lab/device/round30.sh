#!/usr/bin/env bash
# Device round 30 (1x H100, at most about 3.5 min: the session's last device time): held-out grid 11 as registered,
# run by run, replica 0 then 1 (one process each), no replica started after 150 s. Only on an H100.
# Usage on the device: bash lab/device/round30.sh   (results: $OUT/round30.tgz)
source lab/device/common.sh round30
stamp "setup done"
if grep -q "H100" "$OUT/machine.txt"; then
  serve_replicas lab/validation/heldout/grid11.yaml q 0 150 60 g11-fp8-8b-sharegpt-0.5; pack  # packed as it goes:
  serve_replicas lab/validation/heldout/grid11.yaml q 0 150 60 g11-fp8-8b-mns32-azurecode-0.95  # a cut call keeps it
else
  stamp "not an H100: grid 11 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 12; cat "$OUT/timeline.txt"
