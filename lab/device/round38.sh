#!/usr/bin/env bash
# Device round 38 (1x H200, about 7 min): held-out grid 14 (docs/validation_protocol.md, section "Grid 14"; written
# before its runs): FP8 8B runs on the engine's W8A8 path at 17-64 rows, replica 0 then 1, one process each.
# Usage: bash lab/device/round38.sh
source lab/device/common.sh round38
stamp "setup done"
grep -q "GPU-b2a4f446" "$OUT/machine.txt" && stamp "same GPU as round 37 (the re-measured FP8 tables)"
if grep -q "H200" "$OUT/machine.txt"; then
  G=lab/validation/heldout/grid14.yaml
  for id in g14-fp8-8b-sharegpt-0.5 g14-fp8-8b-mns32-azurecode-1.2 g14-fp8-8b-azureconv-0.95 \
            g14-fp8-8b-mns24-sharegpt-0.95; do
    serve_replicas $G q 0 480 120 $id; pack  # packed as it goes: a cut call keeps what was served
  done
else
  stamp "not an H200: grid 14 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 12; cat "$OUT/timeline.txt"
