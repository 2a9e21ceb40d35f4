#!/usr/bin/env bash
# Server CPU time per million records at the PutRecords bar's settings (4 shards, 100-byte
# records, batches of 500, 16 connections, 10 s), read from /proc/<pid>/stat around the run.
# Starts its own server on a temporary data directory and port, warms it up for 3 s, measures,
# stops it. Prints one JSON line.
# Usage: scripts/bench-cpu.sh [path/to/sluice]     (default: target/release/sluice)
set -euo pipefail
bin=${1:-target/release/sluice}
port=${SLUICE_BENCH_PORT:-47711}
dir=$(mktemp -d)
"$bin" serve --data-dir "$dir/data" --listen "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
  grep -q "listening" "$dir/server.log" 2>/dev/null && break
  sleep 0.1
done
endpoint="http://127.0.0.1:$port"
"$bin" bench --endpoint "$endpoint" --mode put --stream warm --duration 3 >/dev/null
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks)
report=$("$bin" bench --endpoint "$endpoint" --mode put --stream bench --shards 4 --record-bytes 100 \
  --batch 500 --concurrency 16 --duration 10)
t1=$(ticks)
hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
python3 - "$report" "$t0" "$t1" "$(getconf CLK_TCK)" "$hwm_kb" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
t0, t1, tck, hwm = map(float, sys.argv[2:])
cpu = (t1 - t0) / tck
print(json.dumps({
    "records": r["records"],
    "records_per_s": round(r["records_per_s"]),
    "server_cpu_s": round(cpu, 2),
    "server_cpu_s_per_million_records": round(cpu / (r["records"] / 1e6), 3),
    "peak_rss_mb": round(hwm / 1024, 1),
    "p50_ms": r["latency"]["p50_ms"],
    "p99_ms": r["latency"]["p99_ms"],
}))
PY
