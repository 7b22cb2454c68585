#!/usr/bin/env bash
# Issue 6's whole matrix in one run, one binary, one scenario after another (about 35 minutes on 2 cores):
# participants 1-16 at 720p30 and 4 at 1080p30 with both baselines, concurrent 4-tile broadcasts grown until one
# drops or skips 0.5% of its frames, the x264 presets, and the zero-transcode path against the same participant
# composited. Prints each bench's table; appends every JSON line to OUT.
# Usage: benches/matrix.sh [OUT=/tmp/callcast-matrix.jsonl]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${1:-/tmp/callcast-matrix.jsonl}
cargo build --release --locked --quiet
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# A copy, so a rebuild during the run cannot change what is measured.
cp target/release/callcast "$WORK/callcast"
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (modified)'), $(nproc) cores, $(date -u +%FT%TZ)"
: > "$OUT"
bench() {
  echo "== callcast bench $*"
  "$WORK/callcast" bench "$@" | tee "$WORK/out"
  grep '^{' "$WORK/out" >> "$OUT"
}
bench --participants 1,2,4,9,16 --warmup-s 10 --window-s 30
bench --participants 4 --width 1920 --height 1080 --bitrate-kbps 4500 --warmup-s 10 --window-s 30
bench --participants 4 --broadcasts 1,2,3,4,5,6 --no-baseline --warmup-s 10 --window-s 30
bench --participants 4 --preset ultrafast --warmup-s 10 --window-s 30
bench --participants 4 --preset veryfast --warmup-s 10 --window-s 30
bench --participants 1 --zero-transcode --warmup-s 10 --window-s 30
bench --participants 1 --zero-transcode --no-passthrough --warmup-s 10 --window-s 30
echo "JSON lines in $OUT"
