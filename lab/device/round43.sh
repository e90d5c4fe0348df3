#!/usr/bin/env bash
# Device round 43 (1x H200, about 6 min): held-out grid 16 (docs/validation_protocol.md, section "Grid 16"; written
# before its runs): FP8 on the W8A8 path from 8 rows, INT8 and bf16 runs with decode batches between the engine's
# graph sizes; replica 0 then 1, one process each. Usage: bash lab/device/round43.sh
source lab/device/common.sh round43
stamp "setup done"
grep -q "GPU-ce955cfe" "$OUT/machine.txt" && stamp "same GPU as round 42 (the re-measured FP8 tables)"
if grep -q "H200" "$OUT/machine.txt"; then
  G=lab/validation/heldout/grid16.yaml
  for id in g16-fp8-8b-mns16-sharegpt-0.95 g16-fp8-8b-mns12-azureconv-1.2 g16-int8-8b-mns24-azureconv-0.95 \
            g16-bf16-8b-mns48-sharegpt-0.5; do
    serve_replicas $G q 0 480 120 $id; pack  # packed as it goes: a cut call keeps what was served
  done
else
  stamp "not an H200: grid 16 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 12; cat "$OUT/timeline.txt"
