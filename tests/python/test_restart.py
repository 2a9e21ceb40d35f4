"""Streams, settings and records survive a clean restart on the same data directory.

This test starts its own two server processes one after the other (not the session
server), so it is skipped when SLUICE_ENDPOINT points the suite at an external server.
"""

import os

import pytest

from conftest import _start_server, _stop, make_client, read_shard, wait_active


@pytest.mark.skipif(bool(os.environ.get("SLUICE_ENDPOINT")), reason="needs to start its own server")
def test_data_survives_restart(tmp_path, aws_env):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    logs1 = tmp_path / "logs1"
    logs1.mkdir()
    logs2 = tmp_path / "logs2"
    logs2.mkdir()

    srv = _start_server(data_dir, logs1)
    try:
        c = make_client(srv.endpoint)
        c.create_stream(StreamName="persisted", ShardCount=2)
        wait_active(c, "persisted")
        c.increase_stream_retention_period(StreamName="persisted", RetentionPeriodHours=48)
        c.add_tags_to_stream(StreamName="persisted", Tags={"k": "v"})
        resp = c.put_records(StreamName="persisted",
                             Records=[{"Data": f"r{i}".encode(), "PartitionKey": f"p{i}"} for i in range(50)])
        assert resp["FailedRecordCount"] == 0
        before = {sid: read_shard(c, "persisted", sid) for sid in ("shardId-000000000000", "shardId-000000000001")}
        assert sum(len(v) for v in before.values()) == 50
    finally:
        _stop(srv.proc)
    assert srv.proc.returncode == 0, f"sluice did not exit cleanly on SIGTERM\n{srv.diagnostics()}"

    srv2 = _start_server(data_dir, logs2)
    try:
        c = make_client(srv2.endpoint)
        summary = c.describe_stream_summary(StreamName="persisted")["StreamDescriptionSummary"]
        assert summary["StreamStatus"] == "ACTIVE"
        assert summary["OpenShardCount"] == 2
        assert summary["RetentionPeriodHours"] == 48
        assert c.list_tags_for_stream(StreamName="persisted")["Tags"] == [{"Key": "k", "Value": "v"}]
        for sid, recs in before.items():
            after = read_shard(c, "persisted", sid)
            assert [(r["SequenceNumber"], r["PartitionKey"], r["Data"], r["ApproximateArrivalTimestamp"])
                    for r in after] == \
                   [(r["SequenceNumber"], r["PartitionKey"], r["Data"], r["ApproximateArrivalTimestamp"])
                    for r in recs]
        # New writes continue after the old sequence numbers.
        for sid, recs in before.items():
            if not recs:
                continue
            start = next(s for s in c.list_shards(StreamName="persisted")["Shards"] if s["ShardId"] == sid)
            h = start["HashKeyRange"]["StartingHashKey"]
            new = c.put_record(StreamName="persisted", Data=b"new", PartitionKey="x", ExplicitHashKey=h)
            assert new["ShardId"] == sid
            assert int(new["SequenceNumber"]) > int(recs[-1]["SequenceNumber"])
    finally:
        _stop(srv2.proc)
