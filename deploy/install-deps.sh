#!/usr/bin/env bash
# Installs every system package callcast needs on Debian 12, and a Rust toolchain if there is none. Idempotent:
# packages already present are skipped by apt, and apt-get update runs only when something is missing.
# Usage: install-deps.sh [--runtime | --build]   (default: everything, to build, run and test)
#   --runtime  only what a built binary needs to run (container images)
#   --build    what building needs (and hls.js), without the test peers
set -euo pipefail
mode="${1:-all}"

RUNTIME=(
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice gstreamer1.0-x
  # TLS for rtmps:// (GIO TLS backend)
  glib-networking ca-certificates
  # CJK for text overlays (the fallback of the shipped DejaVu Sans; Apache-2.0, 1.8 MB)
  fonts-droid-fallback
)
BUILD=(
  build-essential pkg-config curl
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
)
TEST=(
  gstreamer1.0-tools
  # ingest and inspection of what comes out (ffmpeg with libsrt is also the SRT receiver), the SFU we join, a C
  # compiler for its loopback shim
  ffmpeg nginx-light libnginx-mod-rtmp janus gcc libc6-dev
  # a TLS terminator in front of nginx-rtmp, and the test CA it serves certificates of
  libnginx-mod-stream openssl
  # a real browser (driven by playwright-core from npm) in a loopback-only network namespace
  chromium util-linux iproute2
  # a TURN server (coturn) whose own client checks the TURN credentials callcast hands out
  coturn
  # a venv for moto, the S3-compatible server of the object-storage tests (when the machine has no moto_server)
  python3-venv
)
case "$mode" in
  --runtime) PACKAGES=("${RUNTIME[@]}") ;;
  --build) PACKAGES=("${RUNTIME[@]}" "${BUILD[@]}") ;;
  all) PACKAGES=("${RUNTIME[@]}" "${BUILD[@]}" "${TEST[@]}") ;;
  *) echo "usage: $0 [--runtime | --build]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The nginx package starts a system-wide server on port 80; tests run their own instances.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
  pkill -x nginx >/dev/null 2>&1 || true
  # Likewise the janus package's system service: tests start their own Janus on ephemeral ports.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now janus >/dev/null 2>&1 || true; fi
  pkill -x janus >/dev/null 2>&1 || true
  # And coturn's: the TURN test starts its own on an ephemeral port.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now coturn >/dev/null 2>&1 || true; fi
  pkill -x turnserver >/dev/null 2>&1 || true
else
  echo "install-deps: all system packages present"
fi

[ "$mode" = --runtime ] && exit 0

# Rust: the toolchain on the machine if there is one, else rustup's stable (needs static.rust-lang.org).
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  echo "install-deps: installing Rust (rustup, stable)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
fi

# From the npm registry (never committed): hls.js for the watch page, playwright-core for browser tests.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v npm >/dev/null 2>&1; then
  # Only when the machine has no Node.js of its own (Debian's npm conflicts with other Node.js builds).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
if [ ! -f "$here/assets/node_modules/hls.js/dist/hls.min.js" ]; then
  (cd "$here/assets" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ "$mode" = all ] && [ ! -d "$here/tests/browser/node_modules/playwright-core" ]; then
  (cd "$here/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
fi

# From PyPI: moto's server mode, a real S3-compatible server for the object-storage tests (tests/suite/support/s3.rs
# runs /opt/callcast-moto/bin/moto_server, else the machine's own moto_server).
moto_venv=/opt/callcast-moto
if [ "$mode" = all ] && [ ! -x "$moto_venv/bin/moto_server" ] && ! moto_server --help >/dev/null 2>&1; then
  echo "install-deps: installing moto (S3 test server) in $moto_venv"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.1'
fi
