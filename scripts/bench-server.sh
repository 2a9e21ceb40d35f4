# Sourced by the bench scripts (bench-pipeline.sh, bench-delivery.sh): the binary, a temporary
# work directory removed on exit, and a sluice server of their own on 127.0.0.1:$port, stopped
# by its PID. Expects $root, $port and $python to be set.
#   SLUICE_BIN   a sluice binary to use instead of building target/release/sluice
if [[ -n ${SLUICE_BIN:-} ]]; then
  bin=$SLUICE_BIN
else
  cargo build --release -p sluice >&2
  bin=$root/target/release/sluice
fi

work=$(mktemp -d)
pid=
stop_server() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT

# start_server <dir> [serve flags...]: a server on 127.0.0.1:$port with its data under <dir>.
start_server() {
  local dir=$1
  shift
  mkdir -p "$dir"
  SLUICE_LAMBDA_PYTHON=$python "$bin" serve --data-dir "$dir/data" --listen "127.0.0.1:$port" "$@" \
    >"$dir/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    grep -q "listening" "$dir/server.log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not start; its log:" >&2
  cat "$dir/server.log" >&2
  return 1
}
