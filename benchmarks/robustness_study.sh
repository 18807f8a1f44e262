#!/usr/bin/env bash
# The robustness study of issue 21, on the CCPD sample under the `cpu` profile, step by step
# and resumable (bench run skips what a run directory already holds; a step whose marker
# exists is not redone). Rerun the same command after a stop: it goes on where it was.
#
#   bash benchmarks/robustness_study.sh [WORKDIR]      (default /tmp/robustness; many CPU-hours)
#   METHODS=tiny CANDIDATES=camera-random TESTS=camera PROFILE=test EXTRA="--limit 20" OCR=ppocr \
#     bash benchmarks/robustness_study.sh /tmp/dry     (a dry run of every step in a few minutes)
#
# 1. choose: CHOOSER (default mse-skip) trained under each candidate random pipeline (CANDIDATES, default
#    `camera-random realesrgan`), scored on the VAL plates (a view of the sample whose test
#    split is its val split, hard links) under bicubic, camera-mild, camera, camera-hard;
#    the pipeline with the most PP-OCRv4 exact reads summed over the three camera presets
#    wins (ties: the first). Written to WORKDIR/choose.md and WORKDIR/chosen.
# 2. train: METHODS under the chosen pipeline and under bicubic (the published study's
#    models, retrained: the profile is deterministic), tested on bicubic LR.
# 3. test: each trained run directory copied once per test degradation (TESTS) and
#    re-evaluated from its best checkpoints there (`bench run --degradation`; no retraining).
# 4. report: `bench report --matrix` over every run directory -> WORKDIR/leaderboards/.
#
# Each step runs `bench` from this checkout's sources; run it from a worktree at a fixed
# commit so a long study is one version of the code. OMP_WAIT_POLICY=PASSIVE throughout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mkdir -p "${1:-/tmp/robustness}" && cd "${1:-/tmp/robustness}" && pwd)"
ccpd="$(cd "${CCPD:-$root/../shared/data/ccpd-sample}" && pwd)"
read -r -a candidates <<<"${CANDIDATES:-camera-random realesrgan}"
methods="${METHODS:-mse-skip,pecl-pull-skip,mse,msrn,espcn,swinir}"
chooser="${CHOOSER:-mse-skip}"   # the method the pipelines are compared with
read -r -a tests <<<"${TESTS:-camera-mild camera camera-hard motion}"
ocr="${OCR:-ppocr,plate}"
profile="${PROFILE:-cpu}"
read -r -a extra <<<"${EXTRA:-}"   # more bench run options for every run (e.g. "--limit 20" for a dry run)
export OMP_WAIT_POLICY=PASSIVE
log="$work/study.log"

say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$log"; }

bench_run() { # bench_run RUN_DIR ARGS...: `bench run` of this checkout into RUN_DIR, logged
  local dir="$1"; shift
  say "bench run $* --run-dir $dir"
  (cd "$work" && PYTHONPATH="$root" python3 -c \
    "import sys; sys.argv = ['bench'] + sys.argv[1:]; from bench.cli import main; main()" \
    run --scale 8 --profile "$profile" --ocr "$ocr" --leaderboard-dir "$work/leaderboards" --run-dir "$dir" "${extra[@]}" "$@") \
    >>"$log" 2>&1 || { say "error: bench run into $dir failed (exit $?); see $log"; exit 1; }
}

val_view() { # the sample with its val plates as the test split (hard links; test <-> val)
  local view="$work/ccpd-val-view"
  if [ ! -f "$view/splits/test.txt" ]; then
    rm -rf "$view.tmp" && mkdir -p "$view.tmp/splits"
    cp -al "$ccpd/images" "$view.tmp/images"
    cp "$ccpd/splits/train.txt" "$view.tmp/splits/train.txt"
    cp "$ccpd/splits/val.txt" "$view.tmp/splits/test.txt"
    cp "$ccpd/splits/test.txt" "$view.tmp/splits/val.txt"
    mv "$view.tmp" "$view"
  fi
  echo "$view"
}

exact_reads() { # exact_reads RUN_DIR METHOD RECOGNISER: exact reads, "k n"
  python3 - "$1/$2/plates.csv" "$3" <<'EOF'
import sys
import pandas as pd
df = pd.read_csv(sys.argv[1])
col = f"ocr_{sys.argv[2]}_exact"
print(int(df[col].sum()), len(df))
EOF
}

# -- 1. choose the random pipeline on val -------------------------------------------------
if [ ! -f "$work/chosen" ]; then
  view="$(val_view)"
  for p in "${candidates[@]}"; do
    bench_run "$work/choose/train-$p" --methods "$chooser" --data "ccpd:$ccpd" --train-degradation "$p"
    w="$work/choose/train-$p/$chooser/ckpt/best.safetensors"
    for d in bicubic camera-mild camera camera-hard; do
      bench_run "$work/choose/val-$p-$d" --methods "$chooser" --weights "$chooser=$w" --data "ccpd:$view" --degradation "$d" --ocr ppocr
    done
  done
  {
    echo "# Choosing the random training pipeline on val (issue 21)"
    echo
    echo "$chooser under \`$profile\` trained with each pipeline; PP-OCRv4 exact reads / plates of the sample's val split, LR made by each test preset. Made by \`bash benchmarks/robustness_study.sh\` at $(git -C "$root" rev-parse --short HEAD) on $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) logical CPUs."
    echo
    echo "| train.degradation | bicubic | camera-mild | camera | camera-hard | camera presets summed |"
    echo "|---|---:|---:|---:|---:|---:|"
  } >"$work/choose.md.tmp"
  best="" best_sum=-1
  for p in "${candidates[@]}"; do
    row="| \`$p\`" sum=0
    for d in bicubic camera-mild camera camera-hard; do
      read -r k n < <(exact_reads "$work/choose/val-$p-$d" "$chooser" ppocr)
      row="$row | $k / $n ($(python3 -c "print(f'{100*$k/$n:.1f}')")%)"
      [ "$d" = bicubic ] || sum=$((sum + k))
    done
    echo "$row | $sum |" >>"$work/choose.md.tmp"
    if [ "$sum" -gt "$best_sum" ]; then best="$p" best_sum="$sum"; fi
  done
  printf '\nChosen: `%s` (the most exact reads over camera-mild, camera and camera-hard on val).\n' "$best" >>"$work/choose.md.tmp"
  mv "$work/choose.md.tmp" "$work/choose.md"
  echo "$best" >"$work/chosen"
  say "chose $best"
fi
chosen="$(cat "$work/chosen")"

# -- 2. train under the chosen pipeline and under bicubic -----------------------------------
# the chooser's run under the chosen pipeline is the one step 2 would repeat (same settings,
# same keys): its method folder is taken over, and bench run finds it finished
if [[ ",$methods," == *",$chooser,"* && ! -d "$work/train-$chosen/$chooser" && -f "$work/choose/train-$chosen/$chooser/result.json" ]]; then
  mkdir -p "$work/train-$chosen"
  cp -a "$work/choose/train-$chosen/$chooser" "$work/train-$chosen/$chooser"
  say "took $chooser's training under $chosen over from step 1"
fi
bench_run "$work/train-$chosen" --methods "$methods" --data "ccpd:$ccpd" --train-degradation "$chosen"
bench_run "$work/train-bicubic" --methods "bicubic,$methods" --data "ccpd:$ccpd"

# -- 3. every trained model on every test degradation ---------------------------------------
dirs=("$work/train-$chosen" "$work/train-bicubic")
for t in "$chosen" bicubic; do
  for d in "${tests[@]}"; do
    dir="$work/test-$t-$d"
    [ -d "$dir" ] || { rm -rf "$dir.tmp"; cp -a "$work/train-$t" "$dir.tmp"; mv "$dir.tmp" "$dir"; }
    if [ "$t" = bicubic ]; then
      bench_run "$dir" --methods "bicubic,$methods" --data "ccpd:$ccpd" --degradation "$d"
    else
      bench_run "$dir" --methods "$methods" --data "ccpd:$ccpd" --train-degradation "$t" --degradation "$d"
    fi
    dirs+=("$dir")
  done
done

# -- 4. the matrix --------------------------------------------------------------------------
(cd "$work" && PYTHONPATH="$root" python3 -c \
  "import sys; sys.argv = ['bench'] + sys.argv[1:]; from bench.cli import main; main()" \
  report --matrix "${dirs[@]}" --out "$work/leaderboards/ccpd-sample-x8-robustness") >>"$log" 2>&1
say "done: $work/leaderboards/ccpd-sample-x8-robustness.md"
