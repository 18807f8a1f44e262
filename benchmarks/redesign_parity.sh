#!/usr/bin/env bash
# Behaviour before and after the redesign of issue 18, per plate: the README's first command
# and a short CCPD run at two commits, each in its own empty folder, compared with
# benchmarks/compare_runs.py; writes benchmarks/redesign_parity.md.
#
#   bash benchmarks/redesign_parity.sh [WORKDIR]        (default /tmp/parity; ~50 min on 2 cores)
#
# BEFORE / AFTER (commits, default 1ebadab / 5af659d) and CCPD (the sample's folder) may be
# set in the environment. Both commits run at the same time (results do not depend on load;
# timings are not compared). Rerunning resumes: bench run skips what a run directory holds.
set -euo pipefail
root="$(git rev-parse --show-toplevel)"
before="${BEFORE:-1ebadab}"
after="${AFTER:-5af659d}"
work="$(mkdir -p "${1:-/tmp/parity}" && cd "${1:-/tmp/parity}" && pwd)"
ccpd="$(cd "${CCPD:-$root/../shared/data/ccpd-sample}" && pwd)"
out="$root/benchmarks/redesign_parity.md"
synthetic=(run --methods all --scale 8)
short=(run --methods mse-skip,esrgan --scale 8 --profile test --data "ccpd:$ccpd" --limit 60 --run-dir runs/ccpd-short)

tree() { # the worktree of commit $1 under $work
  local dir="$work/tree-$1"
  [ -d "$dir" ] || git -C "$root" worktree add --detach "$dir" "$1" >/dev/null
  echo "$dir"
}

bench_at() { # bench_at COMMIT FOLDER ARGS...: `bench ARGS` from COMMIT's sources, in FOLDER
  local src folder="$2"; src="$(tree "$1")"; shift 2
  mkdir -p "$folder"
  (cd "$folder" && OMP_WAIT_POLICY=PASSIVE PYTHONPATH="$src" python3 -c \
    "import sys; sys.argv = ['bench'] + sys.argv[1:]; from bench.cli import main; main()" "$@") \
    >>"$folder/bench.log" 2>&1
}

pair() { # pair NAME ARGS...: the same bench command at both commits, side by side
  local name="$1"; shift
  bench_at "$before" "$work/$name-before" "$@" & local a=$!
  bench_at "$after" "$work/$name-after" "$@" & local b=$!
  wait "$a" || { echo "error: $name at $before failed; see $work/$name-before/bench.log"; exit 1; }
  wait "$b" || { echo "error: $name at $after failed; see $work/$name-after/bench.log"; exit 1; }
}

compare() { # compare NAME RUN TITLE: one section of the report
  local status=0
  python3 "$root/benchmarks/compare_runs.py" "$work/$1-before/runs/$2" "$work/$1-after/runs/$2" --title "$3" \
    > "$work/$1.md" || status=$?
  [ "$status" -le 1 ] || { echo "error: compare_runs failed on $1"; exit 1; }
  sed -e '1s/^# /## /' -e "s#^- first run: #- first run ($before): #" -e "s#^- second run: #- second run ($after): #" "$work/$1.md"
}

pair synthetic "${synthetic[@]}"
pair ccpd "${short[@]}"

{
  cat <<EOF
# Behaviour before and after the redesign (issue 18), per plate

Made by \`bash benchmarks/redesign_parity.sh $work\` on $(lscpu | sed -n 's/^Model name: *//p' | head -1),
$(nproc) logical CPUs, $(date -u +%Y-%m-%d). Two worktrees: \`$before\` (the last commit before the redesign)
and \`$after\` (main after the redesign and the capabilities that landed on it: degradations,
plate cache, LR-only data, upscale/export). Each command ran at both commits at the same time,
in its own empty folder, with \`PYTHONPATH\` set to its worktree (timings are not compared;
results do not depend on load):

- the README's first command: \`bench ${synthetic[*]}\` (synthetic plates, quick profile);
- a short CCPD run: \`bench ${short[*]/$ccpd/../shared/data/ccpd-sample}\`.

The tables are \`benchmarks/compare_runs.py\` on the two run directories: every column of every
method's \`plates.csv\` (PSNR, PSNR-Y, SSIM-Y, each recogniser's text, exact read, character
accuracy, confidence) and every value of \`sr_test.npz\` (the SR pixels).

EOF
  compare synthetic synthetic-x8-quick "README command 1 (synthetic, quick)"
  echo
  compare ccpd ccpd-short "Short CCPD run (mse-skip, esrgan; test profile, 60 plates per split)"
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
