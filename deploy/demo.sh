#!/usr/bin/env bash
# The demo from a fresh Debian 12: installs what is needed, builds, and runs `callcast demo` (4 synthetic
# participants in a call, composited to HLS you can watch in a browser; add --rtmp URL to stream there too).
# Usage: bash deploy/demo.sh [demo flags, e.g. --listen 0.0.0.0:8080 --rtmp rtmp://host/app/key]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash deploy/install-deps.sh
# A toolchain installed by install-deps.sh is not on this shell's PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
exec cargo run --release --locked -- demo "$@"
