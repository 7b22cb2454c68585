#!/usr/bin/env bash
# Runs every check CI runs: installs what is needed, then format, lints and the whole test suite
# (unit tests, API tests and end-to-end tests against real nginx-rtmp, ffmpeg and GStreamer peers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash deploy/install-deps.sh
# A toolchain installed by install-deps.sh is not on this shell's PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
cargo fmt --all -- --check
# The lints of `cargo clippy --all-targets -- -D warnings`, run inside the test build: clippy-driver wraps rustc for
# this package's own crates, as `cargo clippy` itself does, and the same lints fail the build. The dependencies are
# then compiled once (for the tests) instead of twice (checked for clippy, then built), which saves CI about five
# minutes of its two cores.
clippy_driver="$(command -v clippy-driver)" || { echo "clippy-driver missing: rustup component add clippy" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver" CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo test --all-targets --locked --no-run
# Media tests share two cores: one test binary at a time, one test at a time inside it, so timings hold.
# A hang fails the run within the hour (with the test it hung in on screen) instead of using up CI's 90 minutes.
timeout --kill-after=30s 45m cargo test --locked -- --test-threads=1
