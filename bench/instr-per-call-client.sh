#!/usr/bin/env bash
# Instructions per unary call on the client side, counted by valgrind (callgrind): the
# client's counterpart of ../shared/peers/instr-per-call.sh. A fixed server (our demo-server,
# not under valgrind) answers; our client, `h2grpc bench`, runs under callgrind twice, with N1
# and then N2 calls of demo.GRPCDemo/SimpleMethod (4 connections x 64 in flight, one worker
# thread, no warm-up, descriptors from proto/demo.proto so no reflection call);
# (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one more call, start-up and shutdown cancelled out.
#
#   bench/instr-per-call-client.sh [CLIENT [SERVER]]
#
# Run from the project's root, after `cargo build --release -p h2grpc-demo -p h2grpc-cli`.
# CLIENT defaults to target/release/h2grpc, SERVER to target/release/demo-server. Needs valgrind.
# N1/N2 from the environment (default 2000 and 12000, as instr-per-call.sh).
set -euo pipefail
client=${1:-target/release/h2grpc}
server=${2:-target/release/demo-server}
N1=${N1:-2000}; N2=${N2:-12000}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
tmp=$(mktemp -d)
port=$(free_port)
$server --quiet --addr "127.0.0.1:$port" >/dev/null 2>&1 &
server_pid=$!
trap 'kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
wait_port "$port" || { echo "server did not start: $server" >&2; exit 1; }
ir() { # calls -> total instructions of the client
  local out="$tmp/cg.$1"
  valgrind --tool=callgrind --cache-sim=no --branch-sim=no --callgrind-out-file="$out" \
    "$client" bench --plaintext --proto proto/demo.proto "127.0.0.1:$port" demo.GRPCDemo/SimpleMethod \
    -d '{"client_id": 1, "request_data": "called by Python client"}' \
    --connections 4 --concurrency 64 --threads 1 --warmup 0 --total "$1" --quiet >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$out"
}
a=$(ir "$N1"); b=$(ir "$N2")
printf '%-60s %14s\n' client "instr/call"
printf '%-60s %14d\n' "$client" $(( (b - a) / (N2 - N1) ))
