#!/usr/bin/env bash
# Stream-to-stream pipelines measured with `sluice bench --mode pipeline`, in two scenarios, each
# on a server of its own (release build, temporary data directory, 127.0.0.1, stopped by PID):
#   jq      a [[processors]] jq transform from `src` to `out` in the configuration file:
#           select(.kind == "click") | .processed_at = now
#   python  a Python Lambda function (awslambdaric, the repository's .venv) behind an event source
#           mapping on `src` (BatchSize 500, StartingPosition LATEST, ParallelizationFactor 4),
#           writing each batch to `out` with one boto3 put_records call
# Before measuring, each scenario puts a probe record into `src` until something comes out of
# `out` (the processor is attached), then runs an unreported warm-up of 20,000 records drained
# to the end (every shard and lane has run once: the Lambda function's processes are warm).
# Prints "== <scenario>" and the JSON report of each. See docs/benchmarks.md, "Pipeline".
#
# Usage: scripts/bench-pipeline.sh [jq] [python]        (default: both)
# Env:   SLUICE_BENCH_PORT    the port (default 47711)
#        BENCH_ARGS           flags for both runs (default: 4 shards, 100-byte records, batches
#                             of 500, 16 connections, 10 s, drain timeout 30 s, and a 5-second
#                             pass-through phase: the same puts and reads with nothing between)
#        JQ_BENCH_ARGS, PY_BENCH_ARGS   more flags for one scenario (e.g. "--rate 20000")
#        JQ_BATCH_SIZE        the jq processor's batch_size (default 5000: each round waits for
#                             its outputs to be durable, and larger rounds wait less often)
#        PYTHON               the interpreter of the handlers and of the setup (default .venv)
#        SLUICE_BIN           a sluice binary to use instead of building target/release/sluice
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scenarios=("$@")
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=(jq python)
port=${SLUICE_BENCH_PORT:-47711}
endpoint="http://127.0.0.1:$port"
python=${PYTHON:-$root/.venv/bin/python}
bench_args=${BENCH_ARGS:---shards 4 --record-bytes 100 --batch 500 --concurrency 16 --duration 10 --drain-timeout 30 --passthrough-duration 5}
# shellcheck source=scripts/bench-server.sh
source "$root/scripts/bench-server.sh"

create_streams() {
  "$bin" stream create src --shards 4 --endpoint "$endpoint" >&2
  "$bin" stream create out --shards 4 --endpoint "$endpoint" >&2
}

# Puts a probe record into src until a record comes out of out (60 s at most).
wait_for_pipeline() {
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    "$bin" put src '{"id":0,"ts_us":0,"kind":"click","probe":true}' --endpoint "$endpoint" 2>/dev/null || true
    for _ in 1 2 3 4 5; do
      if [[ -n $("$bin" tail out --from trim-horizon --no-follow --endpoint "$endpoint") ]]; then
        return 0
      fi
      sleep 1
    done
  done
  echo "nothing came out of the pipeline within 60 s" >&2
  return 1
}

# 20,000 records through the pipeline, drained, report discarded.
warm_up() {
  "$bin" bench --endpoint "$endpoint" --mode pipeline --stream src --output-stream out \
    --records 20000 --duration 60 --skip-raw-put --drain-timeout 120 >/dev/null
}

bench() {
  # shellcheck disable=SC2086 # the *_ARGS are lists of flags
  "$bin" bench --endpoint "$endpoint" --mode pipeline --stream src --output-stream out \
    $bench_args "$@"
}

run_jq() {
  local dir=$work/jq
  mkdir -p "$dir"
  # TRIM_HORIZON: records put before the processor attached are processed too.
  cat >"$dir/sluice.toml" <<TOML
[[processors]]
name = "bench"
source = "src"
output = "out"
program = 'select(.kind == "click") | .processed_at = now'
starting_position = "TRIM_HORIZON"
batch_size = ${JQ_BATCH_SIZE:-5000}
TOML
  start_server "$dir" --config "$dir/sluice.toml"
  create_streams
  wait_for_pipeline
  warm_up
  # shellcheck disable=SC2086
  bench ${JQ_BENCH_ARGS:-}
  stop_server
}

run_python() {
  local dir=$work/python
  start_server "$dir"
  create_streams
  "$python" - "$endpoint" <<'PY' >&2
import io, sys, time, zipfile

import boto3

endpoint = sys.argv[1]
session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                region_name="us-east-1")
lam = session.client("lambda", endpoint_url=endpoint)
kinesis = session.client("kinesis", endpoint_url=endpoint)

# One put_records call per batch (BatchSize is at most 500); a batch with a refused record
# fails whole and is retried by the mapping (at-least-once: duplicates are possible).
HANDLER = '''import base64, os
import boto3

kinesis = boto3.client("kinesis")
OUT = os.environ["OUT"]

def handler(event, context):
    records = [{"Data": base64.b64decode(r["kinesis"]["data"]),
                "PartitionKey": r["kinesis"]["partitionKey"]} for r in event["Records"]]
    resp = kinesis.put_records(StreamName=OUT, Records=records)
    if resp["FailedRecordCount"]:
        raise RuntimeError("%d of %d records refused" % (resp["FailedRecordCount"], len(records)))
    return {"forwarded": len(records)}
'''
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("app.py", HANDLER)
lam.create_function(FunctionName="forward", Runtime="python3.12", Handler="app.handler",
                    Role="arn:aws:iam::000000000000:role/lambda-role", Code={"ZipFile": buf.getvalue()},
                    Timeout=60, MemorySize=512, Environment={"Variables": {"OUT": "out"}})
for _ in range(600):
    if lam.get_function_configuration(FunctionName="forward")["State"] == "Active":
        break
    time.sleep(0.1)
arn = kinesis.describe_stream_summary(StreamName="src")["StreamDescriptionSummary"]["StreamARN"]
uuid = lam.create_event_source_mapping(FunctionName="forward", EventSourceArn=arn, BatchSize=500,
                                       StartingPosition="LATEST", ParallelizationFactor=4)["UUID"]
for _ in range(600):
    state = lam.get_event_source_mapping(UUID=uuid)["State"]
    if state == "Enabled":
        break
    time.sleep(0.1)
else:
    sys.exit(f"the event source mapping is {state}, not Enabled, after 60 s")
print(f"function forward, mapping {uuid}: Enabled")
PY
  wait_for_pipeline
  warm_up
  # shellcheck disable=SC2086
  bench ${PY_BENCH_ARGS:-}
  stop_server
}

for s in "${scenarios[@]}"; do
  case $s in
    jq | python)
      echo "== $s"
      "run_$s"
      ;;
    *)
      echo "unknown scenario $s (jq or python)" >&2
      exit 2
      ;;
  esac
done
