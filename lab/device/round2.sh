#!/usr/bin/env bash
# Device round 2 (4 GPUs): a tensor-parallel smoke run with stack dumps on a stall; the GPU tests (TP on GPUs 0-1,
# quantization on GPU 2); the quantization benchmark (last GPU); the TP decode benchmark (TP 1/2, then 4); the
# TP=2 serving iterations. Usage on the device: bash lab/device/round2.sh   (results: $OUT/round2.tgz)
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
FINAL=$OUT; OUT=$(mktemp -d /tmp/round2.XXXX)
trap 'tar czf "$FINAL/round2.tgz" -C "$OUT" . ; ls -la "$OUT"' EXIT
source bench/device_setup.sh > "$OUT/setup.log" 2>&1
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
GPU=$(python3 -c "import torch; print('H200' if 'H200' in torch.cuda.get_device_name() else 'H100-SXM')")
nvidia-smi -L > "$OUT/machine.txt"; n=$(nvidia-smi -L | wc -l)
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/timeline.txt"; }
# A: TP smoke (graphs; eager if that fails) on GPUs 0-1 | quantization tests on GPU 2 | quant benchmark, last GPU
(CUDA_VISIBLE_DEVICES=0,1 timeout 150 python3 lab/device/tp_smoke.py --tp 2 > "$OUT/tp_smoke.log" 2>&1 \
  || CUDA_VISIBLE_DEVICES=0,1 timeout 100 python3 lab/device/tp_smoke.py --tp 2 --no-graphs >> "$OUT/tp_smoke.log" 2>&1) &
(CUDA_VISIBLE_DEVICES=2 timeout 200 python3 -m pytest -v -p no:cacheprovider --timeout 120 tests/test_gpu_tp_quant.py \
   -k "fp8 or w8a16" > "$OUT/gpu_tests_quant.log" 2>&1) &
(CUDA_VISIBLE_DEVICES=$((n-1)) timeout 250 python3 bench/quant_speed.py --out "$OUT/quant_speed.json" \
   > "$OUT/quant_speed.log" 2>&1) &
wait; stamp "A done"
# B: TP GPU tests (tokens, killed rank) on GPUs 0-1 | TP=2 serving iterations on GPUs 2-3
(CUDA_VISIBLE_DEVICES=0,1 timeout 200 python3 -m pytest -v -p no:cacheprovider --timeout 150 tests/test_gpu_tp_quant.py \
   -k "tp2 or killed" > "$OUT/gpu_tests_tp.log" 2>&1) &
(CUDA_VISIBLE_DEVICES=2,3 timeout 200 python3 -m engine.cli calibrate --gpu $GPU --extra --parts iterations --tp 2 \
   --out "$OUT/extra_tp2.json.gz" > "$OUT/extra_tp2.log" 2>&1) &
wait; stamp "B done"
# C: TP decode benchmark, TP 1/2/4
timeout 220 python3 bench/tp_decode.py --measure --tps 1,2,4 --out "$OUT/tp_decode.json" > "$OUT/tp_decode.log" 2>&1
stamp "C done"
grep -E "s\] |Error|error" "$OUT/tp_smoke.log" | head -20; grep -E "PASS|FAIL|ERROR|passed|failed" "$OUT"/gpu_tests_*.log
tail -n 6 "$OUT/quant_speed.log"; tail -n 14 "$OUT/tp_decode.log"; tail -n 3 "$OUT/extra_tp2.log"; cat "$OUT/timeline.txt"
