"""`sluice demo`: the clickstream pipeline end to end, checked from outside.

One run of `sluice demo --events 2000 --keep-running` (its own server, data directory under
pytest's tmp_path): while its server is still up the test lists the lake over the S3 API and
reads the dead-letter stream with boto3, then stops the demo with Ctrl-C (SIGINT) and checks
the exit code, that the server is gone, that the Parquet files are in the
event_type=/dt=/hour= layout, and that pyarrow and DuckDB read from them the counts the demo
printed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from conftest import _binary

EVENTS = 2000
RUN_TIMEOUT_S = 90
EVENT_TYPES = {"page_view", "click", "add_to_cart", "purchase"}
LAYOUT = re.compile(
    r"^clicks/event_type=(page_view|click|add_to_cart|purchase)/dt=\d{4}-\d{2}-\d{2}/hour=\d{2}/[^/]+\.parquet$")
TYPE_ROW = re.compile(r"^\s{4}(page_view|click|add_to_cart|purchase)\s+([\d,]+)\s+([\d,]+)$")
HOUR_ROW = re.compile(r"^\s{4}(\d{4}-\d{2}-\d{2}) (\d{2}):00\s+([\d,]+)\s+([\d,]+)$")
GENERATED = re.compile(r"^Generated ([\d,]+) events: ([\d,]+) from people, ([\d,]+) from crawlers "
                       r"\(filtered out\), ([\d,]+) malformed \(filtered out\), ([\d,]+) not JSON")


def num(s: str) -> int:
    return int(s.replace(",", ""))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Runs the demo until its server is kept running; yields (stdout lines, data dir, proc)."""
    binary = _binary()
    if not binary.exists():
        pytest.fail(f"sluice binary not found at {binary} (build it, or set SLUICE_BIN)", pytrace=False)
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    proc = subprocess.Popen(
        [str(binary), "demo", "--events", str(EVENTS), "--rate", "2000", "--flush-interval", "3",
         "--seed", "7", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", "--keep-running"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    lines: list[str] = []
    kept = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("The server keeps running"):
                kept.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    server_pid = None
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not kept.is_set() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if not kept.is_set():
            proc.kill()
            proc.wait(timeout=10)
            pytest.fail("the demo did not finish: exit code %s\nstdout:\n%s\nstderr:\n%s"
                        % (proc.returncode, "\n".join(lines), proc.stderr.read()), pytrace=False)
        server_pid = int(re.search(r"\(pid (\d+)", lines[-1]).group(1))
        yield lines, data_dir, proc, server_pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if server_pid is not None:
            try:
                os.kill(server_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def summary(lines: list[str]) -> tuple[dict, dict, dict]:
    """The demo's printed tables: per event type and per (dt, hour), rows read back and
    generated; and the generated line's numbers."""
    types, hours = {}, {}
    for line in lines:
        if m := TYPE_ROW.match(line):
            types[m.group(1)] = (num(m.group(2)), num(m.group(3)))
        elif m := HOUR_ROW.match(line):
            hours[(m.group(1), m.group(2))] = (num(m.group(3)), num(m.group(4)))
    gen = next(m for l in lines if (m := GENERATED.match(l)))
    generated = dict(zip(["total", "people", "crawlers", "malformed", "not_json"], map(num, gen.groups())))
    return types, hours, generated


def endpoint(lines: list[str]) -> str:
    return re.search(r"running at (http://127\.0\.0\.1:\d+)", lines[-1]).group(1)


def test_demo_while_running(demo):
    lines, data_dir, proc, server_pid = demo
    text = "\n".join(lines)
    assert "note: this server cannot convert" not in text, text
    types, hours, generated = summary(lines)
    assert generated["total"] == EVENTS
    assert generated["people"] + generated["crawlers"] + generated["malformed"] + generated["not_json"] == EVENTS
    assert generated["crawlers"] > 0 and generated["malformed"] > 0
    # What the demo read back equals what it generated, per type and hour, and it says so.
    assert set(types) == EVENT_TYPES
    assert all(got == want for got, want in types.values()), types
    assert sum(got for got, _ in types.values()) == generated["people"]
    assert len(hours) >= 3 and all(got == want for got, want in hours.values()), hours
    assert "OK: the lake holds what was generated minus what was filtered" in text

    # The lake over the S3 API, on the demo's server.
    url = endpoint(lines)
    s3 = boto3.client("s3", endpoint_url=url, config=Config(retries={"max_attempts": 1}))
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="clickstream", Prefix="clicks/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys and all(LAYOUT.match(k) for k in keys), keys
    local = sorted(str(p.relative_to(data_dir / "lake" / "clickstream"))
                   for p in (data_dir / "lake" / "clickstream" / "clicks").rglob("*.parquet"))
    assert sorted(keys) == local

    # The records jq could not read are in the dead-letter stream, with the processor's error.
    kinesis = boto3.client("kinesis", endpoint_url=url)
    dead = []
    for shard in kinesis.list_shards(StreamName="clicks-dead")["Shards"]:
        it = kinesis.get_shard_iterator(StreamName="clicks-dead", ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        dead += kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]
    assert len(dead) == generated["not_json"]
    assert all(b"not JSON" in r["Data"] for r in dead)


def test_demo_stops_on_ctrl_c_and_the_files_read_back(demo):
    import duckdb
    import pyarrow.dataset as ds

    lines, data_dir, proc, server_pid = demo
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    # Its server is gone too.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the demo's server is still running after the demo stopped")

    types, hours, _ = summary(lines)
    root = data_dir / "lake" / "clickstream" / "clicks"
    files = list(root.rglob("*.parquet"))
    assert files
    for f in files:
        assert LAYOUT.match(f.relative_to(root.parent).as_posix()), f
    for f in files:
        assert f.read_bytes()[:4] == b"PAR1"

    # pyarrow: the partitions come from the path (hive), the columns from the files.
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    assert {"event_id", "session_id", "timestamp", "device_class", "referrer_type", "processed_at"} <= set(
        table.column_names)
    by_type: dict = {}
    by_hour: dict = {}
    for t, d, h in zip(table["event_type"].to_pylist(), table["dt"].to_pylist(), table["hour"].to_pylist()):
        by_type[str(t)] = by_type.get(str(t), 0) + 1
        key = (str(d), f"{int(h):02d}")
        by_hour[key] = by_hour.get(key, 0) + 1
    assert by_type == {t: got for t, (got, _) in types.items() if got}
    assert by_hour == {h: got for h, (got, _) in hours.items() if got}
    assert len(set(table["event_id"].to_pylist())) == table.num_rows
    assert set(table["device_class"].to_pylist()) <= {"mobile", "tablet", "desktop"}

    # DuckDB, the query the demo prints.
    rows = duckdb.sql(f"select event_type, count(*) from read_parquet('{root}/**/*.parquet', "
                      f"hive_partitioning=true) group by 1").fetchall()
    assert dict(rows) == by_type
