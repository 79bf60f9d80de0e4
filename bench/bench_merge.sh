#!/usr/bin/env bash
# Merge benchmark (not in CI): base + 4 experts of a Qwen2-0.5B-shaped synthetic bf16
# checkpoint; for each method: amalgam's input GB/s and peak RSS (the better of two runs), the
# /usr/bin/python3 + torch per-tensor reference (tests/merge/reference_merge.py) on the same inputs in the
# same run, their time ratio, and the memory-bandwidth floor (bench/bench_merge.cc).
#
#   bench/bench_merge.sh [-b BUILD_DIR] [-d DATA_DIR] [-s SIZE] [-t THREADS]
#                        [-m "linear ties ..."] [--no-reference] [--large]
# --large also merges a 4x larger model (linear, ties) to check that peak RSS stays flat.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
data=${TMPDIR:-/tmp}/amalgam-bench
size=0.5B
threads=2
methods="linear task_arithmetic ties dare_ties breadcrumbs della model_stock slerp"
reference=1
large=0
while [[ $# -gt 0 ]]; do
  case $1 in
    -b) build=$2; shift 2 ;;
    -d) data=$2; shift 2 ;;
    -s) size=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    -m) methods=$2; shift 2 ;;
    --no-reference) reference=0; shift ;;
    --large) large=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
amalgam=$build/amalgam
[[ -x $amalgam ]] || { echo "no $amalgam: build first" >&2; exit 2; }
mkdir -p "$data"
floor_bin=$data/bench_merge_floor
g++ -O2 -std=c++20 -pthread -o "$floor_bin" "$root/bench/bench_merge.cc"

models_for() {  # SIZE -> directory with base, expert_1..4 (generated once)
  local dir=$data/qwen2-$1
  if [[ ! -f $dir/expert_4/config.json ]]; then
    rm -rf "$dir"
    "$amalgam" synth "$dir" --family qwen2 --size "$1" --experts 4 --dtype bf16 >&2
  fi
  echo "$dir"
}

recipe_for() {  # METHOD MODELS_DIR -> recipe text
  local m=$1 d=$2
  echo "merge_method: $m"
  [[ $m != linear ]] && echo "base_model: $d/base"
  echo "models:"
  local n=4 w p
  [[ $m == slerp ]] && n=1
  for i in $(seq 1 $n); do
    echo "  - model: $d/expert_$i"
    case $m in
      linear|task_arithmetic) p="{weight: 0.25}" ;;
      ties|dare_ties) p="{weight: 0.5, density: 0.5}" ;;
      breadcrumbs) p="{weight: 0.5, density: 0.9, gamma: 0.01}" ;;
      della) p="{weight: 0.5, density: 0.5, epsilon: 0.1}" ;;
      *) p="{}" ;;
    esac
    echo "    parameters: $p"
  done
  [[ $m == slerp ]] && echo "parameters: {t: 0.4}"
  true
}

# Runs a command under /usr/bin/time; prints "SECONDS RSS_KB".
timed() {
  local log=$data/time.log
  /usr/bin/time -f "%e %M" -o "$log" "$@" >/dev/null 2>"$data/stderr.log" || {
    echo "failed: $* ($(tail -1 "$data/stderr.log"))" >&2; echo "nan 0"; return; }
  cat "$log"
}

run_size() {  # SIZE METHODS REFERENCE
  local dir; dir=$(models_for "$1")
  local files=("$dir"/base/*.safetensors "$dir"/expert_*/*.safetensors)
  # A warm page cache in a reproducible state: the inputs dropped from it and read back,
  # as a model read from disk is. Which pages back a cached file depends on how it got
  # there: written in pieces (as the synthetic models were) it sat in 4 KiB pages; read
  # back through readahead, in 2 MiB folios (Linux >= 6.16, ext4), and every read of it
  # costs the kernel less (2026-12-03: breadcrumbs 0.8 s of system time instead of 1.2).
  local f
  for f in "${files[@]}"; do dd if="$f" iflag=nocache count=0 status=none; done
  local input_bytes; input_bytes=$(cat "${files[@]}" | wc -c)  # also warms the page cache
  echo
  echo "model: qwen2 $1 x5 (base + 4 experts), bf16, $(awk -v b="$input_bytes" 'BEGIN{printf "%.2f", b/1e9}') GB of input; $threads threads; $(nproc) cores; load $(cut -d' ' -f1 /proc/loadavg); $(awk '/^FileHugePages/{printf "%.1f GB", $2/1e6}' /proc/meminfo) of the page cache in 2 MiB folios"
  "$floor_bin" "$threads" "${files[@]}" | awk '{printf "floor: %s = %s GB/s\n", $1, $2}'
  echo "(GB/s = bytes of the models each recipe reads / wall seconds of the whole process)"
  printf "| %-16s | %8s | %8s | %9s | %7s | %9s | %8s |\n" method "GB/s" "seconds" "ref GB/s" ratio "RSS MiB" "ref RSS"
  printf "|%s|%s|%s|%s|%s|%s|%s|\n" ------------------ ---------- ---------- ----------- --------- ----------- ----------
  # Untimed: load the binary and its libraries once, so that the first method is not
  # charged for reading them from disk (it ran up to 2x slower than a rerun).
  "$amalgam" merge --help >/dev/null
  for m in $2; do
    recipe_for "$m" "$dir" > "$data/$m.yaml"
    # Input = the models this recipe reads (linear: the 4 experts; slerp: base + 1).
    local mb=0 md
    for md in $(grep -oE '(base_model|model): \S+' "$data/$m.yaml" | awk '{print $2}' | sort -u); do
      mb=$((mb + $(stat -c %s "$md"/*.safetensors | paste -sd+ | bc)))
    done
    # Untimed: write back the previous runs' outputs (their dirty pages would otherwise
    # throttle this run's writes: the disk here does 0.4 GB/s), and re-read the inputs
    # (the host reclaims page-cache pages idle for a minute: DAMON pageout).
    # The better of two runs: the first timed method of a run was often charged up to
    # 1 s more (2026-12-03: ties 2.6 s first, 1.7 s after linear), a state of the VM
    # that did not reproduce on its own.
    local s=nan rss=0 s2 rss2 k
    for k in 1 2; do
      sync; cat "${files[@]}" > /dev/null
      read -r s2 rss2 < <(timed "$amalgam" merge "$data/$m.yaml" "$data/out-$m" --force -q -j "$threads")
      rm -rf "$data/out-$m"
      if [[ $s == nan ]] || awk -v a="$s2" -v b="$s" 'BEGIN{exit !(a < b)}'; then s=$s2; rss=$rss2; fi
    done
    local rs=nan rrss=0
    if [[ $3 == 1 ]]; then
      sync; cat "${files[@]}" > /dev/null
      read -r rs rrss < <(timed /usr/bin/python3 "$root/tests/merge/reference_merge.py" \
        "$data/$m.yaml" "$data/ref-$m.safetensors" --threads "$threads")
      rm -f "$data/ref-$m.safetensors"
    fi
    # (Parenthesized: a bare `>` inside awk's printf arguments is an output redirection.)
    awk -v m="$m" -v b="$mb" -v s="$s" -v rs="$rs" -v r="$rss" -v rr="$rrss" 'BEGIN{
      g = (s > 0) ? b/s/1e9 : 0;
      ref = (rs == "nan") ? "-" : sprintf("%.3f", b/rs/1e9);
      ratio = (rs == "nan") ? "-" : sprintf("%.1fx", rs/s);
      rrss = (rr + 0 > 0) ? sprintf("%.0f", rr/1024) : "-";
      printf "| %-16s | %8.2f | %8.2f | %9s | %7s | %9.0f | %8s |\n", m, g, s, ref, ratio, r/1024, rrss }'
  done
}

run_size "$size" "$methods" "$reference"
if [[ $large == 1 ]]; then
  run_size 2B "linear ties" 0
fi
