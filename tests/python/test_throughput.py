"""Per-shard throughput quotas (SLUICE_ENFORCE_THROUGHPUT) and ON_DEMAND scaling.

Each module fixture starts a private server with the settings it needs, so these tests are
skipped when SLUICE_ENDPOINT points the suite at an external server. Exact texts are the ones
in /work/notes/reshard-efo-reference.md section 5.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import (
    ACCESS_KEY,
    ACCOUNT,
    REGION,
    SECRET_KEY,
    _start_server,
    _stop,
    all_shards,
    assert_client_error,
    even_ranges,
    make_client,
    read_shard,
    stream_arn,
    unique_name,
    wait_active,
)

pytestmark = pytest.mark.skipif(bool(os.environ.get("SLUICE_ENDPOINT")), reason="needs to start its own server")

PTEE = "ProvisionedThroughputExceededException"


def shard_id(i: int) -> str:
    return f"shardId-{i:012d}"


def write_rate_msg(sid: str, name: str) -> str:
    return f"Rate exceeded for shard {sid} in stream {name} under account {ACCOUNT}."


def read_rate_msg(sid: str, name: str) -> str:
    return f"Rate exceeded for Shard - {ACCOUNT}/{name}/{sid}"


def client(endpoint: str, retries: dict | None = None):
    """A boto3 Kinesis client; retries=None gives botocore's defaults (legacy mode, 5 attempts),
    the client an application gets without configuring anything."""
    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                    region_name=REGION)
    cfg = Config(connect_timeout=5, read_timeout=30) if retries is None else \
        Config(connect_timeout=5, read_timeout=30, retries=retries)
    return session.client("kinesis", endpoint_url=endpoint, config=cfg)


def is_open(s: dict) -> bool:
    return "EndingSequenceNumber" not in s["SequenceNumberRange"]


def rng(s: dict) -> tuple[int, int]:
    return int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])


def read_all(c, name: str, sid: str, closed: bool, max_calls: int = 200) -> list[dict]:
    """TRIM_HORIZON to the end: a closed shard until NextShardIterator is gone, an open one
    until an empty read at MillisBehindLatest 0."""
    it = c.get_shard_iterator(StreamName=name, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out = []
    for _ in range(max_calls):
        resp = c.get_records(ShardIterator=it)
        out.extend(resp["Records"])
        it = resp.get("NextShardIterator")
        if it is None:
            assert closed, f"open shard {sid} ended: {resp}"
            return out
        if not closed and not resp["Records"] and resp["MillisBehindLatest"] == 0:
            return out
    raise AssertionError(f"shard {sid} not read to its end in {max_calls} calls")


# ======================================================================================
# Provisioned quotas
# ======================================================================================

@pytest.fixture(scope="module")
def throttled_endpoint(aws_env, tmp_path_factory):
    srv = _start_server(tmp_path_factory.mktemp("sluice-tp-data"), tmp_path_factory.mktemp("sluice-tp-logs"),
                        {"SLUICE_ENFORCE_THROUGHPUT": "true"})
    try:
        yield srv.endpoint
    finally:
        _stop(srv.proc)


@pytest.fixture(scope="module")
def tc(throttled_endpoint):
    return make_client(throttled_endpoint)


@pytest.fixture
def tstream(tc):
    made = []

    def make(prefix: str, shards: int = 1) -> str:
        name = unique_name(prefix)
        tc.create_stream(StreamName=name, ShardCount=shards)
        wait_active(tc, name)
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            tc.delete_stream(StreamName=name)
        except ClientError:
            pass


def test_put_records_over_the_record_quota(tc, tstream):
    name = tstream("tprecs")
    t0 = time.monotonic()
    accepted: dict[bytes, str] = {}
    failed = 0
    for call in range(3):
        data = [f"{call}-{i}".encode() for i in range(500)]
        resp = tc.put_records(StreamName=name, Records=[{"Data": d, "PartitionKey": "k"} for d in data])
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        n_failed = 0
        for d, r in zip(data, resp["Records"]):
            if "SequenceNumber" in r:
                assert r["ShardId"] == shard_id(0)
                assert "ErrorCode" not in r
                accepted[d] = r["SequenceNumber"]
            else:
                assert r == {"ErrorCode": PTEE, "ErrorMessage": write_rate_msg(shard_id(0), name)}, r
                n_failed += 1
        assert resp["FailedRecordCount"] == n_failed
        failed += n_failed
    elapsed_ms = (time.monotonic() - t0) * 1000
    # A second's quota (1,000 records) at once, then 1 record/ms as the bucket refills.
    assert failed > 0
    assert 1000 <= len(accepted) <= 1000 + elapsed_ms + 20, (len(accepted), elapsed_ms)
    assert len(accepted) + failed == 1500

    # What was accepted is there, and nothing else.
    got = read_shard(tc, name, shard_id(0))
    assert {r["Data"]: r["SequenceNumber"] for r in got} == accepted
    assert len(got) == len(accepted)


def test_put_record_over_the_byte_quota_raises(tc, tstream, throttled_endpoint):
    name = tstream("tpbytes")
    big = b"x" * (900 * 1024)
    resp = tc.put_records(StreamName=name, Records=[{"Data": big, "PartitionKey": "a"},
                                                    {"Data": big, "PartitionKey": "b"}])
    assert resp["FailedRecordCount"] == 1
    assert "SequenceNumber" in resp["Records"][0]
    assert resp["Records"][1] == {"ErrorCode": PTEE, "ErrorMessage": write_rate_msg(shard_id(0), name)}

    once = client(throttled_endpoint, {"total_max_attempts": 1})
    with pytest.raises(ClientError) as ei:
        once.put_record(StreamName=name, Data=big, PartitionKey="c")
    assert_client_error(ei, PTEE, write_rate_msg(shard_id(0), name))
    # Small records still fit in what is left of the byte quota's second.
    ok = once.put_record(StreamName=name, Data=b"small", PartitionKey="d")
    assert ok["ShardId"] == shard_id(0)
    got = read_shard(tc, name, shard_id(0))
    assert [(r["PartitionKey"], len(r["Data"])) for r in got] == [("a", len(big)), ("d", 5)]


def test_sdk_retries_throttled_put_record(tstream, throttled_endpoint):
    """An application's PutRecord loop with an unconfigured boto3 client goes through the
    throttling: botocore retries ProvisionedThroughputExceededException with backoff."""
    name = tstream("tpsdk")
    c = client(throttled_endpoint)  # botocore defaults
    payload = 40 * 1024  # 75 x 40 KiB ~ 2.9 MiB: a second's byte quota at once, then ~2 s more
    sent = []
    retries = 0
    t0 = time.monotonic()
    for i in range(75):
        data = f"{i:04d}".encode() + b"." * (payload - 4)
        r = c.put_record(StreamName=name, Data=data, PartitionKey=f"p{i}")
        retries += r["ResponseMetadata"]["RetryAttempts"]
        sent.append((r["SequenceNumber"], data))
    elapsed = time.monotonic() - t0
    assert retries > 0, "nothing was throttled: the test did not test the quota"
    assert elapsed >= 1.0, elapsed
    # All of them, once, in order (reading ~2.9 MiB also goes over the 2 MiB/s read quota:
    # the SDK retries that too).
    got = read_all(c, name, shard_id(0), closed=False)
    assert [(r["SequenceNumber"], r["Data"]) for r in got] == sent


def test_get_records_over_five_calls_a_second(tc, tstream, throttled_endpoint):
    name = tstream("tpreads")
    tc.put_record(StreamName=name, Data=b"one", PartitionKey="k")
    once = client(throttled_endpoint, {"total_max_attempts": 1})
    it = once.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"]
    ok = 0
    with pytest.raises(ClientError) as ei:
        for _ in range(20):
            resp = once.get_records(ShardIterator=it)
            it = resp["NextShardIterator"]
            ok += 1
    assert_client_error(ei, PTEE, read_rate_msg(shard_id(0), name))
    assert 5 <= ok <= 7, ok
    # The quota comes back: a fifth of a second buys one call.
    time.sleep(0.45)
    assert once.get_records(ShardIterator=it)["Records"] == []
    # With the SDK's retries, a tight loop of reads just slows down.
    c = client(throttled_endpoint)
    it = c.get_shard_iterator(StreamName=name, ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"]
    retries = 0
    got = []
    for _ in range(10):
        resp = c.get_records(ShardIterator=it)
        retries += resp["ResponseMetadata"]["RetryAttempts"]
        got.extend(resp["Records"])
        it = resp["NextShardIterator"]
    assert [r["Data"] for r in got] == [b"one"]
    assert retries > 0


# ======================================================================================
# ON_DEMAND scaling
# ======================================================================================

SPLIT_AFTER_MS = 1500


@pytest.fixture(scope="module")
def on_demand_endpoint(aws_env, tmp_path_factory):
    srv = _start_server(tmp_path_factory.mktemp("sluice-od-data"), tmp_path_factory.mktemp("sluice-od-logs"),
                        {"SLUICE_ENFORCE_THROUGHPUT": "true",
                         "SLUICE_ON_DEMAND_SPLIT_AFTER_MS": str(SPLIT_AFTER_MS),
                         "SLUICE_MAINTENANCE_INTERVAL_MS": "250"})
    try:
        yield srv.endpoint
    finally:
        _stop(srv.proc)


def test_on_demand_stream_splits_a_hot_shard(on_demand_endpoint):
    c = client(on_demand_endpoint, {"mode": "standard", "max_attempts": 10})
    name = unique_name("odhot")
    c.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    summary = wait_active(c, name)
    assert summary["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert summary["OpenShardCount"] == 4
    shards = all_shards(c, name)
    assert sorted(rng(s) for s in shards) == even_ranges(4)
    s0_start, s0_end = rng(shards[0])
    assert shards[0]["ShardId"] == shard_id(0) and s0_start == 0

    rate_re = re.compile(rf"Rate exceeded for shard shardId-\d{{12}} in stream {re.escape(name)} "
                         rf"under account {ACCOUNT}\.")
    lock = threading.Lock()
    acked: dict[bytes, tuple[str, str]] = {}
    throttled = [0]
    errors: list[BaseException] = []
    drive_until = time.monotonic() + 5.0

    def producer(t: int):
        try:
            pc = client(on_demand_endpoint, {"mode": "standard", "max_attempts": 10})
            rnd = random.Random(t)
            n = 0
            while time.monotonic() < drive_until:
                # 250 records inside shard 0's hash range, retried (only the failed entries,
                # as the SDK documentation tells PutRecords users) until all are in.
                pending = []
                for _ in range(250):
                    pending.append({"Data": f"{t}-{n}".encode(), "PartitionKey": f"k{n % 7}",
                                    "ExplicitHashKey": str(rnd.randint(s0_start, s0_end))})
                    n += 1
                for _attempt in range(500):
                    resp = pc.put_records(StreamName=name, Records=pending)
                    retry = []
                    for rec, r in zip(pending, resp["Records"]):
                        if "SequenceNumber" in r:
                            with lock:
                                acked[rec["Data"]] = (r["SequenceNumber"], r["ShardId"])
                        else:
                            assert r["ErrorCode"] == PTEE, r
                            assert rate_re.fullmatch(r["ErrorMessage"]), r
                            retry.append(rec)
                    assert resp["FailedRecordCount"] == len(retry)
                    if not retry:
                        break
                    with lock:
                        throttled[0] += len(retry)
                    pending = retry
                    time.sleep(0.05)
                else:
                    raise AssertionError("records never accepted")
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=producer, args=(t,), daemon=True) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors, errors
    assert not any(th.is_alive() for th in threads)
    assert throttled[0] > 0, "the load never went over the shard quota"

    # Let the scaler see the load stop before taking the shard list.
    time.sleep(0.75)
    wait_active(c, name)
    shards = all_shards(c, name)
    by = {s["ShardId"]: s for s in shards}
    summary = c.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert summary["OpenShardCount"] > 4, shards
    assert len(shards) > 4
    assert not is_open(by[shard_id(0)])
    kids = [s for s in shards if s.get("ParentShardId") == shard_id(0)]
    assert len(kids) == 2 and all("AdjacentParentShardId" not in k for k in kids), kids
    (a0, a1), (b0, b1) = sorted(rng(k) for k in kids)
    assert a0 == s0_start and a1 + 1 == b0 and b1 == s0_end
    # The cold shards were left alone.
    for i in (1, 2, 3):
        assert is_open(by[shard_id(i)])
    assert c.describe_stream(StreamName=name)["StreamDescription"]["Shards"] == shards
    # Records went to the children once they existed.
    assert {sid for _, sid in acked.values()} - {shard_id(0)}

    # Every acknowledged record is there exactly once, in the shard its put named.
    seen: dict[bytes, tuple[str, str]] = {}
    for s in shards:
        for r in read_all(c, name, s["ShardId"], closed=not is_open(s)):
            assert r["Data"] not in seen, r
            seen[r["Data"]] = (r["SequenceNumber"], s["ShardId"])
    assert len(seen) == len(acked)
    assert seen == acked

    # Back to PROVISIONED and to ON_DEMAND again, by ARN.
    c.update_stream_mode(StreamARN=stream_arn(name), StreamModeDetails={"StreamMode": "PROVISIONED"})
    assert wait_active(c, name)["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    c.update_stream_mode(StreamARN=stream_arn(name), StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert wait_active(c, name)["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    c.delete_stream(StreamName=name)
