#!/usr/bin/env bash
# Device round 50 (2x H200, about 8 min): (1) the 8B's FP8 serving iterations at TP=2 (grid 21's change; merged after
# the round); (2) held-out grid 21 (docs/validation_protocol.md, "Grid 21"; written before its runs): lists a (GPU 0)
# and b (GPU 1) side by side, each run replica 0 then 1 (at most 120 s each), none started after 300 s; then the two
# FP8 TP=2 runs on both GPUs, replica 0 then 1 (at most 120 s each), none started after 450 s.
# Usage: bash lab/device/round50.sh
source lab/device/common.sh round50
stamp "setup done"
grep -q -e "GPU-ce955cfe" -e "GPU-51e4dd93" -e "GPU-65942243" -e "GPU-6672d77c" -e "GPU-4f39397b" -e "GPU-fa2badef" \
  -e "GPU-0e08bf45" -e "GPU-b0422cc1" -e "GPU-f4dbb85b" "$OUT/machine.txt" && stamp "a GPU of rounds 42-49"
G=lab/validation/heldout/grid21.yaml
if grep -q H200 "$OUT/machine.txt" && [ "$(grep -c '^GPU' "$OUT/machine.txt")" -ge 2 ]; then
  CUDA_VISIBLE_DEVICES=0,1 timeout 150 python3 -m engine.cli calibrate --gpu H200 --extra --kernels --parts iterations \
    --tp 2 --quantization fp8 --models llama-3.1-8b --out "$OUT/h200x2_fp8_tp2_iterations_8b.json.gz" \
    > "$OUT/fp8_tp2_iterations.log" 2>&1; stamp "FP8 TP=2 iterations exit $?"; pack
  serve_replicas $G a 0 300 120 g21-bf16-8b-mns128-azurecode-0.95 g21-qwen7b-mns32-sharegpt-1.2 &
  serve_replicas $G b 1 300 120 g21-int8-8b-mns48-sharegpt-0.95 g21-bf16-1b-mns128-azureconv-0.5 &
  wait; pack
  serve_replicas $G tp 0,1 450 120 g21-tp2-fp8-8b-mns128-azureconv-0.95 g21-tp2-fp8-8b-mns32-azurecode-0.5; pack
else
  stamp "not 2x H200: nothing run"
fi
tail -n 3 "$OUT/fp8_tp2_iterations.log"; grep -v -e Warning -e return "$OUT"/heldout/*/lane.log | tail -n 12
cat "$OUT/timeline.txt"
