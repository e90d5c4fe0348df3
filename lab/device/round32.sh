#!/usr/bin/env bash
# Device round 32 (1x H100, about 6.5 min): held-out grid 12 as registered (docs/validation_protocol.md, "Grid 12"),
# run by run, replica 0 then 1 (one process each, at most 120 s each: the first builds the model), no replica
# started after 470 s. Only on an H100; the UUID is compared with round 31's (the host that timed the iterations).
# Usage on the device: bash lab/device/round32.sh   (results: $OUT/round32.tgz)
source lab/device/common.sh round32
stamp "setup done"
grep -q "GPU-fa74dcf4" "$OUT/machine.txt" && stamp "same host as round 31 (the FP8/INT8 iterations)"
if grep -q "H100" "$OUT/machine.txt"; then
  G=lab/validation/heldout/grid12.yaml
  for id in g12-fp8-8b-mns32-azureconv-0.95 g12-fp8-8b-mns16-sharegpt-1.2 g12-int8-8b-mns32-azurecode-0.5 \
            g12-int8-8b-mns16-azureconv-0.95; do
    serve_replicas $G q 0 470 120 $id; pack  # packed as it goes: a cut call keeps what was served
  done
else
  stamp "not an H100: grid 12 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 12; cat "$OUT/timeline.txt"
