#!/usr/bin/env bash
# CPU of one broadcast: `callcast serve` with N synthetic participants (a separate process, not counted) in a
# room, one 1280x720@30 2500 kbps grid broadcast to HLS and to a local nginx-rtmp. Reads the server's CPU time
# from /proc/<pid>/stat over a steady window after a warm-up and prints cores used.
# Usage: benches/broadcast_cpu.sh [participants=4] [window_s=60] [warmup_s=10]
#   LAYOUT='{"template":"grid","max_tiles":4}' sets the broadcast's layout (default: grid, everyone on screen).
# Publishers run at nice 10 so that, when they and the server need more than the machine has, the server is not
# the one starved (its figure would look low); `machine_busy` shows how loaded the machine was.
set -euo pipefail
N=${1:-4}; WINDOW=${2:-60}; WARMUP=${3:-10}; LAYOUT=${LAYOUT:-'{"template":"grid"}'}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
BIN=target/release/callcast
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

RTMP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; pid $WORK/nginx.pid; error_log $WORK/nginx.log;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$RTMP_PORT; application live { live on; } } }
CONF
nginx -p "$WORK" -c "$WORK/nginx.conf" & PIDS+=($!)

$BIN serve --listen 127.0.0.1:0 --data-dir "$WORK/data" > "$WORK/serve.out" 2> "$WORK/serve.log" & SERVER=$!; PIDS+=($SERVER)
for _ in $(seq 50); do grep -q listening "$WORK/serve.out" && break; sleep 0.1; done
ADDR=$(sed -n 's/callcast listening on //p' "$WORK/serve.out")
# One process encodes once and joins as N participants: on a small machine N encoders would starve the server.
nice -n 10 $BIN publish --whip "$ADDR/v1/rooms/bench/whip" --name p --copies "$N" --pattern ball > /dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 100); do
  [ "$(curl -s "$ADDR/v1/rooms/bench" | grep -o '"id"' | wc -l)" -ge "$N" ] && break; sleep 0.2
done
curl -s -o /dev/null -H 'content-type: application/json' "$ADDR/v1/broadcasts" -d "{\"source\":{\"kind\":\"room\",\"room\":\"bench\"}, \"layout\": $LAYOUT,
  \"outputs\":[{\"kind\":\"hls\"},{\"kind\":\"rtmp\",\"url\":\"rtmp://127.0.0.1:$RTMP_PORT/live/bench\"}]}"
sleep "$WARMUP"
ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
# Per-thread CPU ticks as "name ticks" lines (thread names have no spaces in /proc/.../comm here).
threads() { for t in /proc/$SERVER/task/*; do echo "$(cat "$t/comm" | tr ' ' '_') $(awk '{print $14 + $15}' "$t/stat")"; done 2>/dev/null; }
HZ=$(getconf CLK_TCK)
threads > "$WORK/threads0"
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
B0=$(busy)
T0=$(ticks); S0=$(date +%s.%N)
sleep "$WINDOW"
T1=$(ticks); S1=$(date +%s.%N)
B1=$(busy)
threads > "$WORK/threads1"
RSS=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$SERVER/status")
STATUS=$(curl -s "$ADDR/v1/broadcasts")
# CPU by thread name over the window (threads that came and went are counted from zero), top 12.
echo "cores by thread name:"
awk -v hz="$HZ" -v secs="$WINDOW" 'NR==FNR {start[$1]+=$2; next} {end[$1]+=$2}
  END {for (n in end) printf "  %-24s %.3f\n", n, (end[n]-start[n])/hz/secs}' "$WORK/threads0" "$WORK/threads1" \
  | sort -k2 -nr | head -12
python3 - "$T0" "$T1" "$S0" "$S1" "$HZ" "$N" "$RSS" "$STATUS" "$B0" "$B1" <<'PY'
import json, sys
t0, t1, s0, s1, hz, n, rss = (float(x) for x in sys.argv[1:8])
status = json.loads(sys.argv[8])["broadcasts"][0]
(b0, a0), (b1, a1) = ([float(x) for x in v.split()] for v in sys.argv[9:11])
cores = (t1 - t0) / hz / (s1 - s0)
print(json.dumps({"participants": int(n), "window_s": round(s1 - s0, 1), "cores": round(cores, 3), "rss_mb": int(rss),
                  "machine_busy": round((b1 - b0) / (a1 - a0), 2),
                  "state": status["state"], "participants_seen": len(status["participants"]),
                  "on_screen": sum(1 for p in status["participants"] if p["on_screen"]),
                  "outputs": {o["kind"]: o["state"] for o in status["outputs"]}}))
PY
