#!/usr/bin/env bash
# Unary calls per second: our demo-server beside the tonic peer and the bare-h2 ceiling,
# in one run, alternating servers round by round. Server pinned to core 0, h2load to core 1.
#
#   scripts/bench-unary.sh [ROUNDS] [REQUESTS]
#
# Needs h2load (Debian package nghttp2-client) and ../shared/peers (the tonic and bare-h2 peers).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
requests=${2:-200000}
peers=${PEERS_DIR:-../shared/peers}
request_file="$peers/demo-request.grpc"

command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 1; }
cargo build --release --quiet --bin demo-server
cargo build --release --quiet --manifest-path "$peers/tonic-demo/Cargo.toml" --target-dir target/peers
cargo build --release --quiet --manifest-path "$peers/bare-h2/Cargo.toml" --target-dir target/peers

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2; return 1
}

declare -A servers=(
  [h2grpc]="target/release/demo-server --quiet --addr 127.0.0.1:PORT"
  [tonic]="target/peers/release/tonic-demo-server --quiet --addr 127.0.0.1:PORT"
  [bare-h2-inline]="target/peers/release/bare-h2-server --inline --addr 127.0.0.1:PORT"
)
order=(h2grpc tonic bare-h2-inline)
declare -A results

for round in $(seq "$rounds"); do
  for name in "${order[@]}"; do
    port=$(free_port)
    cmd=${servers[$name]//PORT/$port}
    taskset -c 0 $cmd >/dev/null 2>&1 &
    pid=$!
    wait_port "$port"
    out=$(taskset -c 1 h2load -n "$requests" -c 4 -m 64 -t 1 --data="$request_file" \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://127.0.0.1:$port/demo.GRPCDemo/SimpleMethod")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rps=$(echo "$out" | awk '/^finished in/ {print $4}')
    ok=$(echo "$out" | awk '/^status codes:/ {print $3}')
    echo "round $round  $name: $rps calls/s ($ok x 2xx of $requests)"
    results[$name]+="$rps "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
tonic=$(echo "${results[tonic]}" | median)
echo
printf '%-16s %12s %8s\n' server "median/s" "x tonic"
for name in "${order[@]}"; do
  m=$(echo "${results[$name]}" | median)
  printf '%-16s %12.0f %8.2f\n' "$name" "$m" "$(echo "$m / $tonic" | bc -l)"
done
