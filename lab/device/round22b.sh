#!/usr/bin/env bash
# Device round 22b (1x H100, at most about 4 min: the session's last device time, after round 22's 2x H100 call was
# served by H200s): held-out grid 8 as registered, run by run with replica 0 then 1 (one process each), no replica
# started after 190 s -- the runs left are reported as not run. Only on an H100.
# Usage on the device: bash lab/device/round22b.sh   (results: $OUT/round22b.tgz)
source lab/device/common.sh round22b
stamp "setup done"
if grep -q "H100" "$OUT/machine.txt"; then
  serve_replicas lab/validation/heldout/grid8.yaml q 0 190 75 g8-fp8-8b-sharegpt-0.95 g8-fp8-8b-azurecode-1.2 \
    g8-int8-8b-azureconv-0.5 g8-int8-8b-sharegpt-0.95
else
  stamp "not an H100: grid 8 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 30; cat "$OUT/timeline.txt"
