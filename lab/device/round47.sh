#!/usr/bin/env bash
# Device round 47 (1x H200, about 3 min): held-out grid 19 (docs/validation_protocol.md, section "Grid 19"; written
# before its runs): two runs, replica 0 then 1, one process each. Usage: bash lab/device/round47.sh
source lab/device/common.sh round47
stamp "setup done"
if grep -q "H200" "$OUT/machine.txt"; then
  G=lab/validation/heldout/grid19.yaml
  for id in g19-bf16-8b-azureconv-1.2 g19-fp8-8b-mns128-sharegpt-0.5; do
    serve_replicas $G q 0 200 70 $id; pack  # packed as it goes: a cut call keeps what was served
  done
else
  stamp "not an H200: grid 19 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 6; cat "$OUT/timeline.txt"
