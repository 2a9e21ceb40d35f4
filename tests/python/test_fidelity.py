"""Fidelity details checked against the AWS API reference and AWS's recorded answers: tag
characters, the order of checks (the shard before the sequence number, the stream before the
tags), PutRecords' list of violations, SplitShard past the hash space, SequenceNumberForOrdering,
bodies that are not JSON objects, the request-id headers, and shard iterators / NextTokens that
a client cannot make or alter (they carry a keyed MAC under a secret of the data directory)."""

import base64
import hashlib
import json
import os
import stat
import struct
import time

import cbor2
import pytest
from botocore.exceptions import ClientError

from conftest import (
    ACCOUNT,
    CBOR_CT,
    _start_server,
    _stop,
    assert_client_error,
    make_client,
    read_shard,
    stream_arn,
    unique_name,
    wait_active,
)

TAG_CHARS = ("Some tags contain invalid characters. Valid characters: "
             "Unicode letters, digits, white space, _ . / = + - % @.")
ENTRY = "com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310"


def shard_id(i):
    return f"shardId-{i:012d}"


def not_found(name):
    return f"Stream {name} under account {ACCOUNT} not found."


def shard_missing(sid, name):
    return f"Shard {sid} in stream {name} under account {ACCOUNT} does not exist"


# ======================================================================================
# 1. Tag characters: one rule for every operation that takes tags or tag keys
# ======================================================================================

@pytest.mark.parametrize("bad", ["a\tb", "a\nb", "a\rb", "a;b", "a,b", "a#b", "a\u0000b", "a\u200bb"])
def test_add_tags_refuses_characters_outside_the_pattern(kinesis, new_stream, bad):
    name = new_stream("tagbad", shards=1)
    for tags in ({bad: "v"}, {"k": bad}):
        with pytest.raises(ClientError) as ei:
            kinesis.add_tags_to_stream(StreamName=name, Tags=tags)
        assert_client_error(ei, "InvalidArgumentException", TAG_CHARS)
    with pytest.raises(ClientError) as ei:
        kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["ok", bad])
    assert_client_error(ei, "InvalidArgumentException", TAG_CHARS)
    assert kinesis.list_tags_for_stream(StreamName=name)["Tags"] == []


def test_tag_characters_allowed(kinesis, new_stream):
    # Letters and digits of any script, space separators (including NO-BREAK SPACE and
    # IDEOGRAPHIC SPACE) and _ . : / = + - @ %.
    good = {"ü0 _.": "a", "/=+-@:%": "b", "日本\u3000語": "\u00a0", "Ωmega٣": ""}
    name = new_stream("taggood", shards=1, Tags={"c:d": "e f"})
    kinesis.add_tags_to_stream(StreamName=name, Tags=good)
    got = {t["Key"]: t["Value"] for t in kinesis.list_tags_for_stream(StreamName=name)["Tags"]}
    assert got == {**good, "c:d": "e f"}
    kinesis.remove_tags_from_stream(StreamName=name, TagKeys=list(good) + ["c:d"])
    assert kinesis.list_tags_for_stream(StreamName=name)["Tags"] == []


def test_tag_characters_on_create_and_consumer_registration(kinesis):
    name = unique_name("tagcreate")
    with pytest.raises(ClientError) as ei:
        kinesis.create_stream(StreamName=name, ShardCount=1, Tags={"a\tb": "v"})
    assert_client_error(ei, "InvalidArgumentException", TAG_CHARS)
    kinesis.create_stream(StreamName=name, ShardCount=1)
    try:
        wait_active(kinesis, name)
        with pytest.raises(ClientError) as ei:
            kinesis.register_stream_consumer(StreamARN=stream_arn(name), ConsumerName="c",
                                             Tags={"k": "line\nbreak"})
        assert_client_error(ei, "InvalidArgumentException", TAG_CHARS)
    finally:
        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)


def test_tags_on_missing_stream_name_the_stream_first(kinesis):
    """AWS looks the stream up before it reads the tags' characters."""
    missing = unique_name("notags")
    with pytest.raises(ClientError) as ei:
        kinesis.add_tags_to_stream(StreamName=missing, Tags={"bad;key": "v"})
    assert_client_error(ei, "ResourceNotFoundException", not_found(missing))
    with pytest.raises(ClientError) as ei:
        kinesis.remove_tags_from_stream(StreamName=missing, TagKeys=["bad;key"])
    assert_client_error(ei, "ResourceNotFoundException", not_found(missing))


# ======================================================================================
# 2. GetShardIterator: the shard is checked before the sequence number
# ======================================================================================

def test_get_shard_iterator_missing_shard_before_sequence_number(kinesis, new_stream):
    name = new_stream("itshard", shards=1)
    seq = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")["SequenceNumber"]
    for kind, s in (("AT_SEQUENCE_NUMBER", seq), ("AFTER_SEQUENCE_NUMBER", seq),
                    ("AT_SEQUENCE_NUMBER", "9" * 60), ("TRIM_HORIZON", seq)):
        with pytest.raises(ClientError) as ei:
            kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id(5), ShardIteratorType=kind,
                                       StartingSequenceNumber=s)
        assert_client_error(ei, "ResourceNotFoundException", shard_missing(shard_id(5), name))
    missing = unique_name("nostream")
    with pytest.raises(ClientError) as ei:
        kinesis.get_shard_iterator(StreamName=missing, ShardId=shard_id(0),
                                   ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber="1")
    assert_client_error(ei, "ResourceNotFoundException", shard_missing(shard_id(0), missing))
    # On the shard that exists the sequence number is still checked.
    with pytest.raises(ClientError) as ei:
        kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id(0),
                                   ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber="1")
    assert_client_error(ei, "InvalidArgumentException",
                        f"StartingSequenceNumber 1 used in GetShardIterator on shard {shard_id(0)} "
                        f"in stream {name} under account {ACCOUNT} is invalid.")


# ======================================================================================
# 3. PutRecords past 500 records: the list's violation and the members', ten at most
# ======================================================================================

def test_put_records_too_many_lists_member_violations(raw):
    # AWS's answer to 501 records with empty partition keys and an empty stream name: the
    # list's length, then the members in order, cut at ten.
    r = raw.json_call("PutRecords", {"StreamName": "", "Records": [{"PartitionKey": "", "Data": ""}] * 501})
    assert r.status == 400, r
    assert r.error_type() == "ValidationException"
    parts = [f"Value '[{', '.join([ENTRY] * 501)}]' at 'records' failed to satisfy constraint: "
             f"Member must have length less than or equal to 500"]
    parts += [f"Value '' at 'records.{i}.member.partitionKey' failed to satisfy constraint: "
              f"Member must have length greater than or equal to 1" for i in range(1, 10)]
    assert r.error_message() == "10 validation errors detected: " + "; ".join(parts)


def test_put_records_too_many_with_few_member_violations(raw):
    records = [{"PartitionKey": "k", "Data": ""} for _ in range(501)]
    records[2]["PartitionKey"] = ""
    records[6]["ExplicitHashKey"] = "01"
    r = raw.json_call("PutRecords", {"StreamName": unique_name("many"), "Records": records})
    assert r.status == 400, r
    assert r.error_type() == "ValidationException"
    assert r.error_message() == "3 validation errors detected: " + "; ".join([
        f"Value '[{', '.join([ENTRY] * 501)}]' at 'records' failed to satisfy constraint: "
        f"Member must have length less than or equal to 500",
        "Value '' at 'records.3.member.partitionKey' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        "Value '01' at 'records.7.member.explicitHashKey' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
    ])


# ======================================================================================
# 4. SplitShard with a key above 2^128 - 1: the range message, with the normalized shard id
# ======================================================================================

def test_split_shard_key_above_hash_space(kinesis, new_stream):
    name = new_stream("splitbig", shards=3)
    s2 = next(s for s in kinesis.list_shards(StreamName=name)["Shards"] if s["ShardId"] == shard_id(2))
    start, end = s2["HashKeyRange"]["StartingHashKey"], s2["HashKeyRange"]["EndingHashKey"]
    for key in (str(2**128), "9" * 39):
        with pytest.raises(ClientError) as ei:
            kinesis.split_shard(StreamName=name, ShardToSplit="shard-2", NewStartingHashKey=key)
        assert_client_error(
            ei, "InvalidArgumentException",
            f"NewStartingHashKey {key} used in SplitShard() on shard {shard_id(2)} in stream {name} under "
            f"account {ACCOUNT} is not both greater than one plus the shard's StartingHashKey {start} and "
            f"less than the shard's EndingHashKey {end}.")
    # A missing shard is still named as such.
    with pytest.raises(ClientError) as ei:
        kinesis.split_shard(StreamName=name, ShardToSplit="shard-7", NewStartingHashKey=str(2**128))
    assert_client_error(ei, "ResourceNotFoundException",
                        f"Could not find shard {shard_id(7)} in stream {name} under account {ACCOUNT}.")
    assert len(kinesis.list_shards(StreamName=name)["Shards"]) == 3


# ======================================================================================
# 5. SequenceNumberForOrdering: the rule GetShardIterator applies to sequence numbers
# ======================================================================================

def test_sequence_number_for_ordering_must_be_a_sequence_number(kinesis, new_stream):
    name = new_stream("ordering", shards=1)
    for bad in ("0", "1", "9" * 60, "4" + "9" * 55):
        with pytest.raises(ClientError) as ei:
            kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", SequenceNumberForOrdering=bad)
        assert_client_error(ei, "InvalidArgumentException",
                            f"ExclusiveMinimumSequenceNumber {bad} used in PutRecord on stream {name} "
                            f"under account {ACCOUNT} is invalid.")
    # GetShardIterator refuses the same values.
    with pytest.raises(ClientError) as ei:
        kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id(0),
                                   ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber="1")
    assert_client_error(ei, "InvalidArgumentException")
    # A real sequence number (of any shard) is accepted.
    seq = kinesis.put_record(StreamName=name, Data=b"a", PartitionKey="k")["SequenceNumber"]
    after = kinesis.put_record(StreamName=name, Data=b"b", PartitionKey="k", SequenceNumberForOrdering=seq)
    assert int(after["SequenceNumber"]) > int(seq)
    # The stream is looked up first.
    missing = unique_name("nostream")
    with pytest.raises(ClientError) as ei:
        kinesis.put_record(StreamName=missing, Data=b"x", PartitionKey="k", SequenceNumberForOrdering="1")
    assert_client_error(ei, "ResourceNotFoundException", not_found(missing))


# ======================================================================================
# 6. A body that is JSON but not an object is a SerializationException, on every path
# ======================================================================================

@pytest.mark.parametrize("op", ["ListStreams", "DescribeLimits", "PutRecords", "PutRecord", "CreateStream"])
@pytest.mark.parametrize("body", [b"[]", b'"x"', b"1", b"true", b"null", b"[{}]"])
def test_non_object_body_is_a_serialization_exception(raw, op, body):
    r = raw.call(op, body)
    assert r.status == 400, (r.status, r.body)
    assert r.error_type() == "SerializationException"


def test_put_records_array_forms_are_refused(raw, kinesis, new_stream):
    name = new_stream("arrays", shards=1)
    entry = {"Data": "AAAA", "PartitionKey": "k"}
    for body in ([[entry], name],                                   # the request as an array
                 {"StreamName": name, "Records": [["AAAA", "k"]]},  # an entry as an array
                 {"StreamName": name, "Records": [entry, ["AAAA", "k"]]}):
        r = raw.call("PutRecords", json.dumps(body).encode())
        assert r.status == 400, (body, r.status, r.body)
        assert r.error_type() == "SerializationException"
    r = raw.call("PutRecords", cbor2.dumps([[entry], name]), content_type=CBOR_CT)
    assert r.status == 400 and r.error_type() == "SerializationException", r
    assert read_shard(kinesis, name, shard_id(0)) == []
    # The object form still works on the fast path.
    r = raw.json_call("PutRecords", {"StreamName": name, "Records": [entry]})
    assert r.status == 200 and r.json()["FailedRecordCount"] == 0, r


# ======================================================================================
# 7. x-amzn-RequestId and x-amz-id-2 on every response
# ======================================================================================

def test_request_id_headers_on_success_and_error(raw):
    missing = unique_name("nostream")
    seen = set()
    for resp, status in (
        (raw.json_call("ListStreams", {}), 200),
        (raw.json_call("DescribeStreamSummary", {"StreamName": missing}), 400),
        (raw.json_call("DescribeStreamSummary", {"StreamName": ""}), 400),
        (raw.call("ListStreams", b"{not json"), 400),
        (raw.cbor_call("ListStreams", {}), 200),
        (raw.cbor_call("DescribeStreamSummary", {"StreamName": missing}), 400),
    ):
        assert resp.status == status, resp
        rid, id2 = resp.headers.get("x-amzn-requestid"), resp.headers.get("x-amz-id-2")
        assert rid and id2, resp.headers
        assert base64.b64decode(id2, validate=True)
        seen.add((rid, id2))
    assert len(seen) == 6


# ======================================================================================
# 8. Shard iterators and NextTokens cannot be made, altered or truncated by a client
# ======================================================================================

def _old_seal(body: bytes) -> str:
    """The unkeyed scheme sluice used to seal tokens with: SHA-256, first 8 bytes."""
    return base64.b64encode(body + hashlib.sha256(body).digest()[:8]).decode()


def _forged_iterator(real: str, name: str, issued_ms: int, offset: int = 0) -> str:
    raw_bytes = base64.b64decode(real)
    stream_uid = raw_bytes[9:17]  # the layout: version, issued_ms, stream_uid, shard, offset, name
    body = (bytes([1]) + struct.pack("<q", issued_ms) + stream_uid + struct.pack("<I", 0)
            + struct.pack("<Q", offset) + bytes([len(name)]) + name.encode())
    return _old_seal(body)


def test_forged_and_damaged_iterators_are_refused(kinesis, new_stream):
    name = new_stream("forge", shards=1)
    kinesis.put_record(StreamName=name, Data=b"secret", PartitionKey="k")
    real = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id(0),
                                      ShardIteratorType="LATEST")["ShardIterator"]
    now_ms = int(time.time() * 1000)
    raw_bytes = base64.b64decode(real)
    flipped = bytearray(raw_bytes)
    flipped[25] ^= 1
    forged = [
        _forged_iterator(real, name, now_ms),            # recomputed like the old scheme
        _forged_iterator(real, name, -2**63),            # issued_ms that overflows now - issued
        _forged_iterator(real, name, 2**63 - 1),         # issued far in the future
        base64.b64encode(bytes(flipped)).decode(),       # one bit changed
        base64.b64encode(raw_bytes[:-1]).decode(),       # truncated
        base64.b64encode(raw_bytes[:40]).decode(),
        base64.b64encode(raw_bytes + b"\0").decode(),    # extended
    ]
    for token in forged:
        with pytest.raises(ClientError) as ei:
            kinesis.get_records(ShardIterator=token)
        assert_client_error(ei, "InvalidArgumentException", "Invalid ShardIterator.")
    # The real one reads (LATEST: nothing yet).
    assert kinesis.get_records(ShardIterator=real)["Records"] == []


def test_forged_next_token_is_refused(kinesis):
    now_ms = int(time.time() * 1000)
    for scope in (b"ListStreams",):
        body = bytes([1]) + struct.pack("<q", now_ms)
        for s in (scope, b""):
            body += struct.pack("<I", len(s)) + s
        token = _old_seal(body)
        with pytest.raises(ClientError) as ei:
            kinesis.list_streams(NextToken=token)
        assert_client_error(ei, "InvalidArgumentException", f"Invalid NextToken: {token}")


@pytest.mark.skipif(bool(os.environ.get("SLUICE_ENDPOINT")), reason="needs to start its own server")
def test_token_key_file_and_tokens_across_restart(tmp_path, aws_env):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    logs = [tmp_path / f"logs{i}" for i in range(3)]
    for d in logs:
        d.mkdir()
    srv = _start_server(data_dir, logs[0])
    try:
        c = make_client(srv.endpoint)
        for n in ("keep-a", "keep-b"):
            c.create_stream(StreamName=n, ShardCount=1)
            wait_active(c, n)
        c.put_record(StreamName="keep-a", Data=b"one", PartitionKey="k")
        it = c.get_shard_iterator(StreamName="keep-a", ShardId=shard_id(0),
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        token = c.list_streams(Limit=1)["NextToken"]
    finally:
        _stop(srv.proc)
    key_file = data_dir / "token.key"
    assert key_file.stat().st_size == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    assert not [p for p in data_dir.iterdir() if p.name.startswith("token.key") and p != key_file]

    # The same data directory: the same key, so the tokens still work.
    srv = _start_server(data_dir, logs[1])
    try:
        c = make_client(srv.endpoint)
        assert [r["Data"] for r in c.get_records(ShardIterator=it)["Records"]] == [b"one"]
        assert c.list_streams(NextToken=token)["StreamNames"] == ["keep-b"]
    finally:
        _stop(srv.proc)
    assert key_file.read_bytes() == key

    # Another key (as another data directory would have): the old tokens are refused.
    key_file.write_bytes(os.urandom(32))
    srv = _start_server(data_dir, logs[2])
    try:
        c = make_client(srv.endpoint)
        with pytest.raises(ClientError) as ei:
            c.get_records(ShardIterator=it)
        assert_client_error(ei, "InvalidArgumentException", "Invalid ShardIterator.")
        with pytest.raises(ClientError) as ei:
            c.list_streams(NextToken=token)
        assert_client_error(ei, "InvalidArgumentException", f"Invalid NextToken: {token}")
    finally:
        _stop(srv.proc)
