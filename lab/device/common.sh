# Sourced first by each device round script (source lab/device/common.sh NAME): NCCL without NVLink multicast,
# a scratch folder packed into $OUT/NAME.tgz at exit (only 8 files come back from a call), a timeline with
# `stamp`, seconds since the start with `el`, the carried wheels, and the machine's GPUs in machine.txt.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
ROUND=$1
FINAL=$OUT; OUT=$(mktemp -d "/tmp/$ROUND.XXXX")
pack() { tar czf "$FINAL/$ROUND.tgz" -C "$OUT" . ; }
trap 'pack; ls -la "$FINAL"' EXIT
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
stamp() { echo "[$(el) s] $*" | tee -a "$OUT/timeline.txt"; }
source bench/device_setup.sh > "$OUT/setup.log" 2>&1
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
nvidia-smi -L > "$OUT/machine.txt"

# serve_replicas GRID LIST DEVICES START_BEFORE_S TIMEOUT_S ID...: each run, replica 0 then 1, one process each on
# DEVICES (a TP engine per process), each started only before START_BEFORE_S; logs in $OUT/heldout/LIST/lane.log
serve_replicas() {
  local grid=$1 list=$2 dev=$3 before=$4 limit=$5 id r
  shift 5
  local dir="$OUT/heldout/$list"
  mkdir -p "$dir"
  for id in "$@"; do
    for r in 0 1; do
      if [ "$(el)" -lt "$before" ]; then
        CUDA_VISIBLE_DEVICES=$dev timeout "$limit" python3 -m lab.heldout serve --grid "$grid" --list "$list" \
          --only "$id" --replica $r --out "$dir" >> "$dir/lane.log" 2>&1 || echo "$id r$r exit $?" >> "$dir/lane.log"
      else echo "$id r$r: not started (deadline)" >> "$dir/lane.log"; fi
      stamp "$id replica $r done"
    done
  done
}

# serve_side_by_side GRID LIST DEADLINE_S TIMEOUT_S [FIRST_GPU]: the list's runs in grid order, replica 0 on GPU
# FIRST_GPU (default 2) and replica 1 on the next one at the same time, each lane starting no run after the deadline;
# logs in $OUT/heldout/LIST0 and LIST1
serve_side_by_side() {
  local grid=$1 list=$2 deadline=$3 limit=$4 first=${5:-2} r
  for r in 0 1; do
    mkdir -p "$OUT/heldout/$list$r"
    (CUDA_VISIBLE_DEVICES=$((first + r)) timeout "$limit" python3 -m lab.heldout serve --grid "$grid" --list "$list" \
       --replica $r --out "$OUT/heldout/$list$r" --deadline-s "$deadline" > "$OUT/heldout/$list$r/lane.log" 2>&1
     stamp "$list$r done") &
  done
}
