#!/usr/bin/env bash
# Device round 5, call A (4x H100, < 8 min): the all-reduce table eager and inside CUDA graphs (TP 2, 4), the TP
# decode benchmark (TP 1/2/4) on this machine, then grid 3's TP=4 run (70B) on all four GPUs, two replicas in turn.
# Protocol: docs/validation_protocol.md, "Grid 3". Usage on the device: bash lab/device/round5a.sh ($OUT/round5a.tgz)
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
FINAL=$OUT; OUT=$(mktemp -d /tmp/round5a.XXXX)
pack() { tar czf "$FINAL/round5a.tgz" -C "$OUT" . ; }
trap 'pack; ls -la "$FINAL"' EXIT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
stamp() { echo "[$(el) s] $*" | tee -a "$OUT/timeline.txt"; }
source bench/device_setup.sh > "$OUT/setup.log" 2>&1
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
nvidia-smi -L > "$OUT/machine.txt"; nvidia-smi topo -m >> "$OUT/machine.txt" 2>&1
stamp "setup done"
timeout 150 python3 -m engine.cli calibrate --gpu H100-SXM --extra --parts allreduce --out "$OUT/extra_ar.json.gz" \
  > "$OUT/allreduce.log" 2>&1; stamp "all-reduce tables done ($?)"
timeout 230 python3 bench/tp_decode.py --measure --tps 1,2,4 --out "$OUT/tp_decode_h100x4.json" \
  > "$OUT/tp_decode.log" 2>&1; stamp "tp decode done ($?)"
G=lab/validation/heldout/grid3.yaml; H=$OUT/heldout; mkdir -p "$H/tp4"
for r in 0 1; do
  if [ "$(el)" -lt 420 ]; then
    CUDA_VISIBLE_DEVICES=0,1,2,3 timeout 110 python3 -m lab.heldout serve --grid $G --list tp4 --replica $r \
      --out "$H/tp4" >> "$H/tp4/lane.log" 2>&1 || echo "tp4 r$r exit $?" >> "$H/tp4/lane.log"
  else echo "tp4 r$r: not started (deadline)" >> "$H/tp4/lane.log"; fi
  stamp "tp4 replica $r done"
done
grep -v -e Warning -e return "$H"/*/lane.log | tail -n 8; tail -n 6 "$OUT/tp_decode.log" "$OUT/allreduce.log"
cat "$OUT/timeline.txt"
