#!/usr/bin/env bash
# Installs every system package callcast needs to build, run and test on Debian 12. Idempotent:
# packages already present are skipped by apt, and apt-get update runs only when something is missing.
set -euo pipefail

PACKAGES=(
  # build
  build-essential pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  # media runtime
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice gstreamer1.0-x
  # TLS for rtmps:// (GIO TLS backend)
  glib-networking ca-certificates
  # tests: ingest and inspection of what comes out, the SFU we join, a C compiler for its loopback shim
  ffmpeg nginx-light libnginx-mod-rtmp janus gcc libc6-dev
  # tests: a real browser (driven by playwright-core from npm) in a loopback-only network namespace
  chromium util-linux iproute2
)

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
else
  echo "install-deps: all system packages present"
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
if [ ! -d "$here/tests/browser/node_modules/playwright-core" ]; then
  (cd "$here/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
fi
