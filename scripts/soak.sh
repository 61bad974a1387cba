#!/usr/bin/env bash
# Soak: the release demo-server (--quiet) under mixed calls from examples/soak_client.rs
# (all four kinds, calls cancelled half-way, channels replaced every 2000 calls) for
# MINUTES minutes, sampling the server's resident memory (VmRSS) every INTERVAL seconds.
# Prints a table, then the min/max and the growth after the first minute. Not run in CI.
#
#   scripts/soak.sh [MINUTES=10] [INTERVAL_SECS=10]
#
# Environment: SOAK_PORT (default 24555, on 127.0.0.1), SOAK_WORKERS (default 8),
# SOAK_PAUSE_MS (per-worker pause between calls, default 0: as fast as it goes).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes="${1:-10}"
interval="${2:-10}"
port="${SOAK_PORT:-24555}"
workers="${SOAK_WORKERS:-8}"
pause_ms="${SOAK_PAUSE_MS:-0}"
secs=$((minutes * 60))

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "soak: 127.0.0.1:$port is already in use; set SOAK_PORT" >&2
  exit 1
fi

echo "== build (release)"
cargo build --release --bin demo-server --example soak_client
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
target_dir="${target_dir:-target}"
server_bin="$target_dir/release/demo-server"
client_bin="$target_dir/release/examples/soak_client"

server_pid=""
client_pid=""
cleanup() {
  [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$server_bin" --quiet --addr "127.0.0.1:$port" >/dev/null &
server_pid=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "soak: demo-server did not start" >&2
  exit 1
fi

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

echo "== soak: $minutes min of mixed calls, $workers workers, server pid $server_pid on 127.0.0.1:$port"
client_log="$(mktemp)"
"$client_bin" --addr "127.0.0.1:$port" --secs "$secs" --workers "$workers" \
  --pause-ms "$pause_ms" >"$client_log" 2>&1 &
client_pid=$!

samples=()
printf '%8s %16s %16s\n' "elapsed" "server RSS KiB" "client RSS KiB"
start=$(date +%s)
while :; do
  now=$(($(date +%s) - start))
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "soak: demo-server died" >&2
    exit 1
  fi
  s=$(rss_kib "$server_pid")
  c=$(rss_kib "$client_pid")
  samples+=("$now:$s")
  printf '%7ss %16s %16s\n' "$now" "$s" "$c"
  kill -0 "$client_pid" 2>/dev/null || break
  [ "$now" -ge "$secs" ] && break
  sleep "$interval"
done

client_status=0
wait "$client_pid" || client_status=$?
client_pid=""
echo "== client"
grep -v '^soak_client: *[0-9]*s ' "$client_log" || true
rm -f "$client_log"

# min / max over all samples, and over the samples after the first minute (warm-up).
summary() {
  local from="$1" min="" max="" first="" last="" t v
  for sample in "${samples[@]}"; do
    t="${sample%%:*}"
    v="${sample##*:}"
    [ "$t" -lt "$from" ] && continue
    [ -z "$first" ] && first="$v"
    last="$v"
    if [ -z "$min" ] || [ "$v" -lt "$min" ]; then min="$v"; fi
    if [ -z "$max" ] || [ "$v" -gt "$max" ]; then max="$v"; fi
  done
  if [ -z "$min" ]; then
    echo "no samples"
  else
    echo "min $min KiB, max $max KiB (spread $((max - min)) KiB); first $first KiB, last $last KiB (change $((last - first)) KiB)"
  fi
}
echo "== server RSS"
echo "all samples:            $(summary 0)"
echo "after the first minute: $(summary 60)"
exit "$client_status"
