#!/usr/bin/env bash
# Device round 51 (2x H200, about 7 min): held-out grid 22 (docs/validation_protocol.md, "Grid 22"; written before
# its runs): lists a (GPU 0) and b (GPU 1) side by side, each run replica 0 then 1 (at most 120 s each), none started
# after 260 s; then the two TP=2 runs on both GPUs, replica 0 then 1 (at most 120 s each), none started after 440 s.
# Usage: bash lab/device/round51.sh
source lab/device/common.sh round51
stamp "setup done"
grep -q -e "GPU-ce955cfe" -e "GPU-51e4dd93" -e "GPU-65942243" -e "GPU-6672d77c" -e "GPU-4f39397b" -e "GPU-fa2badef" \
  -e "GPU-0e08bf45" -e "GPU-b0422cc1" -e "GPU-f4dbb85b" -e "GPU-a7867984" -e "GPU-9477a973" "$OUT/machine.txt" \
  && stamp "a GPU of rounds 42-50"
G=lab/validation/heldout/grid22.yaml
if grep -q H200 "$OUT/machine.txt" && [ "$(grep -c '^GPU' "$OUT/machine.txt")" -ge 2 ]; then
  serve_replicas $G a 0 260 120 g22-bf16-8b-mns32-azureconv-0.5 g22-fp8-8b-mns128-azurecode-0.5 &
  serve_replicas $G b 1 260 120 g22-int8-8b-azurecode-0.5 g22-qwen7b-azureconv-0.95 &
  wait; pack
  serve_replicas $G tp 0,1 440 120 g22-tp2-bf16-8b-mns128-sharegpt-0.95 g22-tp2-fp8-8b-azureconv-0.5; pack
else
  stamp "not 2x H200: nothing run"
fi
grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 12; cat "$OUT/timeline.txt"
