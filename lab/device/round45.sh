#!/usr/bin/env bash
# Device round 45 (2x H200, about 6 min): held-out grid 18 (docs/validation_protocol.md, section "Grid 18"; written
# before its runs): lists a (GPU 0) and b (GPU 1) side by side, each run replica 0 then 1 (one process each, at most
# 130 s), none started after 300 s; then the TP=2 run on both GPUs, replica 0 then 1 (at most 150 s each), none
# started after 480 s. Usage: bash lab/device/round45.sh
source lab/device/common.sh round45
stamp "setup done"
grep -q -e "GPU-ce955cfe" -e "GPU-51e4dd93" -e "GPU-65942243" "$OUT/machine.txt" && stamp "a GPU of rounds 42-44"
G=lab/validation/heldout/grid18.yaml
if grep -q H200 "$OUT/machine.txt" && [ "$(grep -c '^GPU' "$OUT/machine.txt")" -ge 2 ]; then
  serve_replicas $G a 0 300 130 g18-fp8-8b-sharegpt-0.95 g18-qwen7b-mns32-azureconv-0.5 &
  serve_replicas $G b 1 300 130 g18-int8-8b-azurecode-1.2 g18-bf16-1b-mns32-azureconv-0.5 &
  wait; pack
  serve_replicas $G tp 0,1 480 150 g18-tp2-8b-mns128-azureconv-0.95; pack
else
  stamp "not 2x H200: grid 18 not served"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 14; cat "$OUT/timeline.txt"
