#!/usr/bin/env bash
# Device round 39 (1x H200, about 7 min): held-out grid 15 (docs/validation_protocol.md, section "Grid 15"; written
# before its runs): short prompts beside decode batches (bf16, FP8, INT8), replica 0 then 1, one process each.
# Usage: bash lab/device/round39.sh
source lab/device/common.sh round39
stamp "setup done"
grep -q -e "GPU-b2a4f446" -e "GPU-571991bb" "$OUT/machine.txt" && stamp "same GPU as round 37 or 38"
if grep -q "H200" "$OUT/machine.txt"; then
  G=lab/validation/heldout/grid15.yaml
  for id in g15-bf16-8b-mns32-sharegpt-0.95 g15-fp8-8b-mns48-sharegpt-1.2 g15-int8-8b-mns32-sharegpt-0.5 \
            g15-bf16-8b-azureconv-0.5; do
    serve_replicas $G q 0 480 120 $id; pack  # packed as it goes: a cut call keeps what was served
  done
else
  stamp "not an H200: grid 15 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 12; cat "$OUT/timeline.txt"
