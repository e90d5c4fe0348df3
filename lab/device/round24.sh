#!/usr/bin/env bash
# Device round 24 (asked 4x H200; about 4 min; does what the GPUs that come allow):
#  * the 8-bit GEMM tables as the engine now serves them (FP8 as in round 20; INT8 with dequantize + cuBLAS from
#    256 rows, engine.quant.INT8_DEQUANT_ROWS) on GPU 0 -- for the H200 the first tables of the current kernels;
#  * at the same time on GPUs 2,3: a TP=2 `engine calibrate --extra --parts iterations` (1B) to check that the
#    engine CLI now ends cleanly after NCCL (exit 134 before engine.tp.end_process);
#  * then, with 4 GPUs, the all-reduce table at TP 2 and 4, eager and inside CUDA graphs (the H200 profile has
#    no in-graph TP=4 rows).
# Usage on the device: bash lab/device/round24.sh   (results: $OUT/round24.tgz)
source lab/device/common.sh round24
stamp "setup done"
if grep -q H200 "$OUT/machine.txt"; then GPU=H200; TAG=h200; else GPU=H100-SXM; TAG=h100; fi
NG=$(wc -l < "$OUT/machine.txt")
(CUDA_VISIBLE_DEVICES=0 timeout 240 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels --parts gemm \
   --out "$OUT/${TAG}_fp8_int8_gemms_v4.json.gz" > "$OUT/gemms.log" 2>&1; stamp "gemm tables ($GPU) exit $?") &
if [ "$NG" -ge 4 ]; then
  (CUDA_VISIBLE_DEVICES=2,3 timeout 200 python3 -m engine.cli calibrate --gpu $GPU --extra --kernels \
     --parts iterations --tp 2 --models llama-3.2-1b --out "$OUT/${TAG}_tp2_iterations_1b_exitcheck.json.gz" \
     > "$OUT/tp2_exitcheck.log" 2>&1; rc=$?; echo "exit $rc" >> "$OUT/tp2_exitcheck.log"; stamp "TP=2 calibrate exit $rc") &
fi
wait
if [ "$NG" -ge 4 ]; then
  timeout 120 python3 -m engine.cli calibrate --gpu $GPU --extra --parts allreduce \
    --out "$OUT/${TAG}x4_allreduce_v2.json.gz" > "$OUT/allreduce.log" 2>&1; stamp "all-reduce exit $?"
  tail -n 2 "$OUT/allreduce.log"
fi
tail -n 3 "$OUT/gemms.log" "$OUT/tp2_exitcheck.log" 2>/dev/null; cat "$OUT/timeline.txt"
