#!/usr/bin/env bash
# Device round 34 (4x H200, about 6.5 min): held-out grid 13 as registered (docs/validation_protocol.md, "Grid 13"):
# lists a (GPU 0) and b (GPU 1) side by side, each run replica 0 then 1 (one process each, at most 120 s), none
# started after 250 s; then the TP=4 run on all four GPUs, replica 0 then 1 (at most 150 s each), none started
# after 420 s. Only on 4x H200; the UUIDs are compared with round 33's (the host that timed the iterations).
# Usage on the device: bash lab/device/round34.sh   (results: $OUT/round34.tgz)
source lab/device/common.sh round34
stamp "setup done"
grep -q "GPU-bb937f46" "$OUT/machine.txt" && stamp "same host as round 33 (the TP=4 and 8-bit iterations)"
G=lab/validation/heldout/grid13.yaml
if grep -q H200 "$OUT/machine.txt" && [ "$(grep -c '^GPU' "$OUT/machine.txt")" -ge 4 ]; then
  serve_replicas $G a 0 250 120 g13-fp8-8b-mns32-sharegpt-0.95 g13-fp8-8b-mns16-azurecode-0.5 &
  serve_replicas $G b 1 250 120 g13-int8-8b-mns32-azureconv-0.5 &
  wait; pack
  serve_replicas $G tp 0,1,2,3 420 150 g13-tp4-8b-mns128-sharegpt-0.95; pack
else
  stamp "not 4x H200: grid 13 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 12; cat "$OUT/timeline.txt"
