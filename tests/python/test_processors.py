"""Processors ([[processors]] in the configuration file): jq transforms from one stream into
another inside sluice, driven and checked with boto3 against the real binary.

Covers the README's clickstream example (filter events, add a processed_at timestamp), a split
of one record into several keyed by a `partition_key` expression read from a `program_file`,
records the program fails on in the dead-letter stream, per-key order under
parallelization_factor, a disabled processor, the metrics, resuming from the checkpoint after a
restart, and a program that does not compile stopping the start.

The module starts its own servers (a configuration file of its own). The streams are created
after the server starts: processors wait for them.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import _binary, _start_server, _stop, make_client, wait_active

if os.environ.get("SLUICE_ENDPOINT"):
    pytest.skip("needs its own server (a configuration file)", allow_module_level=True)

WAIT_S = 60.0


CONFIG = """
[[processors]]
name = "clicks"
source = "proc-clicks"
program = 'select(.event_type == "click") | .processed_at = now'
output = "proc-clicks-out"
dead_letter = "proc-clicks-dead"
starting_position = "TRIM_HORIZON"
parallelization_factor = 4

[[processors]]
name = "orders"
source = "proc-orders"
program_file = "orders.jq"
partition_key = '.sku'
output = "proc-items"
starting_position = "TRIM_HORIZON"

[[processors]]
name = "paused"
source = "proc-clicks"
program = '.'
output = "proc-paused-out"
starting_position = "TRIM_HORIZON"
enabled = false
"""

ORDERS_JQ = """# One record per item, with its order's id and the time it arrived.
.order_id as $order
| .items[]
| {order_id: $order, sku, qty, arrived_ms: $arrival_ms, from: $stream}
"""


def write_config(dir_: Path, text: str) -> Path:
    (dir_ / "orders.jq").write_text(ORDERS_JQ)
    path = dir_ / "sluice.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def proc_server(aws_env, tmp_path_factory):
    conf_dir = tmp_path_factory.mktemp("sluice-proc-conf")
    srv = _start_server(tmp_path_factory.mktemp("sluice-proc-data"), tmp_path_factory.mktemp("sluice-proc-logs"),
                        config=write_config(conf_dir, CONFIG))
    try:
        yield srv
    finally:
        _stop(srv.proc)


@pytest.fixture(scope="module")
def kin(proc_server):
    return make_client(proc_server.endpoint)


def create(kin, name: str, shards: int = 1) -> str:
    kin.create_stream(StreamName=name, ShardCount=shards)
    wait_active(kin, name)
    return name


def read_all(kin, stream: str) -> list[dict]:
    """Every record of every shard, shard by shard in order."""
    out = []
    for shard in kin.list_shards(StreamName=stream)["Shards"]:
        it = kin.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            resp = kin.get_records(ShardIterator=it, Limit=10000)
            out += resp["Records"]
            if not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0:
                break
            it = resp.get("NextShardIterator")
    return out


def wait_records(kin, stream: str, count: int, timeout: float = WAIT_S) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        got = read_all(kin, stream)
        if len(got) >= count:
            return got
        assert time.monotonic() < deadline, f"{len(got)} of {count} records in {stream}"
        time.sleep(0.2)


def put_json(kin, stream: str, docs: list[dict], key) -> None:
    resp = kin.put_records(StreamName=stream, Records=[
        {"Data": json.dumps(d).encode(), "PartitionKey": key(d)} for d in docs])
    assert resp["FailedRecordCount"] == 0, resp


def click_events(start: int, count: int) -> list[dict]:
    """The seeds' click events: every third a page view, five users."""
    return [{"event_type": "view" if n % 3 == 0 else "click", "user_id": f"user{n % 5}",
             "page": f"/page/{n % 7}", "n": n} for n in range(start, start + count)]


def test_clicks_are_filtered_stamped_and_keep_each_users_order(kin):
    for name, shards in [("proc-clicks", 2), ("proc-clicks-out", 2), ("proc-clicks-dead", 1),
                         ("proc-paused-out", 1)]:
        create(kin, name, shards)
    t0 = time.time()
    events = click_events(0, 90)
    put_json(kin, "proc-clicks", events, key=lambda d: d["user_id"])
    clicks = [e for e in events if e["event_type"] == "click"]

    out = wait_records(kin, "proc-clicks-out", len(clicks))
    assert len(out) == len(clicks)
    docs = [(r["PartitionKey"], json.loads(r["Data"])) for r in out]
    for key, d in docs:
        assert key == d["user_id"]
        assert d["event_type"] == "click"
        assert t0 - 1 <= d["processed_at"] <= time.time() + 1, d
        assert {k: v for k, v in d.items() if k != "processed_at"} == events[d["n"]]
    # Four lanes per shard, yet each user's clicks come out in the order they went in.
    for user in {e["user_id"] for e in events}:
        got = [d["n"] for key, d in docs if key == user]
        assert got == [e["n"] for e in clicks if e["user_id"] == user], user


def test_records_the_program_fails_on_go_to_the_dead_letter_stream(kin):
    bad = [(b"Hello, World!", "user-bad", "the record's data is not JSON: "),
           (b"5", "user-num", 'cannot index 5 with "event_type"')]
    puts = [kin.put_record(StreamName="proc-clicks", Data=data, PartitionKey=key) for data, key, _ in bad]
    dead = wait_records(kin, "proc-clicks-dead", 2)
    by_key = {r["PartitionKey"]: json.loads(r["Data"]) for r in dead}
    for (data, key, error), put in zip(bad, puts):
        d = by_key[key]
        assert d["error"].startswith(error), d
        assert base64.b64decode(d["data"]) == data
        assert d["partitionKey"] == key
        assert d["sequenceNumber"] == put["SequenceNumber"]
        assert d["shardId"] == put["ShardId"]
        assert (d["stream"], d["processor"]) == ("proc-clicks", "clicks")
        assert abs(d["approximateArrivalTimestamp"] - time.time()) < 60


def test_orders_are_split_into_items_keyed_by_sku(kin):
    create(kin, "proc-orders", 1)
    create(kin, "proc-items", 2)
    orders = [{"order_id": f"o{i}", "items": [{"sku": f"sku-{(i + j) % 4}", "qty": j + 1} for j in range(3)]}
              for i in range(10)]
    put_json(kin, "proc-orders", orders, key=lambda d: d["order_id"])
    items = wait_records(kin, "proc-items", 30)
    assert len(items) == 30
    got = sorted((r["PartitionKey"], json.loads(r["Data"])["order_id"], json.loads(r["Data"])["qty"]) for r in items)
    want = sorted((it["sku"], o["order_id"], it["qty"]) for o in orders for it in o["items"])
    assert got == want
    for r in items:
        d = json.loads(r["Data"])
        assert r["PartitionKey"] == d["sku"]
        assert d["from"] == "proc-orders"
        assert abs(d["arrived_ms"] / 1000 - time.time()) < 60
        assert list(d) == ["order_id", "sku", "qty", "arrived_ms", "from"], "keys in the program's order"


def test_a_disabled_processor_reads_nothing(kin):
    # By now the clicks processor has written its outputs; the disabled one, on the same
    # source, nothing.
    wait_records(kin, "proc-clicks-out", 60)
    time.sleep(1)
    assert read_all(kin, "proc-paused-out") == []


def test_metrics_count_each_processors_records(kin, proc_server):
    wait_records(kin, "proc-clicks-out", 60)
    wait_records(kin, "proc-clicks-dead", 2)
    deadline = time.monotonic() + WAIT_S
    while True:
        text = urllib.request.urlopen(proc_server.endpoint + "/metrics", timeout=10).read().decode()
        values = {}
        for line in text.splitlines():
            if line.startswith("sluice_processor_") and 'processor="clicks"' in line:
                name = line.split("{", 1)[0]
                values[name] = float(line.rsplit(" ", 1)[1])
        want = {"sluice_processor_input_records_total": 92.0,
                "sluice_processor_output_records_total": 60.0,
                "sluice_processor_dropped_records_total": 30.0,
                "sluice_processor_failed_records_total": 2.0}
        if values == want:
            return
        assert time.monotonic() < deadline, values
        time.sleep(0.2)


def test_a_restarted_server_resumes_from_the_checkpoint(aws_env, tmp_path):
    data, logs = tmp_path / "data", tmp_path / "logs"
    data.mkdir()
    logs.mkdir()
    config = write_config(tmp_path, CONFIG)
    srv = _start_server(data, logs, config=config)
    try:
        kin = make_client(srv.endpoint)
        for name, shards in [("proc-clicks", 1), ("proc-clicks-out", 1), ("proc-clicks-dead", 1)]:
            create(kin, name, shards)
        first = click_events(0, 30)
        put_json(kin, "proc-clicks", first, key=lambda d: d["user_id"])
        wait_records(kin, "proc-clicks-out", 20)
        time.sleep(1)  # the round's checkpoint is committed right after its outputs
    finally:
        _stop(srv.proc)
    srv = _start_server(data, logs, config=config)
    try:
        kin = make_client(srv.endpoint)
        put_json(kin, "proc-clicks", click_events(30, 30), key=lambda d: d["user_id"])
        out = wait_records(kin, "proc-clicks-out", 40)
        time.sleep(1)
        ns = [json.loads(r["Data"])["n"] for r in read_all(kin, "proc-clicks-out")]
        assert sorted(ns) == [n for n in range(60) if n % 3 != 0], "each click once: no re-read after the restart"
        assert len(out) == 40
    finally:
        _stop(srv.proc)


def test_a_program_that_does_not_compile_stops_the_start(aws_env, tmp_path):
    config = tmp_path / "sluice.toml"
    config.write_text(
        '[[processors]]\nname = "broken"\nsource = "a"\noutput = "b"\n'
        "program = 'select(.event_type ==)'\n"
    )
    proc = subprocess.run(
        [str(_binary()), "serve", "--config", str(config), "--data-dir", str(tmp_path / "data"),
         "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=30,
        env={k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")},
    )
    assert proc.returncode != 0
    assert "sluice listening" not in proc.stdout
    assert ('processor "broken": program does not compile: line 1, column 22: expected term, found `)`'
            in proc.stderr), proc.stderr
