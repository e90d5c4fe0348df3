#!/usr/bin/env bash
# Device round 1, on a machine of 4 GPUs (2 are enough; TP=4 is skipped then): the GPU tests of tensor-parallel
# serving, FP8 and INT8; the TP decode and the quantization benchmarks; the calibration tables a bf16 single-GPU
# calibration lacks. Usage on the device: bash lab/device/round1.sh   (results under $OUT)
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
FINAL=$OUT; OUT=$(mktemp -d /tmp/round1.XXXX)  # at most 8 files come back: everything goes into one tarball
trap 'tar czf "$FINAL/round1.tgz" -C "$OUT" . ; ls -la "$OUT"' EXIT
source bench/device_setup.sh > "$OUT/setup.log" 2>&1
GPU=$(python3 -c "import torch; print('H200' if 'H200' in torch.cuda.get_device_name() else 'H100-SXM')")
nvidia-smi -L > "$OUT/machine.txt"; nproc >> "$OUT/machine.txt"
python3 -c "from engine.host_speed import host_benchmark as h; print('host_bench_s', h())" >> "$OUT/machine.txt" 2>&1
n=$(nvidia-smi -L | wc -l)
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/timeline.txt"; }
# A: GPU tests on GPUs 0-1 | quantization benchmark on the last GPU | FP8/INT8 GEMM tables on GPU 2
stamp "A start"
(CUDA_VISIBLE_DEVICES=0,1 timeout 200 python3 -m pytest -q -x -p no:cacheprovider tests/test_gpu_tp_quant.py \
   > "$OUT/gpu_tests.log" 2>&1; echo "exit $?" >> "$OUT/gpu_tests.log") &
(CUDA_VISIBLE_DEVICES=$((n-1)) timeout 240 python3 bench/quant_speed.py --out "$OUT/quant_speed.json" \
   > "$OUT/quant_speed.log" 2>&1) &
if [ "$n" -ge 4 ]; then
  (CUDA_VISIBLE_DEVICES=2 timeout 240 python3 -m engine.cli calibrate --gpu $GPU --extra --parts gemm \
     --out "$OUT/extra_gemm.json.gz" > "$OUT/extra_gemm.log" 2>&1) &
fi
wait; stamp "A done"
# B: TP=1/2 decode benchmark on GPUs 0-1 | TP=2 serving iterations on GPUs 2-3 (or after, on 2 GPUs)
(CUDA_VISIBLE_DEVICES=0,1 timeout 200 python3 bench/tp_decode.py --measure --tps 1,2 --out "$OUT/tp_decode_12.json" \
   > "$OUT/tp_decode_12.log" 2>&1) &
if [ "$n" -ge 4 ]; then
  (CUDA_VISIBLE_DEVICES=2,3 timeout 200 python3 -m engine.cli calibrate --gpu $GPU --extra --parts iterations \
     --tp 2 --out "$OUT/extra_tp2.json.gz" > "$OUT/extra_tp2.log" 2>&1) &
fi
wait; stamp "B done"
# C: TP=4 decode, then the all-reduce table on every GPU
if [ "$n" -ge 4 ]; then
  timeout 120 python3 bench/tp_decode.py --measure --tps 4 --out "$OUT/tp_decode_4.json" > "$OUT/tp_decode_4.log" 2>&1
fi
timeout 90 python3 -m engine.cli calibrate --gpu $GPU --extra --parts allreduce --out "$OUT/extra_ar.json.gz" \
  > "$OUT/extra_ar.log" 2>&1
stamp "C done"
tail -n 3 "$OUT"/gpu_tests.log; tail -n 8 "$OUT"/quant_speed.log; tail -n 9 "$OUT"/tp_decode_*.log
tail -n 2 "$OUT"/extra_*.log; cat "$OUT/timeline.txt"
