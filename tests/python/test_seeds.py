"""The user's own examples, run against sluice.

Only the endpoint differs from what the user wrote: the CLI gets --endpoint-url and the
boto3 client gets endpoint_url (conftest supplies the credentials and region through the
environment, as a user's shell would).
"""

import base64
import json
import time

import boto3

from conftest import read_shard


def _cli_wait_active(aws_cli, name, attempts=100):
    last = None
    for _ in range(attempts):
        last = aws_cli.run("kinesis", "describe-stream-summary", "--stream-name", name)
        if last["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
            return last
        time.sleep(0.1)
    raise AssertionError(f"{name} not ACTIVE after {attempts} polls: {last}")


def test_cli_seed_create_put_get(aws_cli):
    # aws kinesis create-stream --stream-name MyDataStream --shard-count 1
    out = aws_cli.run("kinesis", "create-stream", "--stream-name", "MyDataStream", "--shard-count", "1")
    assert out is None  # CreateStream has no output

    summary = _cli_wait_active(aws_cli, "MyDataStream")["StreamDescriptionSummary"]
    assert summary["StreamName"] == "MyDataStream"
    assert summary["StreamARN"] == "arn:aws:kinesis:us-east-1:000000000000:stream/MyDataStream"
    assert summary["OpenShardCount"] == 1

    # aws kinesis put-record --stream-name MyDataStream --partition-key 123 --data "Hello, World!"
    put = aws_cli.run("kinesis", "put-record", "--stream-name", "MyDataStream",
                      "--partition-key", "123", "--data", "Hello, World!")
    assert put["ShardId"] == "shardId-000000000000"
    assert put["SequenceNumber"].isdigit()

    it = aws_cli.run("kinesis", "get-shard-iterator", "--stream-name", "MyDataStream",
                     "--shard-id", "shardId-000000000000", "--shard-iterator-type", "TRIM_HORIZON")
    assert it["ShardIterator"]

    got = aws_cli.run("kinesis", "get-records", "--shard-iterator", it["ShardIterator"])
    assert len(got["Records"]) == 1, got
    rec = got["Records"][0]
    # awscli v1 prints blobs base64-encoded.
    assert rec["Data"] == "SGVsbG8sIFdvcmxkIQ=="
    assert base64.b64decode(rec["Data"]) == b"Hello, World!"
    assert rec["PartitionKey"] == "123"
    assert rec["SequenceNumber"] == put["SequenceNumber"]
    assert got["MillisBehindLatest"] == 0
    assert got["NextShardIterator"]

    # Nothing more after the one record.
    again = aws_cli.run("kinesis", "get-records", "--shard-iterator", got["NextShardIterator"])
    assert again["Records"] == []
    assert again["MillisBehindLatest"] == 0


def test_boto3_seed_click_event_producer(endpoint, kinesis):
    kinesis.create_stream(StreamName="RealTimeDataStream", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(
        StreamName="RealTimeDataStream", WaiterConfig={"Delay": 1, "MaxAttempts": 20})

    # ---- the user's producer, unchanged but for endpoint_url and a bounded loop ----
    kinesis_client = boto3.client("kinesis", region_name="us-east-1", endpoint_url=endpoint)

    def put_record(stream_name, data, partition_key):
        response = kinesis_client.put_record(
            StreamName=stream_name,
            Data=json.dumps(data),
            PartitionKey=partition_key,
        )
        return response

    stream_name = "RealTimeDataStream"
    sent = []
    responses = []
    for _ in range(20):  # was: while True
        data = {
            "event_type": "click",
            "timestamp": time.time(),
            "user_id": "user123",
            "page": "/home",
        }
        responses.append(put_record(stream_name, data, "user123"))
        sent.append(data)
        # time.sleep(1)  -- dropped to keep the test fast
    # ---------------------------------------------------------------------------------

    assert all(r["ResponseMetadata"]["HTTPStatusCode"] == 200 for r in responses)
    assert {r["ShardId"] for r in responses} == {"shardId-000000000000"}
    seqs = [int(r["SequenceNumber"]) for r in responses]
    assert seqs == sorted(seqs) and len(set(seqs)) == 20, "sequence numbers must strictly increase"

    records = read_shard(kinesis, stream_name, "shardId-000000000000")
    assert [json.loads(r["Data"]) for r in records] == sent
    assert [r["PartitionKey"] for r in records] == ["user123"] * 20
    assert [r["SequenceNumber"] for r in records] == [r["SequenceNumber"] for r in responses]
    for r in records:
        arrived = r["ApproximateArrivalTimestamp"].timestamp()
        assert abs(arrived - time.time()) < 60, r
