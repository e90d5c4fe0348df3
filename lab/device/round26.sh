#!/usr/bin/env bash
# Device round 26 (1 GPU, about 4 min): held-out grid 9 on an H100 or grid 10 on an H200, as registered
# (docs/validation_protocol.md, "Grids 9 and 10"), run by run, replica 0 then 1 (one process each), no replica
# started after 230 s. Whichever GPU comes serves its grid; the other grid waits for a call on its GPU.
# Usage on the device: bash lab/device/round26.sh   (results: $OUT/round26.tgz)
source lab/device/common.sh round26
stamp "setup done"
if grep -q "H100" "$OUT/machine.txt"; then
  serve_replicas lab/validation/heldout/grid9.yaml q 0 230 100 g9-int8-8b-mnbt8192-longprompts-0.95 \
    g9-int8-8b-mnbt4096-sharegpt-1.2
elif grep -q "H200" "$OUT/machine.txt"; then
  serve_replicas lab/validation/heldout/grid10.yaml q 0 230 100 g10-fp8-8b-mns128-azureconv-0.95 \
    g10-int8-8b-mnbt8192-longprompts-0.5
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 20; cat "$OUT/timeline.txt"
