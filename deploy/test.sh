#!/usr/bin/env bash
# Runs every check CI runs: installs what is needed, then format, lints and the whole test suite
# (unit tests, API tests and end-to-end tests against real nginx-rtmp, ffmpeg and GStreamer peers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash deploy/install-deps.sh
# A toolchain installed by install-deps.sh is not on this shell's PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Media tests share two cores: one test binary at a time, one test at a time inside it, so timings hold.
# A hang fails the run within the hour (with the test it hung in on screen) instead of using up CI's 90 minutes.
timeout --kill-after=30s 45m cargo test --locked -- --test-threads=1
