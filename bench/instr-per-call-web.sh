#!/usr/bin/env bash
# Instructions per unary call on the server for each protocol it serves, counted by valgrind
# (callgrind) as ../shared/peers/instr-per-call.sh counts gRPC's: the server runs twice under
# callgrind, h2load sends N1 then N2 SimpleMethod calls (4 connections; 64 streams each over
# HTTP/2, one request at a time each over HTTP/1.1 keep-alive), and
# (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one more call.
#
#   bench/instr-per-call-web.sh [SERVER_BINARY]     # default target/release/demo-server
#
# Rows: gRPC (HTTP/2), gRPC-Web binary (HTTP/2, HTTP/1.1), Connect unary protobuf (HTTP/2,
# HTTP/1.1), Connect unary JSON (HTTP/2, HTTP/1.1). Every request carries the same message
# as ../shared/peers/demo-request.grpc. Needs valgrind and h2load (Debian: valgrind,
# nghttp2-client). N1/N2 from the environment (default 2000 and 12000).
set -euo pipefail
cd "$(dirname "$0")/.."
server=${1:-target/release/demo-server}
N1=${N1:-2000}; N2=${N2:-12000}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# The request message: the gRPC body without its 5-byte prefix, and the same as JSON.
grpc="$tmp/request.grpc"
python3 - "$grpc" "$tmp" <<'EOF'
import sys
message = b"\x08\x01\x12\x17called by Python client"
open(sys.argv[1], "wb").write(b"\x00" + len(message).to_bytes(4, "big") + message)
open(sys.argv[2] + "/request.proto", "wb").write(message)
open(sys.argv[2] + "/request.json", "wb").write(b'{"clientId":"1","requestData":"called by Python client"}')
EOF

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

ir() { # calls "h2load args..." -> total instructions
  local calls=$1 port out pid; shift
  port=$(free_port); out="$tmp/cg.$RANDOM"
  valgrind --tool=callgrind --cache-sim=no --branch-sim=no --callgrind-out-file="$out" \
    "$server" --quiet --addr "127.0.0.1:$port" >/dev/null 2>&1 &
  pid=$!
  wait_port "$port" || { echo "server did not start: $server" >&2; kill "$pid"; return 1; }
  h2load -n "$calls" -c 4 "$@" "http://127.0.0.1:$port/demo.GRPCDemo/SimpleMethod" >"$tmp/h2load.out" 2>&1
  grep -q " 0 failed, 0 errored" "$tmp/h2load.out" && grep -q "status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx" "$tmp/h2load.out" || { echo "h2load failed:" >&2; cat "$tmp/h2load.out" >&2; }
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  awk '/^summary:/ {print $2}' "$out"
}

row() { # name "h2load args..."
  local name=$1; shift
  local a b
  a=$(ir "$N1" "$@"); b=$(ir "$N2" "$@")
  printf '%-44s %12d\n' "$name" $(( (b - a) / (N2 - N1) ))
}

printf '%-44s %12s\n' "protocol (server: $server)" "instr/call"
row "gRPC, HTTP/2" -m 64 --data="$grpc" -H 'content-type: application/grpc' -H 'te: trailers'
row "gRPC-Web binary, HTTP/2" -m 64 --data="$grpc" -H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1'
row "gRPC-Web binary, HTTP/1.1 keep-alive" --h1 --data="$grpc" -H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1'
row "Connect unary protobuf, HTTP/2" -m 64 --data="$tmp/request.proto" -H 'content-type: application/proto'
row "Connect unary protobuf, HTTP/1.1 keep-alive" --h1 --data="$tmp/request.proto" -H 'content-type: application/proto'
row "Connect unary JSON, HTTP/2" -m 64 --data="$tmp/request.json" -H 'content-type: application/json'
row "Connect unary JSON, HTTP/1.1 keep-alive" --h1 --data="$tmp/request.json" -H 'content-type: application/json'
