"""Kinesis control- and data-plane behaviour through boto3 (JSON 1.1 protocol).

Exact error texts are the AWS/kinesalite ones quoted in /work/notes/kinesis-reference.md.
Every test makes its own uniquely named streams.
"""

import base64
import datetime as dt
import os
import re
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import (
    ACCOUNT,
    HASH_MAX,
    all_shards,
    assert_client_error,
    even_ranges,
    md5_hash_key,
    read_shard,
    shard_for_hash,
    stream_arn,
    unique_name,
    wait_active,
    wait_gone,
)

SEQ_RE = re.compile(r"^(0|[1-9]\d{0,128})$")
UTC = dt.timezone.utc


def not_found(name):
    return f"Stream {name} under account {ACCOUNT} not found."


def shard_missing(shard_id, name):
    return f"Shard {shard_id} in stream {name} under account {ACCOUNT} does not exist"


def shard_id(i):
    return f"shardId-{i:012d}"


# ======================================================================================
# Stream lifecycle
# ======================================================================================

def test_create_describe_delete(kinesis):
    name = unique_name("life")
    before = time.time()
    resp = kinesis.create_stream(StreamName=name, ShardCount=2)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200

    summary = wait_active(kinesis, name)
    assert summary["StreamName"] == name
    assert summary["StreamARN"] == stream_arn(name)
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["RetentionPeriodHours"] == 24
    assert summary["OpenShardCount"] == 2
    assert summary["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert summary.get("EncryptionType") == "NONE"
    assert summary["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    created = summary["StreamCreationTimestamp"].timestamp()
    assert before - 60 < created < time.time() + 60

    desc = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert desc["StreamName"] == name
    assert desc["StreamARN"] == stream_arn(name)
    assert desc["StreamStatus"] == "ACTIVE"
    assert desc["RetentionPeriodHours"] == 24
    assert desc["HasMoreShards"] is False
    assert desc["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert desc["StreamCreationTimestamp"] == summary["StreamCreationTimestamp"]
    assert [s["ShardId"] for s in desc["Shards"]] == [shard_id(0), shard_id(1)]
    for s in desc["Shards"]:
        start = s["SequenceNumberRange"]["StartingSequenceNumber"]
        assert SEQ_RE.match(start), start
        assert "EndingSequenceNumber" not in s["SequenceNumberRange"]
        assert "ParentShardId" not in s and "AdjacentParentShardId" not in s

    assert name in kinesis.list_streams()["StreamNames"]

    resp = kinesis.delete_stream(StreamName=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    err = wait_gone(kinesis, name)
    assert err.response["Error"]["Message"] == not_found(name)
    with pytest.raises(ClientError) as ei:
        kinesis.describe_stream(StreamName=name)
    assert_client_error(ei, "ResourceNotFoundException", not_found(name))

    # The name is free again.
    kinesis.create_stream(StreamName=name, ShardCount=1)
    assert wait_active(kinesis, name)["OpenShardCount"] == 1
    kinesis.delete_stream(StreamName=name)


def test_describe_missing_stream(kinesis):
    name = unique_name("missing")
    for call in (kinesis.describe_stream, kinesis.describe_stream_summary, kinesis.delete_stream,
                 kinesis.list_shards):
        with pytest.raises(ClientError) as ei:
            call(StreamName=name)
        assert_client_error(ei, "ResourceNotFoundException", not_found(name))


def test_create_existing_stream_is_resource_in_use(kinesis, new_stream):
    name = new_stream("dup")
    with pytest.raises(ClientError) as ei:
        kinesis.create_stream(StreamName=name, ShardCount=1)
    assert_client_error(ei, "ResourceInUseException", f"Stream {name} under account {ACCOUNT} already exists.")
    # Still the original one-shard stream.
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 1


@pytest.mark.parametrize(
    "bad_name, constraint",
    [
        ("bad name!", "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"),
        ("slash/no", "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"),
        ("x" * 129, "Member must have length less than or equal to 128"),
    ],
)
def test_create_stream_bad_name(kinesis, bad_name, constraint):
    with pytest.raises(ClientError) as ei:
        kinesis.create_stream(StreamName=bad_name, ShardCount=1)
    assert_client_error(
        ei, "ValidationException",
        f"1 validation error detected: Value '{bad_name}' at 'streamName' failed to satisfy constraint: {constraint}",
    )


def test_create_stream_max_length_name_is_fine(kinesis):
    name = ("n" + uuid.uuid4().hex) * 4
    name = name[:128]
    kinesis.create_stream(StreamName=name, ShardCount=1)
    try:
        assert wait_active(kinesis, name)["StreamName"] == name
    finally:
        kinesis.delete_stream(StreamName=name)


def test_create_stream_zero_shards(kinesis_unvalidated):
    name = unique_name("zero")
    with pytest.raises(ClientError) as ei:
        kinesis_unvalidated.create_stream(StreamName=name, ShardCount=0)
    assert_client_error(
        ei, "ValidationException",
        "1 validation error detected: Value '0' at 'shardCount' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
    )


def test_create_stream_empty_name(kinesis_unvalidated):
    with pytest.raises(ClientError) as ei:
        kinesis_unvalidated.create_stream(StreamName="", ShardCount=1)
    assert_client_error(
        ei, "ValidationException",
        "2 validation errors detected: "
        "Value '' at 'streamName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
        "Value '' at 'streamName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    )


# ======================================================================================
# Shards and hash-key ranges
# ======================================================================================

@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_hash_key_ranges_split_evenly(kinesis, new_stream, n):
    name = new_stream(f"ranges{n}", shards=n)
    shards = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    assert [s["ShardId"] for s in shards] == [shard_id(i) for i in range(n)]
    got = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in shards]
    assert got == even_ranges(n)
    assert shards[0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert shards[-1]["HashKeyRange"]["EndingHashKey"] == "340282366920938463463374607431768211455"
    for (_, end), (start, _) in zip(got, got[1:]):
        assert start == end + 1
    if n == 3:
        assert shards[0]["HashKeyRange"]["EndingHashKey"] == "113427455640312821154458202477256070484"
    if n == 4:
        assert got[1][0] == 2**126 and got[2][0] == 2**127 and got[3][0] == 3 * 2**126


def test_describe_stream_paging(kinesis, new_stream):
    name = new_stream("dpage", shards=5)
    full = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert len(full["Shards"]) == 5 and full["HasMoreShards"] is False

    p1 = kinesis.describe_stream(StreamName=name, Limit=2)["StreamDescription"]
    assert [s["ShardId"] for s in p1["Shards"]] == [shard_id(0), shard_id(1)]
    assert p1["HasMoreShards"] is True
    p2 = kinesis.describe_stream(StreamName=name, Limit=2, ExclusiveStartShardId=shard_id(1))["StreamDescription"]
    assert [s["ShardId"] for s in p2["Shards"]] == [shard_id(2), shard_id(3)]
    assert p2["HasMoreShards"] is True
    p3 = kinesis.describe_stream(StreamName=name, Limit=2, ExclusiveStartShardId=shard_id(3))["StreamDescription"]
    assert [s["ShardId"] for s in p3["Shards"]] == [shard_id(4)]
    assert p3["HasMoreShards"] is False
    assert p1["Shards"] + p2["Shards"] + p3["Shards"] == full["Shards"]

    last = kinesis.describe_stream(StreamName=name, ExclusiveStartShardId=shard_id(4))["StreamDescription"]
    assert last["Shards"] == [] and last["HasMoreShards"] is False


def test_list_shards_paging(kinesis, new_stream):
    name = new_stream("lpage", shards=5)
    expected = [shard_id(i) for i in range(5)]
    full = kinesis.list_shards(StreamName=name)
    assert [s["ShardId"] for s in full["Shards"]] == expected
    assert "NextToken" not in full
    described = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    assert full["Shards"] == described

    pages = []
    resp = kinesis.list_shards(StreamName=name, MaxResults=2)
    pages.append([s["ShardId"] for s in resp["Shards"]])
    for _ in range(10):
        if "NextToken" not in resp:
            break
        resp = kinesis.list_shards(NextToken=resp["NextToken"], MaxResults=2)
        pages.append([s["ShardId"] for s in resp["Shards"]])
    assert pages == [expected[0:2], expected[2:4], expected[4:5]]
    assert "NextToken" not in resp

    after = kinesis.list_shards(StreamName=name, ExclusiveStartShardId=shard_id(2))
    assert [s["ShardId"] for s in after["Shards"]] == expected[3:]

    token = kinesis.list_shards(StreamName=name, MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as ei:
        kinesis.list_shards(StreamName=name, NextToken=token)
    assert_client_error(ei, "InvalidArgumentException", "NextToken and StreamName cannot be provided together.")
    with pytest.raises(ClientError) as ei:
        kinesis.list_shards()
    assert_client_error(ei, "InvalidArgumentException", "Either NextToken or StreamName should be provided.")


def test_list_shards_filters(kinesis, new_stream):
    name = new_stream("lfilter", shards=3)
    ids = [shard_id(i) for i in range(3)]

    def listed(**flt):
        return [s["ShardId"] for s in kinesis.list_shards(StreamName=name, ShardFilter=flt)["Shards"]]

    assert listed(Type="AFTER_SHARD_ID", ShardId=ids[0]) == ids[1:]
    assert listed(Type="AFTER_SHARD_ID", ShardId=ids[2]) == []
    assert listed(Type="AT_TRIM_HORIZON") == ids
    assert listed(Type="FROM_TRIM_HORIZON") == ids
    assert listed(Type="AT_LATEST") == ids
    # botocore sends whole seconds; make sure that second is not before the shards were made.
    created = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
        "StreamCreationTimestamp"].timestamp()
    deadline = time.monotonic() + 5
    while int(time.time()) < created + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    now = dt.datetime.fromtimestamp(int(time.time()), UTC)
    assert listed(Type="AT_TIMESTAMP", Timestamp=now) == ids
    assert listed(Type="FROM_TIMESTAMP", Timestamp=now) == ids


# ======================================================================================
# ListStreams
# ======================================================================================

def test_list_streams_summaries_and_paging(kinesis, new_stream):
    uid = uuid.uuid4().hex[:10]
    names = []
    for c in "abc":
        name = f"ls-{uid}-{c}"
        kinesis.create_stream(StreamName=name, ShardCount=1)
        names.append(name)
    try:
        for name in names:
            wait_active(kinesis, name)

        full = kinesis.list_streams()
        assert full["HasMoreStreams"] is False, "fewer than 100 streams exist; all fit one page"
        assert "NextToken" not in full
        all_names = full["StreamNames"]
        assert all_names == sorted(all_names), "ListStreams is ordered by name"
        assert len(set(all_names)) == len(all_names)
        for name in names:
            assert name in all_names
        summaries = full["StreamSummaries"]
        assert [s["StreamName"] for s in summaries] == all_names
        for s in summaries:
            if s["StreamName"] in names:
                assert s["StreamARN"] == stream_arn(s["StreamName"])
                assert s["StreamStatus"] == "ACTIVE"
                assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
                assert abs(s["StreamCreationTimestamp"].timestamp() - time.time()) < 120

        # ExclusiveStartStreamName: strictly after that name.
        p1 = kinesis.list_streams(Limit=2, ExclusiveStartStreamName=f"ls-{uid}-")
        assert p1["StreamNames"] == names[:2]
        assert [s["StreamName"] for s in p1["StreamSummaries"]] == names[:2]
        assert p1["HasMoreStreams"] is True
        p2 = kinesis.list_streams(Limit=2, ExclusiveStartStreamName=names[1])
        assert p2["StreamNames"][0] == names[2]
        p3 = kinesis.list_streams(ExclusiveStartStreamName=names[0])
        assert p3["StreamNames"][:2] == names[1:]
        assert p3["StreamNames"] == [n for n in all_names if n > names[0]]

        # NextToken paging with Limit=1 walks the same list.
        walked = []
        resp = kinesis.list_streams(Limit=1)
        walked += resp["StreamNames"]
        assert len(resp["StreamNames"]) == 1
        for _ in range(len(all_names) + 5):
            if not resp["HasMoreStreams"]:
                break
            assert resp.get("NextToken"), "HasMoreStreams=true needs a NextToken"
            resp = kinesis.list_streams(Limit=1, NextToken=resp["NextToken"])
            assert len(resp["StreamNames"]) <= 1
            walked += resp["StreamNames"]
        assert resp["HasMoreStreams"] is False
        assert walked == all_names
    finally:
        for name in names:
            kinesis.delete_stream(StreamName=name)


def test_list_streams_omits_deleted(kinesis):
    name = unique_name("lsdel")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
    kinesis.delete_stream(StreamName=name)
    wait_gone(kinesis, name)
    assert name not in kinesis.list_streams(ExclusiveStartStreamName=name[:-1])["StreamNames"]


# ======================================================================================
# PutRecord / PutRecords routing and sequence numbers
# ======================================================================================

def test_put_record_routes_by_md5(kinesis, new_stream):
    name = new_stream("route", shards=4)
    shards = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    expected_by_shard = {s["ShardId"]: [] for s in shards}
    for i in range(40):
        pk = f"key-{i}"
        want = shard_for_hash(shards, md5_hash_key(pk))
        resp = kinesis.put_record(StreamName=name, Data=f"value-{i}".encode(), PartitionKey=pk)
        assert resp["ShardId"] == want, (pk, resp)
        assert SEQ_RE.match(resp["SequenceNumber"])
        assert resp.get("EncryptionType", "NONE") == "NONE"
        expected_by_shard[want].append((pk, f"value-{i}".encode(), resp["SequenceNumber"]))
    assert sum(1 for v in expected_by_shard.values() if v) >= 3, "keys should spread over the shards"

    for sid, expected in expected_by_shard.items():
        got = read_shard(kinesis, name, sid)
        assert [(r["PartitionKey"], r["Data"], r["SequenceNumber"]) for r in got] == expected


def test_partition_key_unicode_routes_by_utf8_md5(kinesis, new_stream):
    name = new_stream("uroute", shards=4)
    shards = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    for pk in ["ключ", "日本語のキー", "emoji-\U0001F600", "x" * 256]:
        resp = kinesis.put_record(StreamName=name, Data=b"d", PartitionKey=pk)
        assert resp["ShardId"] == shard_for_hash(shards, md5_hash_key(pk)), pk


def test_explicit_hash_key_routing(kinesis, new_stream):
    name = new_stream("ehk", shards=4)
    ranges = even_ranges(4)
    puts = []
    for i, (start, end) in enumerate(ranges):
        for h in (start, (start + end) // 2, end):
            resp = kinesis.put_record(StreamName=name, Data=f"{i}:{h}".encode(),
                                      PartitionKey="same-key", ExplicitHashKey=str(h))
            assert resp["ShardId"] == shard_id(i), (h, resp)
            puts.append((i, resp["SequenceNumber"]))
    for i in range(4):
        got = read_shard(kinesis, name, shard_id(i))
        assert [r["SequenceNumber"] for r in got] == [s for j, s in puts if j == i]
        assert all(r["PartitionKey"] == "same-key" for r in got)

    with pytest.raises(ClientError) as ei:
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=str(2**128))
    assert_client_error(
        ei, "InvalidArgumentException",
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
        f"Specified value was {2**128}",
    )
    with pytest.raises(ClientError) as ei:
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey="abc")
    assert_client_error(
        ei, "ValidationException",
        "1 validation error detected: Value 'abc' at 'explicitHashKey' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
    )


def test_put_records_500_across_shards(kinesis, new_stream):
    name = new_stream("batch", shards=4)
    shards = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    entries = [{"Data": f"rec-{i}".encode(), "PartitionKey": f"pk-{i}"} for i in range(500)]
    resp = kinesis.put_records(StreamName=name, Records=entries)
    assert resp["FailedRecordCount"] == 0
    assert len(resp["Records"]) == 500
    per_shard = {}
    for i, (entry, out) in enumerate(zip(entries, resp["Records"])):
        assert "ErrorCode" not in out, out
        assert SEQ_RE.match(out["SequenceNumber"])
        assert out["ShardId"] == shard_for_hash(shards, md5_hash_key(entry["PartitionKey"])), i
        per_shard.setdefault(out["ShardId"], []).append((entry["PartitionKey"], entry["Data"], out["SequenceNumber"]))
    assert len(per_shard) == 4
    assert len({o["SequenceNumber"] for o in resp["Records"]}) == 500

    total = 0
    for sid, expected in per_shard.items():
        seqs = [int(s) for _, _, s in expected]
        assert all(a < b for a, b in zip(seqs, seqs[1:])), f"{sid}: sequence numbers not increasing"
        start = next(int(s["SequenceNumberRange"]["StartingSequenceNumber"]) for s in shards if s["ShardId"] == sid)
        assert seqs[0] >= start
        got = read_shard(kinesis, name, sid)
        assert [(r["PartitionKey"], r["Data"], r["SequenceNumber"]) for r in got] == expected
        total += len(got)
    assert total == 500


def test_put_records_bad_explicit_hash_key_fails_whole_request(kinesis, new_stream):
    name = new_stream("batchbad", shards=1)
    records = [
        {"Data": b"ok", "PartitionKey": "a"},
        {"Data": b"bad", "PartitionKey": "b", "ExplicitHashKey": str(2**128)},
    ]
    with pytest.raises(ClientError) as ei:
        kinesis.put_records(StreamName=name, Records=records)
    assert_client_error(
        ei, "InvalidArgumentException",
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
        f"Specified value was {2**128}",
    )
    assert read_shard(kinesis, name, shard_id(0)) == []


def test_put_to_missing_stream(kinesis):
    name = unique_name("nostream")
    with pytest.raises(ClientError) as ei:
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    assert_client_error(ei, "ResourceNotFoundException", not_found(name))
    with pytest.raises(ClientError) as ei:
        kinesis.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}])
    assert_client_error(ei, "ResourceNotFoundException", not_found(name))


def test_sequence_numbers_strictly_increase_per_shard(kinesis, new_stream):
    name = new_stream("seq", shards=2)
    shards = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    seen = {shard_id(0): [], shard_id(1): []}
    for i in range(30):
        resp = kinesis.put_record(StreamName=name, Data=os.urandom(16), PartitionKey=f"p{i}")
        seen[resp["ShardId"]].append(int(resp["SequenceNumber"]))
    # SequenceNumberForOrdering: still strictly after the given one.
    last0 = str(max(seen[shard_id(0)])) if seen[shard_id(0)] else None
    if last0:
        resp = kinesis.put_record(StreamName=name, Data=b"o", PartitionKey="ord",
                                  ExplicitHashKey="0", SequenceNumberForOrdering=last0)
        assert resp["ShardId"] == shard_id(0)
        seen[shard_id(0)].append(int(resp["SequenceNumber"]))
    for s in shards:
        seqs = seen[s["ShardId"]]
        assert seqs, "both shards should get records"
        assert all(a < b for a, b in zip(seqs, seqs[1:])), seqs
        assert seqs[0] >= int(s["SequenceNumberRange"]["StartingSequenceNumber"])


def test_data_is_binary_safe_and_empty_data_allowed(kinesis, new_stream):
    name = new_stream("binary", shards=1)
    payloads = [bytes(range(256)), b"", b"\x00" * 1000, os.urandom(64 * 1024)]
    for p in payloads:
        kinesis.put_record(StreamName=name, Data=p, PartitionKey="k")
    got = read_shard(kinesis, name, shard_id(0))
    assert [r["Data"] for r in got] == payloads


# ======================================================================================
# Iterators and GetRecords
# ======================================================================================

def _put_n(kinesis, name, n, tag, pk="k"):
    return [kinesis.put_record(StreamName=name, Data=f"{tag}-{i}".encode(), PartitionKey=pk)["SequenceNumber"]
            for i in range(n)]


def _iter(kinesis, name, type_, sid=None, **kw):
    return kinesis.get_shard_iterator(StreamName=name, ShardId=sid or shard_id(0),
                                      ShardIteratorType=type_, **kw)["ShardIterator"]


def test_trim_horizon_and_latest(kinesis, new_stream):
    name = new_stream("latest", shards=1)
    a = _put_n(kinesis, name, 3, "a")
    latest = _iter(kinesis, name, "LATEST")
    assert 1 <= len(latest) <= 512

    first = kinesis.get_records(ShardIterator=latest)
    assert first["Records"] == []
    assert first["MillisBehindLatest"] == 0
    assert first["NextShardIterator"]

    b = _put_n(kinesis, name, 2, "b")
    got = kinesis.get_records(ShardIterator=latest)
    assert [r["SequenceNumber"] for r in got["Records"]] == b
    assert [r["Data"] for r in got["Records"]] == [b"b-0", b"b-1"]
    # The NextShardIterator of the empty read also sees the new records.
    got2 = kinesis.get_records(ShardIterator=first["NextShardIterator"])
    assert [r["SequenceNumber"] for r in got2["Records"]] == b

    all_recs = read_shard(kinesis, name, shard_id(0), "TRIM_HORIZON")
    assert [r["SequenceNumber"] for r in all_recs] == a + b


def test_at_and_after_sequence_number(kinesis, new_stream):
    name = new_stream("atseq", shards=1)
    seqs = _put_n(kinesis, name, 5, "r")
    for k in range(5):
        at = read_shard(kinesis, name, shard_id(0), "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[k])
        assert [r["SequenceNumber"] for r in at] == seqs[k:]
        after = read_shard(kinesis, name, shard_id(0), "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[k])
        assert [r["SequenceNumber"] for r in after] == seqs[k + 1:]
    # AFTER the last record, then a new record arrives.
    it = _iter(kinesis, name, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[-1])
    new = _put_n(kinesis, name, 1, "late")
    assert [r["SequenceNumber"] for r in kinesis.get_records(ShardIterator=it)["Records"]] == new


def test_at_timestamp_whole_seconds(kinesis, new_stream):
    name = new_stream("atts", shards=1)
    a = _put_n(kinesis, name, 3, "a")
    # botocore sends AT_TIMESTAMP as whole epoch seconds: pick the next second boundary.
    boundary = int(time.time()) + 1
    deadline = time.monotonic() + 5
    while time.time() < boundary + 0.25 and time.monotonic() < deadline:
        time.sleep(0.02)
    b = _put_n(kinesis, name, 3, "b")

    everything = read_shard(kinesis, name, shard_id(0))
    assert [r["SequenceNumber"] for r in everything] == a + b
    arrivals = [r["ApproximateArrivalTimestamp"].timestamp() for r in everything]
    assert all(t < boundary for t in arrivals[:3]), (arrivals, boundary)
    assert all(t >= boundary for t in arrivals[3:]), (arrivals, boundary)

    got = read_shard(kinesis, name, shard_id(0), "AT_TIMESTAMP",
                     Timestamp=dt.datetime.fromtimestamp(boundary, UTC))
    assert [r["SequenceNumber"] for r in got] == b

    # A timestamp before the stream existed reads from the trim horizon.
    old = read_shard(kinesis, name, shard_id(0), "AT_TIMESTAMP",
                     Timestamp=dt.datetime.fromtimestamp(time.time() - 3600, UTC))
    assert [r["SequenceNumber"] for r in old] == a + b


def test_at_timestamp_millisecond_precision(kinesis, new_stream, raw):
    """AT_TIMESTAMP with a fractional-seconds JSON timestamp (what the Java SDK / KCL send)
    starts exactly at the first record that arrived at or after it."""
    name = new_stream("attsms", shards=1)
    for i in range(5):
        kinesis.put_record(StreamName=name, Data=f"r{i}".encode(), PartitionKey="k")
        time.sleep(0.03)
    recs = read_shard(kinesis, name, shard_id(0))
    assert len(recs) == 5
    arrivals = [r["ApproximateArrivalTimestamp"].timestamp() for r in recs]
    assert all(x < y for x, y in zip(arrivals, arrivals[1:])), arrivals
    for k in (1, 3):
        ts = round(arrivals[k], 3)
        resp = raw.json_call("GetShardIterator", {
            "StreamName": name, "ShardId": shard_id(0), "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": ts})
        assert resp.status == 200, resp
        it = resp.json()["ShardIterator"]
        got = kinesis.get_records(ShardIterator=it)["Records"]
        assert [r["SequenceNumber"] for r in got] == [r["SequenceNumber"] for r in recs[k:]]


def test_get_records_limit_and_chaining(kinesis, new_stream):
    name = new_stream("limit", shards=1)
    seqs = _put_n(kinesis, name, 10, "r")
    it = _iter(kinesis, name, "TRIM_HORIZON")
    pages = []
    resp = None
    for _ in range(20):
        resp = kinesis.get_records(ShardIterator=it, Limit=3)
        assert isinstance(resp["MillisBehindLatest"], int) and resp["MillisBehindLatest"] >= 0
        assert len(resp["Records"]) <= 3
        pages.append([r["SequenceNumber"] for r in resp["Records"]])
        assert resp["NextShardIterator"], "an open shard always has a next iterator"
        it = resp["NextShardIterator"]
        if not resp["Records"]:
            break
    assert len(pages[0]) == 3
    assert [s for p in pages for s in p] == seqs
    assert pages[-1] == [] and resp["MillisBehindLatest"] == 0

    one = kinesis.get_records(ShardIterator=_iter(kinesis, name, "TRIM_HORIZON"), Limit=1)
    assert [r["SequenceNumber"] for r in one["Records"]] == seqs[:1]
    everything = kinesis.get_records(ShardIterator=_iter(kinesis, name, "TRIM_HORIZON"))
    assert [r["SequenceNumber"] for r in everything["Records"]] == seqs
    assert everything["MillisBehindLatest"] == 0


def test_get_records_empty_shard(kinesis, new_stream):
    name = new_stream("empty", shards=1)
    resp = kinesis.get_records(ShardIterator=_iter(kinesis, name, "TRIM_HORIZON"))
    assert resp["Records"] == []
    assert resp["MillisBehindLatest"] == 0
    assert resp["NextShardIterator"]


def test_record_fields(kinesis, new_stream):
    name = new_stream("fields", shards=1)
    before = time.time()
    put = kinesis.put_record(StreamName=name, Data=b"payload", PartitionKey="pk-1")
    after = time.time()
    rec = kinesis.get_records(ShardIterator=_iter(kinesis, name, "TRIM_HORIZON"))["Records"][0]
    assert rec["Data"] == b"payload"
    assert rec["PartitionKey"] == "pk-1"
    assert rec["SequenceNumber"] == put["SequenceNumber"]
    assert rec.get("EncryptionType", "NONE") == "NONE"
    ts = rec["ApproximateArrivalTimestamp"].timestamp()
    assert before - 1 <= ts <= after + 1


def test_iterator_argument_errors(kinesis, new_stream):
    name = new_stream("iterr", shards=2)
    seq = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey="0")["SequenceNumber"]
    seq1 = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k",
                              ExplicitHashKey=str(HASH_MAX))["SequenceNumber"]
    must = ("Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber "
            "or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. ")

    for t in ("TRIM_HORIZON", "LATEST"):
        with pytest.raises(ClientError) as ei:
            _iter(kinesis, name, t, StartingSequenceNumber=seq)
        assert_client_error(ei, "InvalidArgumentException",
                            must + f"Request specified {t} and also a StartingSequenceNumber.")
    for t in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        with pytest.raises(ClientError) as ei:
            _iter(kinesis, name, t)
        assert_client_error(ei, "InvalidArgumentException",
                            must + f"Request specified {t} and no StartingSequenceNumber.")

    with pytest.raises(ClientError) as ei:
        _iter(kinesis, name, "AT_TIMESTAMP")
    assert_client_error(ei, "InvalidArgumentException",
                        "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. "
                        "Current request has no timestamp parameter.")

    future = int(time.time()) + 3600
    with pytest.raises(ClientError) as ei:
        _iter(kinesis, name, "AT_TIMESTAMP", Timestamp=dt.datetime.fromtimestamp(future, UTC))
    msg = assert_client_error(ei, "InvalidArgumentException")
    m = re.fullmatch(r"The timestampInMillis parameter cannot be greater than the currentTimestampInMillis\. "
                     r"timestampInMillis: (\d+), currentTimestampInMillis: (\d+)", msg)
    assert m, msg
    assert int(m.group(1)) == future * 1000
    assert abs(int(m.group(2)) - time.time() * 1000) < 60_000

    # A sequence number of shard 1 used on shard 0.
    with pytest.raises(ClientError) as ei:
        _iter(kinesis, name, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seq1)
    assert_client_error(ei, "InvalidArgumentException",
                        f"Invalid StartingSequenceNumber. It encodes {shard_id(1)}, "
                        f"while it was used in a call to a shard with {shard_id(0)}")

    bad = "9" * 60
    with pytest.raises(ClientError) as ei:
        _iter(kinesis, name, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=bad)
    assert_client_error(ei, "InvalidArgumentException",
                        f"StartingSequenceNumber {bad} used in GetShardIterator on shard {shard_id(0)} "
                        f"in stream {name} under account {ACCOUNT} is invalid.")


def test_iterator_shard_errors(kinesis, new_stream):
    name = new_stream("shderr", shards=1)
    with pytest.raises(ClientError) as ei:
        _iter(kinesis, name, "TRIM_HORIZON", sid=shard_id(5))
    assert_client_error(ei, "ResourceNotFoundException", shard_missing(shard_id(5), name))

    with pytest.raises(ClientError) as ei:
        _iter(kinesis, name, "TRIM_HORIZON", sid="shardId-abc")
    assert_client_error(ei, "ResourceNotFoundException",
                        f"Could not find shard shardId-abc in stream {name} under account {ACCOUNT}.")

    missing = unique_name("nostream")
    with pytest.raises(ClientError) as ei:
        kinesis.get_shard_iterator(StreamName=missing, ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")
    assert_client_error(ei, "ResourceNotFoundException", shard_missing(shard_id(0), missing))


def test_get_records_invalid_iterator(kinesis):
    bogus = base64.b64encode(os.urandom(200)).decode()
    with pytest.raises(ClientError) as ei:
        kinesis.get_records(ShardIterator=bogus)
    assert_client_error(ei, "InvalidArgumentException", "Invalid ShardIterator.")


def test_iterator_of_deleted_stream(kinesis):
    name = unique_name("itdel")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
    kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    it = _iter(kinesis, name, "TRIM_HORIZON")
    kinesis.delete_stream(StreamName=name)
    wait_gone(kinesis, name)
    with pytest.raises(ClientError) as ei:
        kinesis.get_records(ShardIterator=it)
    assert_client_error(ei, "ResourceNotFoundException", shard_missing(shard_id(0), name))


# ======================================================================================
# Retention
# ======================================================================================

def test_retention_period(kinesis, new_stream):
    name = new_stream("ret", shards=1)

    def hours():
        return kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["RetentionPeriodHours"]

    assert hours() == 24
    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    assert hours() == 48
    assert kinesis.describe_stream(StreamName=name)["StreamDescription"]["RetentionPeriodHours"] == 48
    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)  # equal: no-op
    assert hours() == 48
    kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=30)
    assert hours() == 30

    with pytest.raises(ClientError) as ei:
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=23)
    assert_client_error(ei, "InvalidArgumentException",
                        "Minimum allowed retention period is 24 hours. "
                        "Requested retention period (23 hours) is too short.")
    with pytest.raises(ClientError) as ei:
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=8761)
    assert_client_error(ei, "InvalidArgumentException",
                        "Maximum allowed retention period is 8760 hours. "
                        "Requested retention period (8761 hours) is too long.")
    with pytest.raises(ClientError) as ei:
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=25)
    assert_client_error(ei, "InvalidArgumentException",
                        f"Requested retention period (25 hours) for stream {name} can not be shorter than "
                        "existing retention period (30 hours). Use DecreaseRetentionPeriod API.")
    with pytest.raises(ClientError) as ei:
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=40)
    assert_client_error(ei, "InvalidArgumentException",
                        f"Requested retention period (40 hours) for stream {name} can not be longer than "
                        "existing retention period (30 hours). Use IncreaseRetentionPeriod API.")
    assert hours() == 30

    kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=8760)
    assert hours() == 8760
    kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=24)
    assert hours() == 24

    missing = unique_name("noret")
    with pytest.raises(ClientError) as ei:
        kinesis.increase_stream_retention_period(StreamName=missing, RetentionPeriodHours=48)
    assert_client_error(ei, "ResourceNotFoundException", not_found(missing))


# ======================================================================================
# Tags
# ======================================================================================

def test_tags_add_list_remove(kinesis, new_stream):
    name = new_stream("tags", shards=1)
    empty = kinesis.list_tags_for_stream(StreamName=name)
    assert empty["Tags"] == [] and empty["HasMoreTags"] is False

    kinesis.add_tags_to_stream(StreamName=name, Tags={"team": "data", "env": "test"})
    got = kinesis.list_tags_for_stream(StreamName=name)
    assert got["Tags"] == [{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "data"}]
    assert got["HasMoreTags"] is False

    kinesis.add_tags_to_stream(StreamName=name, Tags={"env": "prod", "owner": "me"})
    got = kinesis.list_tags_for_stream(StreamName=name)
    assert got["Tags"] == [{"Key": "env", "Value": "prod"}, {"Key": "owner", "Value": "me"},
                           {"Key": "team", "Value": "data"}]

    page = kinesis.list_tags_for_stream(StreamName=name, Limit=1)
    assert page["Tags"] == [{"Key": "env", "Value": "prod"}] and page["HasMoreTags"] is True
    page = kinesis.list_tags_for_stream(StreamName=name, Limit=1, ExclusiveStartTagKey="env")
    assert page["Tags"] == [{"Key": "owner", "Value": "me"}] and page["HasMoreTags"] is True
    page = kinesis.list_tags_for_stream(StreamName=name, ExclusiveStartTagKey="owner")
    assert page["Tags"] == [{"Key": "team", "Value": "data"}] and page["HasMoreTags"] is False

    kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["env", "not-there"])
    got = kinesis.list_tags_for_stream(StreamName=name)
    assert got["Tags"] == [{"Key": "owner", "Value": "me"}, {"Key": "team", "Value": "data"}]


def test_tags_on_create_and_errors(kinesis, new_stream):
    name = new_stream("ctags", shards=1, Tags={"a": "1", "b": ""})
    assert kinesis.list_tags_for_stream(StreamName=name)["Tags"] == [
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}]

    with pytest.raises(ClientError) as ei:
        kinesis.add_tags_to_stream(StreamName=name, Tags={"bad;key": "v"})
    assert_client_error(ei, "InvalidArgumentException",
                        "Some tags contain invalid characters. Valid characters: "
                        "Unicode letters, digits, white space, _ . / = + - % @.")
    assert len(kinesis.list_tags_for_stream(StreamName=name)["Tags"]) == 2

    missing = unique_name("notags")
    for call, kw in ((kinesis.add_tags_to_stream, {"Tags": {"k": "v"}}),
                     (kinesis.list_tags_for_stream, {}),
                     (kinesis.remove_tags_from_stream, {"TagKeys": ["k"]})):
        with pytest.raises(ClientError) as ei:
            call(StreamName=missing, **kw)
        assert_client_error(ei, "ResourceNotFoundException", not_found(missing))


# ======================================================================================
# DescribeLimits
# ======================================================================================

def _stable_open_shards(kinesis):
    last = None
    for _ in range(50):
        cur = kinesis.describe_limits()["OpenShardCount"]
        if cur == last:
            return cur
        last = cur
        time.sleep(0.1)
    return last


def test_describe_limits(kinesis, new_stream):
    limits = kinesis.describe_limits()
    for key in ("ShardLimit", "OpenShardCount", "OnDemandStreamCount", "OnDemandStreamCountLimit"):
        assert isinstance(limits[key], int) and limits[key] >= 0, limits
    assert limits["ShardLimit"] >= limits["OpenShardCount"]

    before = _stable_open_shards(kinesis)
    name = new_stream("limits", shards=3)
    after = kinesis.describe_limits()["OpenShardCount"]
    assert after == before + 3
    kinesis.delete_stream(StreamName=name)
    wait_gone(kinesis, name)
    assert _stable_open_shards(kinesis) == before


# ======================================================================================
# StreamARN instead of StreamName
# ======================================================================================

def test_stream_arn_addressing(kinesis, new_stream):
    name = new_stream("arn", shards=2)
    arn = stream_arn(name)
    summary = kinesis.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]
    assert summary["StreamName"] == name and summary["StreamARN"] == arn
    assert kinesis.describe_stream(StreamARN=arn)["StreamDescription"]["StreamName"] == name
    assert len(kinesis.list_shards(StreamARN=arn)["Shards"]) == 2

    put = kinesis.put_record(StreamARN=arn, Data=b"via-arn", PartitionKey="arn-key")
    assert put["ShardId"] == shard_for_hash(all_shards(kinesis, name), md5_hash_key("arn-key"))
    batch = kinesis.put_records(StreamARN=arn, Records=[{"Data": b"b", "PartitionKey": "arn-key"}])
    assert batch["FailedRecordCount"] == 0

    it = kinesis.get_shard_iterator(StreamARN=arn, ShardId=put["ShardId"],
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = kinesis.get_records(ShardIterator=it, StreamARN=arn)
    assert [r["Data"] for r in got["Records"]] == [b"via-arn", b"b"]

    # The same records by name.
    by_name = read_shard(kinesis, name, put["ShardId"])
    assert [r["SequenceNumber"] for r in by_name] == [r["SequenceNumber"] for r in got["Records"]]

    missing = stream_arn(unique_name("noarn"))
    with pytest.raises(ClientError) as ei:
        kinesis.describe_stream_summary(StreamARN=missing)
    assert_client_error(ei, "ResourceNotFoundException", not_found(missing.rsplit("/", 1)[1]))
