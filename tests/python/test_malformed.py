"""Raw-HTTP tests: malformed requests, protocol envelope details, and CBOR.

Every request here is SigV4-signed (any credentials are accepted) unless a test says
otherwise, so that failures come from the body or headers under test, not from auth.
The last test checks that the server still serves, and that data written before all the
bad requests is intact.
"""

import base64
import os
import time

import cbor2
import pytest

from conftest import (
    ACCOUNT,
    CBOR_CT,
    JSON_CT,
    read_shard,
    unique_name,
    wait_active,
)

SHARD0 = "shardId-000000000000"


def _msg(resp):
    return resp.error_message()


@pytest.fixture(scope="module")
def survivor(kinesis):
    """A stream with known data, written before the malformed requests that target it (the
    first test that asks for it creates it) and checked by the last test of the module."""
    name = unique_name("survivor")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    wait_active(kinesis, name)
    seqs = [kinesis.put_record(StreamName=name, Data=f"keep-{i}".encode(), PartitionKey="k")["SequenceNumber"]
            for i in range(5)]
    yield {"name": name, "seqs": seqs, "data": [f"keep-{i}".encode() for i in range(5)]}
    try:
        kinesis.delete_stream(StreamName=name)
    except Exception:
        pass


# ======================================================================================
# Envelope
# ======================================================================================

def test_no_output_operation_returns_empty_body(raw, kinesis):
    name = unique_name("envelope")
    r = raw.json_call("CreateStream", {"StreamName": name, "ShardCount": 1})
    assert r.status == 200, r
    assert r.body == b""
    assert r.headers.get("x-amzn-requestid")
    wait_active(kinesis, name)

    r = raw.json_call("DescribeStreamSummary", {"StreamName": name})
    assert r.status == 200, r
    assert r.headers["content-type"].split(";")[0].strip() == JSON_CT
    assert r.headers.get("x-amzn-requestid")
    doc = r.json()
    summary = doc["StreamDescriptionSummary"]
    assert summary["StreamName"] == name
    # JSON timestamps are epoch seconds as numbers.
    assert isinstance(summary["StreamCreationTimestamp"], (int, float))
    assert abs(summary["StreamCreationTimestamp"] - time.time()) < 60

    r = raw.json_call("DeleteStream", {"StreamName": name})
    assert r.status == 200 and r.body == b"", r


def test_error_envelope(raw):
    name = unique_name("nothere")
    r = raw.json_call("DescribeStream", {"StreamName": name})
    assert r.status == 400
    assert r.headers["content-type"].split(";")[0].strip() == JSON_CT
    assert r.headers.get("x-amzn-requestid")
    doc = r.json()
    assert doc["__type"].split("#")[-1] == "ResourceNotFoundException"
    assert doc["message"] == f"Stream {name} under account {ACCOUNT} not found."


def test_content_type_with_charset_is_accepted(raw):
    r = raw.call("ListStreams", b"{}", content_type=JSON_CT + "; charset=utf-8")
    assert r.status == 200, r
    assert isinstance(r.json()["StreamNames"], list)


# ======================================================================================
# Malformed JSON requests
# ======================================================================================

@pytest.mark.parametrize("body", [b'{"StreamName": ', b"not json at all", b"\xff\xfe\x00garbage", b"123", b'"str"'])
def test_invalid_json_is_serialization_exception(raw, body):
    r = raw.call("ListStreams", body)
    assert r.status == 400, r
    assert r.error_type() == "SerializationException", r


def test_invalid_json_on_put_record(raw, survivor):
    r = raw.call("PutRecord", b'{"StreamName": "%s", "Data": "eA==", "PartitionKey": ' % survivor["name"].encode())
    assert r.status == 400, r
    assert r.error_type() == "SerializationException"


def test_empty_body_with_valid_target(raw):
    r = raw.call("ListStreams", b"")
    assert r.status == 400, r
    assert r.error_type() == "SerializationException"


@pytest.mark.parametrize("target", [
    "Kinesis_20131202.ListStream",
    "Kinesis_20131202.NoSuchOperation",
    "Kinesis_20131203.ListStreams",
    "DynamoDB_20120810.ListTables",
    "ListStreams",
])
def test_unknown_operation(raw, target):
    r = raw.call(None, b"{}", extra_headers={"X-Amz-Target": target})
    assert r.status == 400, r
    assert r.error_type() == "UnknownOperationException", r


def test_missing_target(raw):
    r = raw.call(None, b"{}")
    assert r.status == 400, r
    t = r.error_type()
    assert isinstance(t, str) and t and t.replace("_", "").isalnum(), r
    assert t.endswith("Exception"), r


@pytest.mark.parametrize("op, payload, message", [
    ("CreateStream", {"StreamName": "@NAME@", "ShardCount": "abc"},
     "class java.lang.String can not be converted to an Integer"),
    ("CreateStream", {"StreamName": "@NAME@", "ShardCount": True},
     "class java.lang.Boolean can not be converted to an Integer"),
    ("CreateStream", {"StreamName": 123, "ShardCount": 1},
     "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"),
    ("ListStreams", {"Limit": "5"},
     "class java.lang.String can not be converted to an Integer"),
    ("PutRecord", {"StreamName": "@SURVIVOR@", "PartitionKey": "k", "Data": True},
     "class java.lang.Boolean can not be converted to a Blob"),
    ("AddTagsToStream", {"StreamName": "@SURVIVOR@", "Tags": "x"},
     "Expected map or null"),
    ("PutRecords", {"StreamName": "@SURVIVOR@", "Records": {"a": 1}},
     "Start of structure or map found where not expected."),
])
def test_wrong_member_type(raw, kinesis, survivor, op, payload, message):
    name = unique_name("wrongtype")
    payload = {k: (name if v == "@NAME@" else survivor["name"] if v == "@SURVIVOR@" else v)
               for k, v in payload.items()}
    r = raw.json_call(op, payload)
    assert r.status == 400, r
    assert r.error_type() == "SerializationException", r
    assert _msg(r) == message, r
    if op == "CreateStream":
        assert name not in kinesis.list_streams(ExclusiveStartStreamName=name[:-1])["StreamNames"]


@pytest.mark.parametrize("data, message", [
    ("23456", "'23456' can not be converted to a Blob: "
              "Base64 encoded length is expected a multiple of 4 bytes but found: 5"),
    ("=+/=", "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"),
    ("!!!!", None),
    ("ab$d", None),
])
def test_bad_base64_data(raw, survivor, data, message):
    r = raw.json_call("PutRecord", {"StreamName": survivor["name"], "PartitionKey": "k", "Data": data})
    assert r.status == 400, r
    assert r.error_type() == "SerializationException", r
    if message is not None:
        assert _msg(r) == message, r


def test_bad_base64_in_put_records(raw, survivor):
    r = raw.json_call("PutRecords", {"StreamName": survivor["name"], "Records": [
        {"PartitionKey": "k", "Data": "eA=="}, {"PartitionKey": "k", "Data": "23456"}]})
    assert r.status == 400, r
    assert r.error_type() == "SerializationException", r


def test_record_just_over_size_limit_is_rejected(raw, survivor):
    # Default MaxRecordSizeInKiB is 1024: partition key + data may total 1 MiB.
    data = os.urandom(1024 * 1024)  # 1 MiB of data + a 1-byte key = 1 MiB + 1
    r = raw.json_call("PutRecord", {"StreamName": survivor["name"], "PartitionKey": "k",
                                    "Data": base64.b64encode(data).decode()})
    assert r.status == 400, r.status
    assert r.error_type() in ("ValidationException", "InvalidArgumentException"), r.body[:500]

    r = raw.json_call("PutRecords", {"StreamName": survivor["name"], "Records": [
        {"PartitionKey": "k", "Data": base64.b64encode(data).decode()}]})
    assert r.status == 400, r.status
    assert r.error_type() in ("ValidationException", "InvalidArgumentException"), r.body[:500]


def test_record_over_model_max_is_validation_error(raw, survivor):
    n = 10 * 1024 * 1024 + 1
    r = raw.json_call("PutRecord", {"StreamName": survivor["name"], "PartitionKey": "k",
                                    "Data": base64.b64encode(b"\0" * n).decode()})
    assert r.status == 400, r.status
    assert r.error_type() == "ValidationException", r.body[:500]
    assert _msg(r) == (
        f"1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]' at 'data' "
        "failed to satisfy constraint: Member must have length less than or equal to 10485760")


def test_record_exactly_at_size_limit_is_accepted(raw, kinesis):
    name = unique_name("atlimit")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    try:
        wait_active(kinesis, name)
        data = os.urandom(1024 * 1024 - 1)  # + 1-byte key = exactly 1 MiB
        r = raw.json_call("PutRecord", {"StreamName": name, "PartitionKey": "k",
                                        "Data": base64.b64encode(data).decode()})
        assert r.status == 200, r.body[:500]
        got = read_shard(kinesis, name, SHARD0)
        assert len(got) == 1 and got[0]["Data"] == data
    finally:
        kinesis.delete_stream(StreamName=name)


def test_validation_errors_are_listed_together(raw):
    r = raw.json_call("CreateStream", {"StreamName": "", "ShardCount": 0})
    assert r.status == 400
    assert r.error_type() == "ValidationException"
    assert _msg(r) == (
        "3 validation errors detected: "
        "Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; "
        "Value '' at 'streamName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
        "Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1")


# ======================================================================================
# CBOR
# ======================================================================================

def _cbor_ok(r):
    assert r.status == 200, (r.status, r.headers, r.body[:300])
    assert r.headers["content-type"].split(";")[0].strip() == CBOR_CT
    return r.cbor()


def _as_millis(v):
    """A CBOR timestamp as the Java SDK reads it: tag 1 or bare, number of epoch millis."""
    if isinstance(v, cbor2.CBORTag):
        assert v.tag == 1, v
        v = v.value
    assert isinstance(v, (int, float)) and not isinstance(v, bool), v
    return v


def test_cbor_round_trip(raw, kinesis):
    name = unique_name("cbor")
    r = raw.cbor_call("CreateStream", {"StreamName": name, "ShardCount": 1})
    assert r.status == 200, r
    assert r.body == b""
    try:
        wait_active(kinesis, name)

        summary = _cbor_ok(raw.cbor_call("DescribeStreamSummary", {"StreamName": name}))["StreamDescriptionSummary"]
        assert summary["StreamName"] == name
        assert abs(_as_millis(summary["StreamCreationTimestamp"]) - time.time() * 1000) < 60_000

        payload = b"\x00\x01\x02binary\xff\xfe" + os.urandom(32)
        put = _cbor_ok(raw.cbor_call("PutRecord", {"StreamName": name, "Data": payload, "PartitionKey": "cbor-pk"}))
        assert put["ShardId"] == SHARD0
        seq = put["SequenceNumber"]
        assert isinstance(seq, str) and seq.isdigit()

        it = _cbor_ok(raw.cbor_call("GetShardIterator", {
            "StreamName": name, "ShardId": SHARD0, "ShardIteratorType": "TRIM_HORIZON"}))["ShardIterator"]
        r = raw.cbor_call("GetRecords", {"ShardIterator": it})
        doc = _cbor_ok(r)
        assert len(doc["Records"]) == 1, doc
        rec = doc["Records"][0]
        assert isinstance(rec["Data"], bytes), type(rec["Data"])
        assert rec["Data"] == payload
        assert rec["PartitionKey"] == "cbor-pk"
        assert rec["SequenceNumber"] == seq
        ts = rec["ApproximateArrivalTimestamp"]
        assert isinstance(ts, cbor2.CBORTag) and ts.tag == 1, ts
        arrival_ms = _as_millis(ts)
        assert abs(arrival_ms - time.time() * 1000) < 60_000, f"{arrival_ms} is not epoch millis of about now"
        assert doc["MillisBehindLatest"] == 0
        assert isinstance(doc["NextShardIterator"], str)

        # The same record through JSON (boto3): base64 on the wire, same bytes, same instant.
        j = read_shard(kinesis, name, SHARD0)
        assert [x["Data"] for x in j] == [payload]
        assert abs(j[0]["ApproximateArrivalTimestamp"].timestamp() * 1000 - arrival_ms) < 1000

        # AT_TIMESTAMP with a CBOR tag-1 epoch-millis timestamp, as the Java SDK sends it.
        def at(ms):
            it = _cbor_ok(raw.cbor_call("GetShardIterator", {
                "StreamName": name, "ShardId": SHARD0, "ShardIteratorType": "AT_TIMESTAMP",
                "Timestamp": cbor2.CBORTag(1, ms)}))["ShardIterator"]
            return _cbor_ok(raw.cbor_call("GetRecords", {"ShardIterator": it}))["Records"]

        ms = int(arrival_ms)
        assert [x["SequenceNumber"] for x in at(ms - 5_000)] == [seq]
        assert [x["SequenceNumber"] for x in at(ms)] == [seq]
        assert at(ms + 1) == []

        # PutRecords in CBOR.
        batch = _cbor_ok(raw.cbor_call("PutRecords", {"StreamName": name, "Records": [
            {"Data": b"one", "PartitionKey": "a"}, {"Data": b"two", "PartitionKey": "b"}]}))
        assert batch["FailedRecordCount"] == 0
        assert [x["ShardId"] for x in batch["Records"]] == [SHARD0, SHARD0]
        assert [x["Data"] for x in read_shard(kinesis, name, SHARD0)] == [payload, b"one", b"two"]
    finally:
        kinesis.delete_stream(StreamName=name)


def test_cbor_errors(raw):
    name = unique_name("cbornf")
    r = raw.cbor_call("DescribeStream", {"StreamName": name})
    assert r.status == 400, r
    assert r.headers["content-type"].split(";")[0].strip() == CBOR_CT
    doc = r.cbor()
    assert doc["__type"].split("#")[-1] == "ResourceNotFoundException"
    assert doc["message"] == f"Stream {name} under account {ACCOUNT} not found."

    r = raw.call("ListStreams", b"\xff\xff\x00\x1f", content_type=CBOR_CT)
    assert r.status == 400, r
    assert r.error_type() == "SerializationException", r

    r = raw.call("NoSuchOperation", cbor2.dumps({}), content_type=CBOR_CT)
    assert r.status == 400, r
    assert r.error_type() == "UnknownOperationException", r


# ======================================================================================
# After all of the above
# ======================================================================================

def test_zz_server_still_serves(raw, kinesis, survivor):
    name = survivor["name"]
    # Data written before the malformed requests is intact, and nothing from them was stored.
    got = read_shard(kinesis, name, SHARD0)
    assert [r["SequenceNumber"] for r in got] == survivor["seqs"]
    assert [r["Data"] for r in got] == survivor["data"]

    r = raw.json_call("PutRecord", {"StreamName": name, "PartitionKey": "k",
                                    "Data": base64.b64encode(b"after").decode()})
    assert r.status == 200, r
    seq = r.json()["SequenceNumber"]
    it = raw.json_call("GetShardIterator", {"StreamName": name, "ShardId": SHARD0,
                                            "ShardIteratorType": "AT_SEQUENCE_NUMBER",
                                            "StartingSequenceNumber": seq}).json()["ShardIterator"]
    r = raw.json_call("GetRecords", {"ShardIterator": it})
    assert r.status == 200, r
    recs = r.json()["Records"]
    assert [base64.b64decode(x["Data"]) for x in recs] == [b"after"]
    assert recs[0]["SequenceNumber"] == seq
    assert isinstance(recs[0]["ApproximateArrivalTimestamp"], (int, float))
    assert abs(recs[0]["ApproximateArrivalTimestamp"] - time.time()) < 60

    assert kinesis.list_streams(ExclusiveStartStreamName=name[:-1])["StreamNames"][0] == name
