#!/usr/bin/env bash
# PutRecordBatch into a Firehose delivery stream until the records are Parquet files in the lake,
# measured with `sluice bench --mode delivery` on a server of its own (release build, temporary
# data directory, 127.0.0.1, stopped by PID). The run first puts the same records with
# PutRecords into a scratch Kinesis stream (the raw rate of the same run), then creates the
# delivery stream `bench-delivery` (DirectPut into bucket bench-lake under bench/, OpenX JSON to
# SNAPPY Parquet with the schema inferred from the first buffer, SizeInMBs 64, IntervalInSeconds
# 1 unless BENCH_ARGS says otherwise) and puts into it, then waits until the server's
# DeliveryToS3.Records metric covers every acknowledged record.
#
# Prints the loadgen's JSON report with three more members:
#   server_peak_rss_mb   VmHWM of the server process at the end
#   lake_files, lake_bytes   the objects under bench-lake/bench/
#   parquet_rows         rows read back from those files with pyarrow (the repository's .venv),
#                        which must equal records_delivered
# See docs/benchmarks.md, "Delivery".
#
# Usage: scripts/bench-delivery.sh
# Env:   SLUICE_BENCH_PORT   the port (default 47712)
#        BENCH_ARGS          flags for the bench (default: 4 shards for the raw phase, 100-byte
#                            records, batches of 500, 16 connections, 10 s, raw phase 5 s,
#                            drain timeout 120 s)
#        PYTHON              the interpreter that reads the Parquet files (default .venv)
#        SLUICE_BIN          a sluice binary to use instead of building target/release/sluice
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
port=${SLUICE_BENCH_PORT:-47712}
endpoint="http://127.0.0.1:$port"
python=${PYTHON:-$root/.venv/bin/python}
bench_args=${BENCH_ARGS:---shards 4 --record-bytes 100 --batch 500 --concurrency 16 --duration 10 --raw-put-duration 5 --drain-timeout 120}
# shellcheck source=scripts/bench-server.sh
source "$root/scripts/bench-server.sh"
start_server "$work"

# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
"$bin" bench --endpoint "$endpoint" --mode delivery $bench_args --output "$work/report.json" >/dev/null
rss_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
"$python" - "$work/report.json" "$work/data/lake/bench-lake/bench" "$rss_kb" <<'PY'
import json, pathlib, sys

import pyarrow.parquet as pq

report = json.load(open(sys.argv[1]))
files = [p for p in pathlib.Path(sys.argv[2]).rglob("*") if p.is_file() and not p.name.startswith(".")]
report["server_peak_rss_mb"] = round(int(sys.argv[3]) / 1024, 1)
report["lake_files"] = len(files)
report["lake_bytes"] = sum(p.stat().st_size for p in files)
if report.get("format") == "parquet":
    report["parquet_rows"] = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
print(json.dumps(report, indent=2))
if report.get("format") == "parquet" and report["parquet_rows"] != report.get("records_delivered"):
    sys.exit("rows in the Parquet files differ from records_delivered")
PY
stop_server
