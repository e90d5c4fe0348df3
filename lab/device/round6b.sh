#!/usr/bin/env bash
# Device round 6, call B (4x H100, < 10 min): grid 4 (lab/validation/heldout/grid4.yaml). TP=2 runs on GPUs 0-1 (one
# process each, replicas in turn), single-GPU runs on GPUs 2 and 3 (replica 0 and 1 side by side), then the TP=4 run
# on all four, two replicas in turn.
# Usage on the device: bash lab/device/round6b.sh   (results: $OUT/round6b.tgz)
source lab/device/common.sh round6b
G=lab/validation/heldout/grid4.yaml; H=$OUT/heldout; mkdir -p "$H/tp" "$H/q0" "$H/q1"
stamp "setup done"
# the tables call A could not make: TP=2 iterations (one model per process: a second TP engine in one process
# found the first's process group still there) and the Qwen2.5-32B shape (its group of 5 had no kernel); with them,
# the paged-decode kernel test on the new groups
(CUDA_VISIBLE_DEVICES=0,1 timeout 110 python3 -m engine.cli calibrate --gpu H100-SXM --extra --kernels --parts iterations \
   --tp 2 --models llama-3.1-8b --out "$OUT/extra_tp2.json.gz" > "$OUT/tp2.log" 2>&1; stamp "TP=2 iterations done ($?)") &
(CUDA_VISIBLE_DEVICES=2 timeout 110 python3 -m engine.cli calibrate --gpu H100-SXM --extra --kernels \
   --parts attention,gemm_bf16 --shape-models qwen2.5-32b --out "$OUT/extra_shapes_2.json.gz" > "$OUT/shapes_2.log" 2>&1
 stamp "shapes qwen2.5-32b done ($?)") &
(CUDA_VISIBLE_DEVICES=3 timeout 110 python3 -m pytest -q -p no:cacheprovider tests/test_kernels.py -k paged_decode \
   > "$OUT/kernel_tests.log" 2>&1; stamp "kernel tests done ($?)") &
wait
(serve_replicas $G tp 0,1 320 90 g4-tp2-qwen32b-azureconv-0.5 g4-tp2-8b-sharegpt-0.95; stamp "tp lane done") &
serve_side_by_side $G q 250 330
wait
serve_replicas $G tp4 0,1,2,3 470 110 g4-tp4-70b-azurecode-0.95
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 20; tail -n 3 "$OUT"/*.log; cat "$OUT/timeline.txt"
