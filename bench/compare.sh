#!/usr/bin/env bash
# Compare our server and client with tonic's and with bare h2 (the ceiling), like for like:
# server pinned to one core and the load to the other, servers alternated A B C in every round,
# medians over the rounds, ratios. Writes BENCHMARKS.md at the repository root.
#
#   bench/compare.sh [--rounds N] [--duration SECS] [--quick] [--no-instr] [--out FILE]
#   bench/compare.sh --results FILE   # only tabulate values saved by an earlier run
#
# Needs: h2load (Debian nghttp2-client), valgrind (instructions per call), taskset, python3.
# The reference peers are built from ../shared/peers (PEERS_DIR) into PEERS_TARGET, a target
# dir outside the repository (default: $TMPDIR/h2grpc-peers-target); PEERS_BIN=DIR uses peer
# binaries already built from those sources instead.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
peers="${PEERS_DIR:-$root/../shared/peers}"
peers_target="${PEERS_TARGET:-${TMPDIR:-/tmp}/h2grpc-peers-target}"
target="${CARGO_TARGET_DIR:-$root/target}"
rounds=3 duration=4 quick=0 instr=1 out="$root/BENCHMARKS.md" saved=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --quick) quick=1; rounds=1; duration=1; shift ;;
    --no-instr) instr=0; shift ;;
    --out) out="$2"; shift 2 ;;
    --results) saved="$2"; shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d); server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
results="$tmp/results.tsv"; : >"$results"
instr_out=""
# Two cores or more: server on the first, load on the second.
if [ "$(nproc)" -ge 2 ]; then server_cpu=(taskset -c 0); load_cpu=(taskset -c 1); pinning="server taskset -c 0, load taskset -c 1"
else server_cpu=(); load_cpu=(); pinning="one core: no pinning"; fi
h2load_n=$([ "$quick" = 1 ] && echo 20000 || echo 200000)
if [ -n "$saved" ]; then
  # Values from an earlier run: the `metric<TAB>server<TAB>value` lines of its output.
  grep -P '^[^\t]+\t[^\t]+\t[^\t]+$' "$saved" >"$results"
else
for tool in h2load taskset python3; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is missing (apt-get install nghttp2-client util-linux python3)" >&2; exit 1; }
done
if [ "$instr" = 1 ] && ! command -v valgrind >/dev/null; then
  echo "compare.sh: valgrind is missing (apt-get install valgrind), or pass --no-instr" >&2; exit 1
fi
[ -d "$peers/tonic-demo" ] && [ -d "$peers/bare-h2" ] || { echo "compare.sh: no reference peers in $peers (set PEERS_DIR)" >&2; exit 1; }

echo "== building (release): ours into $target" >&2
cargo build --release --quiet -p h2grpc-demo -p h2grpc-interop -p h2grpc-bench --bins
if [ -n "${PEERS_BIN:-}" ]; then
  peers_bin="$PEERS_BIN"
else
  echo "== building the peers into $peers_target" >&2
  cargo build --release --quiet --manifest-path "$peers/tonic-demo/Cargo.toml" --target-dir "$peers_target"
  cargo build --release --quiet --manifest-path "$peers/bare-h2/Cargo.toml" --target-dir "$peers_target"
  peers_bin="$peers_target/release"
fi
bench="$target/release/h2grpc-bench"
ours_cmd="$target/release/demo-server --quiet --grace-secs 1"
interop_cmd="$target/release/interop-server --host 127.0.0.1"
tonic_cmd="$peers_bin/tonic-demo-server --quiet"
bare_cmd="$peers_bin/bare-h2-server --inline"
tonic_client="$peers_bin/tonic-demo-client"


free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$results"; echo "   $1 [$2] = $3" >&2; }
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); v=d
for k in sys.argv[1].split("."): v=v[k] if v is not None else None
print(v if v is not None else "nan")' "$1"; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# CPU time a process has used, in seconds (utime + stime of /proc/PID/stat).
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
now_s() { date +%s.%N; }
# Share of one core the server used between two (cpu_s, now_s) readings.
share() { python3 -c 'import sys; c0,t0,c1,t1=map(float,sys.argv[1:]); print(f"{100*(c1-c0)/(t1-t0):.0f}")' "$@"; }

# start NAME "COMMAND" [interop]: a server on a free port, pinned; sets port and server_pid.
start() {
  port=$(free_port)
  if [ "${3:-}" = interop ]; then "${server_cpu[@]}" $2 --port "$port" >/dev/null 2>&1 &
  else "${server_cpu[@]}" $2 --addr "127.0.0.1:$port" >/dev/null 2>&1 & fi
  server_pid=$!
  wait_port "$port" || { echo "compare.sh: $1 did not start: $2" >&2; exit 1; }
}
stop() { kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; }

# The generator pinned; a run warms up 1 s unless it says otherwise.
gen() { "${load_cpu[@]}" "$bench" --addr "127.0.0.1:$port" --quiet --json "$@"; }
w=(--warmup 1)

unary_h2load() {
  local o c0; c0=$(cpu_s "$server_pid")
  o=$("${load_cpu[@]}" h2load -n "$h2load_n" -c 4 -m 64 -t 1 --data="$peers/demo-request.grpc" \
    -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$port/demo.GRPCDemo/SimpleMethod")
  echo "$o" | grep -q " 0 failed, 0 errored" || { echo "h2load saw failures on $1:" >&2; echo "$o" >&2; }
  record "unary calls/s, h2load 4x64" "$1" "$(echo "$o" | sed -n 's/^finished in .*s, \([0-9.]*\) req\/s.*/\1/p')"
  record "server CPU us/call, h2load 4x64" "$1" "$(python3 -c 'import sys; print(1e6*(float(sys.argv[2])-float(sys.argv[1]))/int(sys.argv[3]))' "$c0" "$(cpu_s "$server_pid")" "$h2load_n")"
}

# Measurements every demo.GRPCDemo server answers (bare h2: unary shapes and open streams).
measure_demo() {
  local who=$1 r
  unary_h2load "$who"
  local c0 t0
  c0=$(cpu_s "$server_pid") t0=$(now_s)
  r=$(gen --connections 4 --concurrency 64 --duration "$duration" "${w[@]}")
  [ "$(echo "$r" | json failed_calls)" = 0 ] || echo "h2grpc-bench saw failures on $who: $r" >&2
  record "unary calls/s, h2grpc-bench 4x64" "$who" "$(echo "$r" | json calls_per_s)"
  record "h2grpc-bench client CPU us/call at 4x64" "$who" "$(echo "$r" | json cpu.us_per_call)"
  record "unary 4x64 by h2grpc-bench: server core use %" "$who" "$(share "$c0" "$t0" "$(cpu_s "$server_pid")" "$(now_s)")"
  r=$(gen --connections 1 --concurrency 1 --duration "$duration" "${w[@]}")
  record "unary latency 1x1 p50 us" "$who" "$(echo "$r" | json latency_us.p50)"
  record "unary latency 1x1 p99 us" "$who" "$(echo "$r" | json latency_us.p99)"
  if [ "$who" != bare-h2 ]; then
    c0=$(cpu_s "$server_pid") t0=$(now_s)
    r=$(gen --kind client-stream --messages 0 --duration "$duration" "${w[@]}")
    record "client-stream msgs/s, one call, 27 B" "$who" "$(echo "$r" | json sent_messages_per_s)"
    record "client-stream 27 B: server core use %" "$who" "$(share "$c0" "$t0" "$(cpu_s "$server_pid")" "$(now_s)")"
    record "client-stream 27 B: h2grpc-bench core use %" "$who" "$(python3 -c 'import sys; print(round(100*float(sys.argv[1])))' "$(echo "$r" | json cpu.utilisation)")"
    r=$(gen --kind client-stream --messages 0 --payload 65536 --duration "$duration" "${w[@]}")
    record "client-stream MB/s, one call, 64 KiB msgs" "$who" "$(echo "$r" | json sent_mb_per_s)"
    r=$(gen --kind server-stream --concurrency 1 --duration "$duration" "${w[@]}")
    record "server-stream msgs/s, demo (5 per call), 1x1" "$who" "$(echo "$r" | json received_messages_per_s)"
    local o; o=$("${load_cpu[@]}" "$tonic_client" --addr "http://127.0.0.1:$port" --bench --conns 4 --inflight 64 --duration "$duration" --warmup 1)
    record "tonic-demo-client calls/s 4x64 (vs h2grpc-bench row)" "$who" "$(echo "$o" | sed -n 's/.*qps=\([0-9.]*\).*/\1/p')"
  fi
  # Memory: 1,000 idle connections, then 10,000 open streams (50 x 200, a message a second).
  local base; base=$(rss_mib "$server_pid")
  gen --connections 1000 --concurrency 0 --duration 4 --warmup 0 >/dev/null & local g=$!
  sleep 3.5; record "server RSS MiB, 1,000 idle connections" "$who" "$(rss_mib "$server_pid")"; wait $g || true
  gen --kind client-stream --messages 0 --message-interval 1 --connections 50 --concurrency 200 --duration 5 --warmup 0 >/dev/null & g=$!
  sleep 4.5; record "server RSS MiB, 10,000 open streams" "$who" "$(rss_mib "$server_pid")"; wait $g || true
  record "server RSS MiB, at start" "$who" "$base"
}

# grpc.testing.TestService (ours only: neither peer serves it).
measure_test() {
  local who=$1 r
  r=$(gen --service test --kind server-stream --messages 100000 --payload 0 --concurrency 1 --duration "$duration" "${w[@]}")
  record "server-stream msgs/s, one call, tiny msgs (TestService)" "$who" "$(echo "$r" | json received_messages_per_s)"
  r=$(gen --service test --kind server-stream --messages 2000 --payload 65536 --concurrency 1 --duration "$duration" "${w[@]}")
  record "server-stream MB/s, 64 KiB msgs (TestService)" "$who" "$(echo "$r" | json received_mb_per_s)"
  r=$(gen --service test --kind unary --payload 1048576 --concurrency 1 --duration "$duration" "${w[@]}")
  record "large unary MB/s, 1 MiB each way (TestService)" "$who" "$(echo "$r" | json mb_per_s)"
}

for round in $(seq "$rounds"); do
  echo "== round $round of $rounds" >&2
  start ours "$ours_cmd"; measure_demo ours; stop
  start tonic "$tonic_cmd"; measure_demo tonic; stop
  start bare-h2 "$bare_cmd"; measure_demo bare-h2; stop
  start ours "$interop_cmd" interop; measure_test ours; stop
done

if [ "$instr" = 1 ]; then
  echo "== instructions per call (callgrind)" >&2
  for s in ours tonic bare-h2; do
    case $s in ours) c=$ours_cmd ;; tonic) c=$tonic_cmd ;; bare-h2) c=$bare_cmd ;; esac
    line=$(N1=${N1:-2000} N2=${N2:-$([ "$quick" = 1 ] && echo 6000 || echo 12000)} "$peers/instr-per-call.sh" "$c" | tail -1)
    instr_out+="$line"$'\n'
    record "instructions per unary call (callgrind)" "$s" "$(echo "$line" | awk '{print $NF}')"
  done
fi

fi

table=$(python3 - "$results" <<'EOF'
import sys, statistics, collections
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    metric, who, value = line.rstrip("\n").split("\t")
    try:
        v = float(value)
    except ValueError:
        continue
    if v != v:
        continue
    rows.setdefault(metric, collections.defaultdict(list))[who].append(v)
def fmt(v):
    if v is None: return "–"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
print("| measurement | ours | tonic | bare h2 | ours / tonic | ours / bare h2 | runs |")
print("|---|---:|---:|---:|---:|---:|---:|")
for metric, by in rows.items():
    med = {w: statistics.median(v) for w, v in by.items()}
    o, t, b = med.get("ours"), med.get("tonic"), med.get("bare-h2")
    ratio = lambda x, y: f"{x / y:.2f}×" if x is not None and y else "–"
    n = max(len(v) for v in by.values())
    print(f"| {metric} | {fmt(o)} | {fmt(t)} | {fmt(b)} | {ratio(o, t)} | {ratio(o, b)} | {n} |")
ours_c = rows.get("unary calls/s, h2grpc-bench 4x64", {})
tonic_c = rows.get("tonic-demo-client calls/s 4x64 (vs h2grpc-bench row)", {})
both = [w for w in ("ours", "tonic", "bare-h2") if ours_c.get(w) and tonic_c.get(w)]
if both:
    print()
    print("Client against client (unary 4x64, same server, medians):")
    print()
    print("| server | h2grpc-bench calls/s | tonic-demo-client calls/s | ours / tonic |")
    print("|---|---:|---:|---:|")
    for w in both:
        o, t = statistics.median(ours_c[w]), statistics.median(tonic_c[w])
        print(f"| {w} | {fmt(o)} | {fmt(t)} | {o / t:.2f}× |")
EOF
)
echo "$table"

# The hand-written analysis at the end of the old file (from the marker on) is kept.
marker='<!-- kept by compare.sh: everything below is written by hand -->'
kept=""
[ -f "$out" ] && kept=$(sed -n "/^$marker\$/,\$p" "$out")
h2v=$(awk '/^name = "h2"$/ {getline; print $3}' "$root/Cargo.lock" | tr -d '"')
tonicv=$(awk '/^name = "tonic"$/ {getline; print $3}' "$peers/tonic-demo/Cargo.lock" | tr -d '"')
{
  echo "# Benchmarks"
  echo
  if [ -n "$saved" ]; then echo "Tabulated by \`bench/compare.sh --results\` on $(date -u '+%Y-%m-%d %H:%M UTC') from the values of an earlier run (below)."
  else echo "Written by \`bench/compare.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')."; fi
  echo
  echo "- Machine: $(nproc) CPU(s), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(uname -sr), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM."
  echo "- Versions: $(rustc --version), h2 $h2v (ours), tonic $tonicv (peer), $(h2load --version 2>/dev/null | head -1)."
  echo "- Shape: $rounds round(s), servers alternated ours → tonic → bare h2 in every round; $pinning;"
  echo "  ${duration} s measured per generator run after 1 s of warm-up; h2load -n $h2load_n -c 4 -m 64 -t 1."
  echo "  Figures are medians over the rounds; ratios are of the medians (for latency, RSS and"
  echo "  instructions, lower is better: a ratio below 1 favours ours)."
  echo "- Noise: this machine is shared with other builds and tests running at the same time, so"
  echo "  absolute figures move from run to run; read the ratios, and rerun before trusting a small gap."
  echo
  echo "$table"
  echo
  echo "What each row is:"
  echo
  echo "- *unary calls/s*: \`demo.GRPCDemo/SimpleMethod\` with the official client's 27-byte request, 4"
  echo "  connections × 64 calls in flight, by h2load (HTTP-level; grpc-status is checked by the"
  echo "  h2grpc-bench rows, which count every non-OK status) and by \`h2grpc-bench\`."
  echo "- *tonic-demo-client*: tonic's client in the same shape against the same server; compare"
  echo "  it with the h2grpc-bench row above it (client against client)."
  echo "- *client-stream*: one \`ClientStreamingMethod\` call for the whole run, messages handed to the"
  echo "  channel as the server's window admits. *server-stream (demo)*: the demo method answers 5"
  echo "  messages per call, so it measures calls as much as messages."
  echo "- *TestService rows*: our \`interop-server\`; the peers do not serve \`grpc.testing\`, so there"
  echo "  is nothing to divide by."
  echo "- *RSS*: the server's VmRSS while \`h2grpc-bench\` holds 1,000 idle connections"
  echo "  (\`--concurrency 0\`), then 50 connections × 200 client-streaming calls sending one message"
  echo "  a second (\`--message-interval 1\`)."
  echo "- *instructions per call*: \`../shared/peers/instr-per-call.sh\` (callgrind, h2load 4 × 64;"
  echo "  the difference between two runs of N1 and N2 calls)."
  echo
  echo "Commands (PORT a free port; the load pinned with taskset -c 1, the server with taskset -c 0):"
  echo
  echo '```'
  echo "bench/compare.sh --rounds $rounds --duration $duration"
  echo "demo-server --quiet --addr 127.0.0.1:PORT | tonic-demo-server --quiet --addr ... | bare-h2-server --inline --addr ..."
  echo "h2load -n $h2load_n -c 4 -m 64 -t 1 --data=demo-request.grpc -H 'content-type: application/grpc' -H 'te: trailers' http://127.0.0.1:PORT/demo.GRPCDemo/SimpleMethod"
  echo "h2grpc-bench --addr 127.0.0.1:PORT --connections 4 --concurrency 64 --duration $duration --warmup 1 --json"
  echo "h2grpc-bench --addr 127.0.0.1:PORT --connections 1 --concurrency 1 --duration $duration"
  echo "h2grpc-bench --addr 127.0.0.1:PORT --kind client-stream --messages 0 [--payload 65536]"
  echo "h2grpc-bench --addr 127.0.0.1:PORT --kind server-stream --concurrency 1"
  echo "tonic-demo-client --addr http://127.0.0.1:PORT --bench --conns 4 --inflight 64 --duration $duration --warmup 1"
  echo "h2grpc-bench --addr 127.0.0.1:PORT --connections 1000 --concurrency 0 --duration 4"
  echo "h2grpc-bench --addr 127.0.0.1:PORT --kind client-stream --messages 0 --message-interval 1 --connections 50 --concurrency 200"
  echo "interop-server --port PORT; h2grpc-bench --service test --kind server-stream --messages 100000 --payload 0 | --messages 2000 --payload 65536"
  echo "h2grpc-bench --service test --kind unary --payload 1048576 --concurrency 1"
  [ -n "$instr_out" ] && echo "../shared/peers/instr-per-call.sh 'SERVER COMMAND'   # per server"
  echo '```'
  echo
  echo "Every value measured (metric, server, value), in order:"
  echo
  echo '```'
  cat "$results"
  echo '```'
  if [ -n "$kept" ]; then echo; echo "$kept"; fi
} >"$out"
echo "compare.sh: wrote $out" >&2
