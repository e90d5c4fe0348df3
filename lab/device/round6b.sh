#!/usr/bin/env bash
# Device round 6, call B (4x H100, < 10 min): grid 4 (lab/validation/heldout/grid4.yaml). TP=2 runs on GPUs 0-1 (one
# process each, replicas in turn), single-GPU runs on GPUs 2 and 3 (replica 0 and 1 side by side), then the TP=4 run
# on all four, two replicas in turn.
# Usage on the device: bash lab/device/round6b.sh   (results: $OUT/round6b.tgz)
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
FINAL=$OUT; OUT=$(mktemp -d /tmp/round6b.XXXX)
pack() { tar czf "$FINAL/round6b.tgz" -C "$OUT" . ; }
trap 'pack; ls -la "$FINAL"' EXIT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
stamp() { echo "[$(el) s] $*" | tee -a "$OUT/timeline.txt"; }
source bench/device_setup.sh > "$OUT/setup.log" 2>&1
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
nvidia-smi -L > "$OUT/machine.txt"
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
( for id in g4-tp2-qwen32b-azureconv-0.5 g4-tp2-8b-sharegpt-0.95; do
    for r in 0 1; do
      if [ "$(el)" -lt 320 ]; then
        CUDA_VISIBLE_DEVICES=0,1 timeout 90 python3 -m lab.heldout serve --grid $G --list tp --only $id --replica $r \
          --out "$H/tp" >> "$H/tp/lane.log" 2>&1 || echo "$id r$r exit $?" >> "$H/tp/lane.log"
      else echo "$id r$r: not started (deadline)" >> "$H/tp/lane.log"; fi
    done
  done; stamp "tp lane done" ) &
(CUDA_VISIBLE_DEVICES=2 timeout 330 python3 -m lab.heldout serve --grid $G --list q --replica 0 --out "$H/q0" \
   --deadline-s 250 > "$H/q0/lane.log" 2>&1; stamp "q0 done") &
(CUDA_VISIBLE_DEVICES=3 timeout 330 python3 -m lab.heldout serve --grid $G --list q --replica 1 --out "$H/q1" \
   --deadline-s 250 > "$H/q1/lane.log" 2>&1; stamp "q1 done") &
wait
mkdir -p "$H/tp4"
for r in 0 1; do
  if [ "$(el)" -lt 470 ]; then
    CUDA_VISIBLE_DEVICES=0,1,2,3 timeout 110 python3 -m lab.heldout serve --grid $G --list tp4 --replica $r \
      --out "$H/tp4" >> "$H/tp4/lane.log" 2>&1 || echo "tp4 r$r exit $?" >> "$H/tp4/lane.log"
  else echo "tp4 r$r: not started (deadline)" >> "$H/tp4/lane.log"; fi
  stamp "tp4 replica $r done"
done
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 20; tail -n 3 "$OUT"/*.log; cat "$OUT/timeline.txt"
