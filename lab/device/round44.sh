#!/usr/bin/env bash
# Device round 44 (1x H200, about 6 min): held-out grid 17 (docs/validation_protocol.md, section "Grid 17"; written
# before its runs): a confirmation of the calibrated model as shipped; replica 0 then 1, one process each.
# Usage: bash lab/device/round44.sh
source lab/device/common.sh round44
stamp "setup done"
grep -q -e "GPU-ce955cfe" -e "GPU-51e4dd93" "$OUT/machine.txt" && stamp "same GPU as round 42 or 43"
if grep -q "H200" "$OUT/machine.txt"; then
  G=lab/validation/heldout/grid17.yaml
  for id in g17-fp8-8b-mns32-azureconv-1.2 g17-int8-8b-mns16-sharegpt-0.5 g17-bf16-8b-mnbt512-azurecode-0.5 \
            g17-bf16-1b-mns128-sharegpt-0.95; do
    serve_replicas $G q 0 470 130 $id; pack  # packed as it goes: a cut call keeps what was served
  done
else
  stamp "not an H200: grid 17 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 12; cat "$OUT/timeline.txt"
